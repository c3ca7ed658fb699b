"""Embedder: sentence-transformers, normalised vectors, cached by content hash.

The same text is never embedded twice: vectors live in an in-memory dict keyed by the SHA-1 of
the text and, when ``cache_dir`` is given, in an on-disk ``.npy`` store per model
(:mod:`kgrag.encoders.cache`, checked when first used; a damaged shard is set aside and recomputed).

Example::

    from kgrag.encoders.embeddings import SentenceTransformerEmbedder
    emb = SentenceTransformerEmbedder()
    vectors = emb.encode(["psoriasis", "HLA-B"])   # shape (2, 384), unit length
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from kgrag.errors import BackendUnavailableError
from kgrag.encoders.cache import DiskCache, text_hash
from kgrag.encoders.model_files import embedding_dimension, load_sentence_transformer, slug
from kgrag.hardware import cpu_has_amx

if TYPE_CHECKING:
    from kgrag.encoders.onnx import OnnxEncoder
    from kgrag.settings import Settings

# Backends whose vectors differ from torch's beyond float noise: their vectors are named <model>@<backend>
# (cache folder, text index manifest, edge-vector store). fp32 onnx agrees with torch within 3e-7 (max |diff|
# 2.3e-7 over 800 corpus passages, min cosine 0.9999998; bench/embed_rate.py), so it shares torch's name and caches.
VECTOR_CHANGING_BACKENDS = frozenset({"onnx-int8"})
BACKENDS = ("torch", "onnx", "onnx-int8")
PRECISIONS = ("auto", "fp32", "bf16")
POOL_MIN_TEXTS = 256  # below this, one process (a question, a small batch) is faster than handing out work


@runtime_checkable
class Embedder(Protocol):
    """Texts to unit vectors, cached by content hash."""

    model_name: str
    dimension: int
    thread_safe: bool  # encode() may be called from another thread (the pipeline embeds questions on a worker)

    def encode(self, texts: Sequence[str], *, persist: bool = True) -> np.ndarray:
        """Unit-length float32 vectors, one row per text; ``persist=False`` keeps new vectors in memory only."""
        ...

    def encode_once(self, texts: Sequence[str]) -> np.ndarray:
        """The same vectors, none kept (cached ones read): for whole-graph builds whose vectors would not fit."""
        ...


def resolve_precision(precision: str, *, backend: str = "torch", device: str = "cpu") -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 for the torch encoder on a CPU with AMX, fp32 otherwise."""
    if precision not in PRECISIONS:
        raise BackendUnavailableError(f"embedding precision {precision!r}: expected one of {', '.join(PRECISIONS)} "
                                      "(KGRAG_EMBEDDING_PRECISION)")
    if precision == "bf16" and backend != "torch":
        raise BackendUnavailableError(f"embedding precision 'bf16' is the torch encoder's, not the {backend!r} "
                                      "backend's: set KGRAG_EMBEDDING_PRECISION=fp32 or KGRAG_EMBEDDING_BACKEND=torch")
    if precision == "auto":
        return "bf16" if backend == "torch" and device == "cpu" and cpu_has_amx() else "fp32"
    return precision


def default_batch_size(precision: str) -> int:
    """Texts per encoder batch when none is set: the fastest measured here, 16 in fp32 and 32 in bf16."""
    return 32 if precision == "bf16" else 16


def embedding_identity(model_name: str, backend: str = "torch", precision: str = "fp32") -> str:
    """The name a model's vectors go by: ``model_name``, plus ``@<backend>`` or ``@bf16`` when they change them
    (``precision`` already resolved: fp32 or bf16)."""
    if backend in VECTOR_CHANGING_BACKENDS:
        return f"{model_name}@{backend}"
    return f"{model_name}@bf16" if precision == "bf16" else model_name


def settings_identity(settings: "Settings") -> str:
    """The identity of the vectors the settings' embedder makes (model, backend and resolved precision)."""
    precision = resolve_precision(settings.embedding_precision, backend=settings.embedding_backend,
                                  device=settings.embedding_device)
    return embedding_identity(settings.embedding_model, settings.embedding_backend, precision)


