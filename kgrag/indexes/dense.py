"""The dense index's FAISS side: which type, its parameters, training on a sample, filling, reading, writing.

``auto`` keeps exact search (``flat``) up to 100k live passages and uses IVF-PQ beyond: trained on
a sample of the saved vectors, filled shard by shard, 96-byte codes per passage, searched with
``nprobe`` lists and re-ranked exactly from the saved vectors (:meth:`TextIndex.search_dense`), so
its memory is the codes and its scores are true cosines. ``hnsw`` can be forced (it holds the full
vectors in memory). Flat and IVF indexes are memory-mapped on load, so loading does not read them.

Example::

    index, params = new_index("ivfpq", 384, rows=1_000_000)
    index.train(train_sample(shard_arrays, rows=1_000_000))
    fill_index(index, shard_arrays, total=1_000_000)
    write_faiss(index, path); read_faiss(path)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from kgrag.artefacts import TEXT_INDEX_REBUILD
from kgrag.errors import ArtefactError
from kgrag.indexes.text_index_files import IndexType, TextIndexError

FLAT_MAX = 100_000
TRAIN_MAX = 200_000  # IVF-PQ training sample: this many vectors, or 40 per list where that is more
SMALL_BATCH = 20  # FAISS's own BLAS threshold: below it, one thread per search call
COSINE_TOLERANCE = 1e-3


def choose_index_type(passage_count: int, requested: str = "auto") -> IndexType:
    """``requested`` unless it is ``auto``; then flat up to 100k passages, IVF-PQ beyond."""
    if requested in ("flat", "hnsw", "ivfpq"):
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise TextIndexError(f"index type {requested!r}: expected auto, flat, hnsw or ivfpq")
    return "flat" if passage_count <= FLAT_MAX else "ivfpq"


def ivfpq_params(rows: int, dimension: int) -> dict[str, int]:
    """Lists ~2 sqrt(rows) (at least 39 training vectors each), 8 bits x dim/4 sub-quantisers; trained on ``train``.

    dim/4 (96 bytes a passage at 384 dimensions): on 190k real passage vectors, recall@10 against exact
    search with 64 lists probed and x4 re-ranking was 0.969, against 0.913 with dim/8 (48 bytes).

    What search probes and re-ranks are settings (``text_nprobe``, ``text_rerank``), not build parameters.
    """
    if rows < 16 * 39:
        raise TextIndexError(f"ivfpq needs at least {16 * 39} passages to train, got {rows}; use flat")
    nbits = 8 if rows >= 256 * 39 else 6 if rows >= 64 * 39 else 4
    nlist = max(1, min(int(2 * math.sqrt(rows)), rows // 39))
    m = next(m for m in (dimension // 4, dimension // 2, dimension) if m and dimension % m == 0)
    train = min(rows, max(TRAIN_MAX, 40 * nlist))
    return {"nlist": nlist, "m": m, "nbits": nbits, "train": train}


def new_index(kind: IndexType, dimension: int, rows: int) -> tuple[faiss.Index, dict[str, int]]:
    """An empty CPU index of ``kind`` for ``rows`` unit vectors (inner product), and its parameters."""
    if kind == "flat":
        return faiss.IndexFlatIP(dimension), {}
    if kind == "hnsw":
        params = {"M": 32, "efConstruction": 80, "efSearch": 128}
        index = faiss.IndexHNSWFlat(dimension, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
        index.hnsw.efSearch = params["efSearch"]
        return index, params
    if kind == "ivfpq":
        params = ivfpq_params(rows, dimension)
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dimension), dimension, params["nlist"], params["m"], params["nbits"],
                                 faiss.METRIC_INNER_PRODUCT)
        return index, params
    raise TextIndexError(f"unknown index type {kind!r}")


def gpu_count() -> int:
    """CUDA devices faiss can use (0 without faiss-gpu)."""
    return int(getattr(faiss, "get_num_gpus", lambda: 0)()) if hasattr(faiss, "StandardGpuResources") else 0


def cluster_on_gpus(index: faiss.Index) -> bool:
    """With faiss-gpu and a CUDA device, run the IVF lists' k-means on every GPU (its ``clustering_index``).

    The trained index is the same kind of CPU index; only training moves. Not run here (no GPU was lent
    to this project's machine; docs/text_index.md, "On a GPU").
    """
    if gpu_count() == 0:
        return False
    ivf = faiss.extract_index_ivf(index)
    flat = faiss.IndexFlatIP(ivf.d) if ivf.metric_type == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(ivf.d)
    ivf.clustering_index = faiss.index_cpu_to_all_gpus(flat)
    return True


def train_sample(shards: Sequence[np.ndarray], rows: int, *, limit: int = TRAIN_MAX, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` rows drawn evenly at random (fixed seed) from the shard arrays, read shard by shard."""
    take = np.sort(np.random.default_rng(seed).choice(rows, size=min(rows, limit), replace=False))
    parts, start = [], 0
    for shard in shards:
        inside = take[(take >= start) & (take < start + len(shard))] - start
        if len(inside):
            parts.append(np.asarray(shard[inside], dtype=np.float32))
        start += len(shard)
    return np.ascontiguousarray(np.concatenate(parts))


def fill_index(index: faiss.Index, shards: Iterable[np.ndarray], *, total: int, progress: bool = False,
               label: str = "dense", batch_size: int = 65_536) -> None:
    """Add each shard's vectors in order (row ``r`` gets FAISS id ``r``)."""
    from tqdm import tqdm

    with tqdm(total=total, desc=f"text index: {label}", unit="vector", disable=not progress) as bar:
        for shard in shards:
            for start in range(0, len(shard), batch_size):
                chunk = np.ascontiguousarray(shard[start:start + batch_size], dtype=np.float32)
                index.add(chunk)
                bar.update(len(chunk))


def build_index(vectors: np.ndarray, kind: IndexType) -> tuple[faiss.Index, dict[str, int]]:
    """An index of ``kind`` over vectors in memory (benchmarks and tests; builds go shard by shard)."""
    index, params = new_index(kind, vectors.shape[1], len(vectors))
    if kind == "ivfpq":
        index.train(train_sample([vectors], len(vectors), limit=params["train"]))
    fill_index(index, [vectors], total=len(vectors))
    return index, params


def search(index: faiss.Index, vectors: np.ndarray, k: int, params: faiss.SearchParameters | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """One FAISS search call; batches under 20 queries run on one OpenMP thread.

    FAISS parallelises small batches poorly: on a 2-core machine shared with other processes a
    single flat query took 32 ms p50 on 2 threads and 1.5 ms on 1 (bench/text_index.py).
    """
    if len(vectors) >= SMALL_BATCH or not hasattr(faiss, "omp_get_max_threads"):
        return index.search(vectors, k, params=params)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(vectors, k, params=params)
    finally:
        faiss.omp_set_num_threads(threads)


def search_parameters(kind: IndexType, params: dict[str, int], selector: faiss.IDSelector | None, depth: int, *,
                      nprobe: int = 64) -> faiss.SearchParameters | None:
    """FAISS search parameters: lists probed (IVF) or efSearch (HNSW), and the selector of allowed rows."""
    if kind == "ivfpq":
        found: faiss.SearchParameters = faiss.SearchParametersIVF(nprobe=nprobe)
    elif kind == "hnsw":
        found = faiss.SearchParametersHNSW(efSearch=max(params.get("efSearch", 128), depth))
    elif selector is None:
        return None
    else:
        found = faiss.SearchParameters()
    if selector is not None:
        found.sel = selector  # the caller keeps the selector (and its bitmap) alive for the search
    return found


def write_faiss(index: faiss.Index, path: Path) -> None:
    """``faiss.write_index`` through a Python file, so a full disk raises ``OSError`` (faiss's own writer only
    prints a failed close to stderr: a small index on a full disk was written short without an error)."""
    with path.open("wb") as handle:
        writer = faiss.PyCallbackIOWriter(handle.write)
        faiss.write_index(index, writer)
        del writer
        handle.flush()
        os.fsync(handle.fileno())


def read_faiss(path: Path, *, mmap: bool = False) -> faiss.Index:
    """``faiss.read_index`` (memory-mapped with ``mmap``), its failures as :class:`ArtefactError`."""
    flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0  # maps flat codes and IVF lists
    try:
        return faiss.read_index(str(path), flags)
    except (RuntimeError, MemoryError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtefactError(f"{path} is damaged or unreadable ({first[:200]}); rebuild the text index "
                            f"with `{TEXT_INDEX_REBUILD}`") from None
