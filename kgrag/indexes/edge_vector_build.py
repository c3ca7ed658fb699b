"""Building the edge-vector store: every edge sentence of the graph embedded once, resumable, swapped in whole.

``kgrag build-edge-vectors`` (:func:`build_edge_vectors`) works in ``.<model>.building`` beside the target
(:func:`kgrag.indexes.edge_vectors.staging_dir`), under a lock: it streams the graph's edges, embeds each
distinct sentence not yet saved (without keeping the vectors in the embedder's memory) and saves each chunk of
vectors as it goes, so a killed build run again skips the sentences its chunks hold. The finished store is
merged, checked as loading checks it (:func:`kgrag.indexes.edge_vectors.load`), and published the way every
builder publishes (:mod:`kgrag.artefacts`: the build lock, two renames, leftovers swept). The store's
layout is :mod:`kgrag.indexes.edge_vectors`'s.

Example::

    from kgrag.indexes.edge_vector_build import build_edge_vectors
    report = build_edge_vectors(settings, store, embedder)
    report.sentences, report.embedded, report.resumed
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from kgrag.encoders.embeddings import Embedder
from kgrag.errors import KgragError
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import edge_sentence
from kgrag.artefacts import build_lock, publish, recover, verify, write_atomically, write_manifest
from kgrag.indexes.edge_vectors import (
    BUILD_FILE,
    KEYS_FILE,
    KIND,
    META_FILE,
    REBUILD,
    VECTORS_FILE,
    EdgeVectorsMeta,
    edge_vectors_dir,
    graph_identity,
    load,
    sentence_keys,
    staging_dir,
)
from kgrag.settings import Settings


class BuildReport(BaseModel):
    """What a build did."""

    directory: str
    edges: int = Field(description="Edges read from the graph")
    sentences: int = Field(description="Distinct sentences stored")
    embedded: int = Field(description="Sentences embedded by this run (the rest: resumed chunks or cache hits)")
    resumed: int = Field(description="Sentences found in the chunks of an interrupted build")
    bytes: int
    seconds: float


def _chunks(staging: Path) -> list[str]:
    """Committed chunks (their keys file is written last), in order."""
    return sorted(p.name[: -len(".keys.npy")] for p in staging.glob("chunk-*.keys.npy"))


def _save_chunk(staging: Path, index: int, keys: np.ndarray, vectors: np.ndarray) -> None:
    """Vectors first, then keys (the commit), each by atomic rename."""
    name = f"chunk-{index:06d}"
    for suffix, array in ((".vectors.npy", vectors), (".keys.npy", keys)):
        write_atomically(staging / f"{name}{suffix}", lambda handle, array=array: np.save(handle, array))


def _resume(staging: Path, meta: EdgeVectorsMeta) -> tuple[set[int], int]:
    """Keys already embedded by an interrupted build of the same model and graph; else start over."""
    build_file = staging / BUILD_FILE
    if build_file.exists():
        try:
            previous = EdgeVectorsMeta.model_validate_json(build_file.read_bytes())
        except (ValidationError, ValueError):
            previous = None
        same = previous is not None and previous.model_copy(update={"built_at": ""}) == meta.model_copy(
            update={"built_at": ""})
        if not same:
            print(f"note: {staging} holds a build of another model or graph; starting over", file=sys.stderr)
            for path in staging.iterdir():
                if path.name != ".lock":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
    build_file.write_text(meta.model_dump_json(indent=1))
    done: set[int] = set()
    chunks = _chunks(staging)
    for name in chunks:
        done.update(int(k) for k in np.load(staging / f"{name}.keys.npy", allow_pickle=False))
    return done, len(chunks)


def build_edge_vectors(settings: Settings, store: GraphStore, embedder: Embedder, *, chunk_size: int = 20_000,
                       read_batch: int = 10_000, progress: bool = True,
                       stop_after_chunks: int | None = None) -> BuildReport:
    """Embed every edge sentence of ``store`` and swap the finished store in (resumable; see the module docstring).

    ``stop_after_chunks`` stops (raising :class:`KeyboardInterrupt`) after saving that many new chunks: tests
    use it to kill a build part way.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    target = edge_vectors_dir(settings)
    staging = staging_dir(target)
    identity = graph_identity(store)
    meta = EdgeVectorsMeta(model=embedder.model_name, dimension=embedder.dimension, graph=identity)
    encode = embedder.encode_once  # the vectors not kept in the embedder's memory (a whole graph would not fit)
    with build_lock(target, kind=KIND, rebuild=REBUILD):  # the one build lock (kgrag.artefacts)
        recover(target, kind=KIND, rebuild=REBUILD)
        staging.mkdir(parents=True, exist_ok=True)
        done, next_chunk = _resume(staging, meta)
        resumed = len(done)
        pending: dict[int, str] = {}
        edges = embedded = saved = 0

        def flush() -> None:
            """Embed and save the first ``chunk_size`` pending sentences as the next chunk."""
            nonlocal next_chunk, embedded, saved
            take = list(pending)[:chunk_size]
            keys = np.array(take, dtype=np.uint64)
            vectors = encode([pending[k] for k in take]).astype(np.float16)
            _save_chunk(staging, next_chunk, keys, vectors)
            done.update(take)
            for key in take:
                del pending[key]
            embedded += len(take)
            next_chunk += 1
            saved += 1
            if stop_after_chunks is not None and saved >= stop_after_chunks:
                raise KeyboardInterrupt(f"stopped after {saved} chunk(s) (test)")

        with tqdm(total=identity.edges, unit="edge", desc="edge vectors", disable=not progress,
                  file=sys.stderr) as bar:
            for batch in store.iter_edges(read_batch):
                texts = [edge_sentence(edge) for edge in batch]
                for key, text in zip(sentence_keys(texts).tolist(), texts):
                    if key not in done and key not in pending:
                        pending[key] = text
                edges += len(batch)
                bar.update(len(batch))
                while len(pending) >= chunk_size:
                    flush()
            while pending:
                flush()
        meta = meta.model_copy(update={"built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                       "seconds": round(time.perf_counter() - started, 1)})
        out = _merge(staging, meta)
        publish(out, target)
    shutil.rmtree(staging, ignore_errors=True)
    size = sum(p.stat().st_size for p in target.iterdir() if p.is_file())
    return BuildReport(directory=str(target), edges=edges, sentences=len(done), embedded=embedded,
                       resumed=resumed, bytes=size, seconds=round(time.perf_counter() - started, 1))


def _merge(staging: Path, meta: EdgeVectorsMeta) -> Path:
    """Sorted keys and row-aligned vectors from the chunks, in ``staging/out`` with meta and manifest; checked."""
    out = staging / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    chunks = _chunks(staging)
    keys = np.concatenate([np.load(staging / f"{c}.keys.npy", allow_pickle=False) for c in chunks]) \
        if chunks else np.zeros(0, dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if sorted_keys.size > 1 and not bool(np.all(sorted_keys[1:] > sorted_keys[:-1])):
        raise KgragError(f"{staging}: chunks hold a key twice; delete {staging} and build again")
    np.save(out / KEYS_FILE, sorted_keys)
    where = np.empty_like(order)
    where[order] = np.arange(order.size)  # row of each chunk entry in the sorted file
    vectors = np.lib.format.open_memmap(out / VECTORS_FILE, mode="w+", dtype=np.float16,
                                        shape=(int(keys.size), meta.dimension))
    offset = 0
    for c in chunks:
        part = np.load(staging / f"{c}.vectors.npy", mmap_mode="r", allow_pickle=False)
        vectors[where[offset:offset + part.shape[0]]] = part
        offset += part.shape[0]
    vectors.flush()
    del vectors
    meta = meta.model_copy(update={"count": int(keys.size)})
    (out / META_FILE).write_text(meta.model_dump_json(indent=1))
    write_manifest(out, [KEYS_FILE, VECTORS_FILE, META_FILE], kind=KIND, rebuild=REBUILD)
    verify(out, full=True, kind=KIND, rebuild=REBUILD)
    load(out, model=meta.model, dimension=meta.dimension)
    return out


def describe(settings: Settings) -> dict[str, Any]:
    """Where the store is and whether it is there (for messages and ``kgrag doctor``)."""
    directory = edge_vectors_dir(settings)
    return {"path": str(directory), "present": directory.is_dir(), "setting": settings.edge_vectors}