def settings_for_identity(identity: str) -> str:
    """The settings that give vectors named ``identity``: ``KGRAG_EMBEDDING_MODEL=m`` and what else they need."""
    model, _, suffix = identity.rpartition("@")
    if model and suffix in VECTOR_CHANGING_BACKENDS:
        return f"KGRAG_EMBEDDING_MODEL={model} KGRAG_EMBEDDING_BACKEND={suffix}"
    if model and suffix == "bf16":
        return f"KGRAG_EMBEDDING_MODEL={model} KGRAG_EMBEDDING_BACKEND=torch KGRAG_EMBEDDING_PRECISION=bf16"
    return (f"KGRAG_EMBEDDING_MODEL={identity} KGRAG_EMBEDDING_PRECISION=fp32 (KGRAG_EMBEDDING_BACKEND torch or "
            "onnx)")


def embedder_from_settings(settings: "Settings", *, cache: bool = True) -> "SentenceTransformerEmbedder":
    """The settings' embedder: model, backend, precision, device, batch size, threads; its cache under
    ``<home>/embeddings``."""
    return SentenceTransformerEmbedder(settings.embedding_model, device=settings.embedding_device,
                                       batch_size=settings.embedding_batch_size,
                                       cache_dir=settings.home / "embeddings" if cache else None,
                                       threads=settings.embedding_threads, backend=settings.embedding_backend,
                                       home=settings.home, precision=settings.embedding_precision,
                                       processes=settings.embedding_processes)


class SentenceTransformerEmbedder:
    """Embeds with sentence-transformers (on torch, or its transformer on onnxruntime); caches every vector.

    ``backend``: ``torch``; ``onnx`` (the model exported once to ``<home>/models/onnx/<model>/``, same
    vectors); ``onnx-int8`` (its 8-bit copy: other vectors, named ``<model>@onnx-int8``).
    ``precision`` (torch): ``fp32``; ``bf16`` (the model in bfloat16, ~3x faster on CPUs with AMX; vectors within
    cosine 0.9999 of fp32's, named ``<model>@bf16``); ``auto`` (bf16 on a CPU with AMX, else fp32).
    """

    thread_safe = True  # encode() may be called from another thread (see Pipeline.answer_batch)

    def __init__(self, model_name: str = "all-MiniLM-L6-v2", *, device: str = "cpu", batch_size: int | None = None,
                 cache_dir: Path | None = None, threads: int = 0, backend: str = "torch",
                 home: Path | None = None, precision: str = "fp32", processes: int = 1) -> None:
        if backend not in BACKENDS:
            raise BackendUnavailableError(f"embedding backend {backend!r}: expected one of {', '.join(BACKENDS)} "
                                          "(KGRAG_EMBEDDING_BACKEND)")
        if backend != "torch" and device != "cpu":
            raise BackendUnavailableError(f"embedding backend {backend!r} runs on the CPU, not {device!r}: set "
                                          "KGRAG_EMBEDDING_BACKEND=torch or KGRAG_EMBEDDING_DEVICE=cpu")
        self.model = model_name  # what is loaded; model_name is the vectors' identity
        self.backend = backend
        self.precision = resolve_precision(precision, backend=backend, device=device)
        self.model_name = embedding_identity(model_name, backend, self.precision)
        self._onnx: OnnxEncoder | None = None
        if backend == "torch":
            self._model = load_sentence_transformer(model_name, device)
            self.dimension = embedding_dimension(self._model)
            if self.precision == "bf16":
                import torch

                self._model.to(torch.bfloat16)
        else:
            from kgrag.encoders.onnx import OnnxEncoder
            from kgrag.settings import default_home

            self._onnx = OnnxEncoder.open(model_name, home=home or default_home(), quantised=backend == "onnx-int8",
                                          threads=threads)
            self.dimension = self._onnx.dimension
        self.batch_size = batch_size or default_batch_size(self.precision)
        self.threads = threads  # torch (or onnxruntime) intra-op threads while encoding; 0: the library's default
        self.processes = processes  # torch: encoder processes for large batches (builds), one per device or core group
        self._pool: dict | None = None
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # encode() from several threads: one call at a time
        self._disk = DiskCache(cache_dir / slug(self.model_name), self.dimension) if cache_dir else None
        self.encoded_count = 0  # texts actually sent to the model (for tests and benchmarks)

    def encode(self, texts: Sequence[str], *, persist: bool = True) -> np.ndarray:
        """Unit-length float32 vectors, one row per text. ``persist=False`` keeps new vectors in memory only.

        Safe to call from several threads (:attr:`thread_safe`): calls run one at a time (the caches and the
        model are shared); the pipeline embeds a batch's questions on a worker thread while it links and fetches.
        """
        with self._lock:
            return self._encode_cached(texts, persist=persist)

    def _encode_cached(self, texts: Sequence[str], *, persist: bool) -> np.ndarray:
        keys = [text_hash(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in self._memory}
        if missing and self._disk is not None:
            self._memory.update(self._disk.get_many(list(missing)))
            missing = {k: t for k, t in missing.items() if k not in self._memory}
        if missing:
            new_keys = list(missing)
            vectors = self._encode([missing[k] for k in new_keys], progress=len(new_keys) > 5000)
            self.encoded_count += len(new_keys)
            self._memory.update(zip(new_keys, vectors))
            if persist and self._disk is not None:
                self._disk.put_many(new_keys, vectors)
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])

    def _encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """The model's unit vectors, on ``threads`` torch threads when set (restored afterwards).

        On onnxruntime the session was opened with ``threads`` intra-op threads.
        """
        if self._onnx is not None:
            return self._onnx.encode(texts, batch_size=self.batch_size, progress=progress)
        if self.processes > 1 and len(texts) >= POOL_MIN_TEXTS:
            return self._encode_in_pool(texts)
        import torch

        before = torch.get_num_threads()
        if self.threads and self.threads != before:
            torch.set_num_threads(self.threads)
        try:
            if self.precision == "bf16":  # bfloat16 out of the model; unit length computed in float32
                raw = self._model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                         show_progress_bar=progress).float().cpu().numpy()
                return (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)).astype(np.float32)
            return self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=progress).astype(np.float32)
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)

    def _encode_in_pool(self, texts: list[str]) -> np.ndarray:
        """sentence-transformers' multi-process pool: ``processes`` workers (one per CUDA device on a GPU machine,
        else CPU processes sharing the cores), started on first use and stopped when the process exits."""
        if self._pool is None:
            import atexit

            devices = self._pool_devices()
            self._pool = self._model.start_multi_process_pool(target_devices=devices)
            atexit.register(self.close)
        raw = self._model.encode(texts, pool=self._pool, batch_size=self.batch_size, convert_to_numpy=True,
                                 chunk_size=max(len(texts) // (4 * self.processes), self.batch_size))
        raw = np.asarray(raw, dtype=np.float32)
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)

    def _pool_devices(self) -> list[str]:
        device = str(self._model.device)
        if device.startswith("cuda"):
            import torch

            return [f"cuda:{i}" for i in range(max(1, min(self.processes, torch.cuda.device_count())))]
        return ["cpu"] * self.processes

    def close(self) -> None:
        """Stop the encoder processes, if any were started."""
        if self._pool is not None:
            self._model.stop_multi_process_pool(self._pool)
            self._pool = None

    def encode_once(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` without keeping them: cached ones are read, the others embedded, nothing stored.

        For build-time work over a whole graph (``kgrag build-edge-vectors``), whose vectors would not fit
        in memory and are stored elsewhere; a text is still never embedded if the cache has it.
        """
        keys = [text_hash(t) for t in texts]
        found = dict(self._disk.get_many(keys)) if self._disk is not None else {}
        found.update({k: self._memory[k] for k in keys if k in self._memory and k not in found})
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            by_key = dict(zip(keys, texts))
            vectors = self._encode([by_key[k] for k in missing])
            self.encoded_count += len(missing)
            found.update(zip(missing, vectors))
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[k] for k in keys])
