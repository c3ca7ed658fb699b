"""The embedder's on-disk vector cache: one folder per model, append-only shards, checked when first used.

Each on-disk shard is ``<shard>.npy`` (the vectors) and ``<shard>.json`` (their keys, the array's
shape and dtype, the ``.npy``'s size and SHA-256). A shard is checked when first used: size,
checksum, shape and dtype against the keys, finite values of unit length. A damaged shard is
never used: a warning on stderr names it, it is renamed ``<file>.damaged``, and its vectors are
computed again (the cache is derivable). Shards written before checksums (a bare key list) get
the shape, finiteness and length checks. :func:`check_cache` checks a folder without changing it
(``kgrag doctor``).

Example::

    cache = DiskCache(home / "embeddings" / "all-MiniLM-L6-v2", dimension=384)
    cache.put_many([text_hash("psoriasis")], vectors)   # keys: the SHA-1 of each text
    cache.get_many([text_hash("psoriasis")])
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from kgrag.artefacts import EMBEDDING_CACHE_KIND, ArtefactCheck, block_checksums

NORM_TOLERANCE = 1e-3


def text_hash(text: str) -> str:
    """A text's cache key: the SHA-1 of its UTF-8 bytes."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class ShardKeys(BaseModel):
    """The ``.json`` of a cache shard: row i of ``<shard>.npy`` embeds the text whose hash is ``keys[i]``."""

    format: int = 2
    keys: list[str]
    shape: tuple[int, int]
    dtype: str = "float32"
    npy_bytes: int
    npy_sha256: list[str]


class DamagedShard(ValueError):
    """A cache shard failed a check; the message says which file and what is wrong."""


def read_shard_keys(path: Path) -> ShardKeys | list[str]:
    """The keys file of a shard: :class:`ShardKeys`, or a bare key list (shards written before checksums)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedShard(f"{path}: unreadable keys file ({type(exc).__name__})") from None
    if isinstance(data, list) and all(isinstance(k, str) for k in data):
        return data
    try:
        return ShardKeys.model_validate(data)
    except ValidationError:
        raise DamagedShard(f"{path}: not a shard keys file") from None


def load_shard(directory: Path, shard: str, *, dimension: int | None,
               full: bool = True) -> tuple[list[str], np.ndarray]:
    """The keys and vectors (memory-mapped) of a shard, checked; :class:`DamagedShard` when a check fails.

    Always: the keys file parses, the ``.npy`` has the recorded size, a float32 array of one row per
    key (of ``dimension`` columns when given). With ``full``: its SHA-256 matches and every vector
    is finite and of unit length.
    """
    meta = read_shard_keys(directory / f"{shard}.json")
    keys = meta if isinstance(meta, list) else meta.keys
    npy = directory / f"{shard}.npy"
    try:
        size = npy.stat().st_size
    except FileNotFoundError:
        raise DamagedShard(f"{npy}: missing") from None
    if isinstance(meta, ShardKeys):
        if size != meta.npy_bytes:
            raise DamagedShard(f"{npy}: size {size} bytes, expected {meta.npy_bytes} (truncated or overwritten)")
        if full and block_checksums(npy) != meta.npy_sha256:
            raise DamagedShard(f"{npy}: checksum mismatch (same size, different content)")
    try:
        vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DamagedShard(f"{npy}: unreadable ({str(exc)[:120]})") from None
    columns = dimension if dimension is not None else (vectors.shape[1] if vectors.ndim == 2 else -1)
    if vectors.dtype != np.float32 or vectors.shape != (len(keys), columns):
        raise DamagedShard(f"{npy}: {vectors.dtype} array of shape {vectors.shape}, expected float32 of "
                           f"shape {(len(keys), columns)} (one row per key)")
    if full and len(keys):
        with np.errstate(all="ignore"):  # damaged values: reported below, not as numpy warnings
            norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
        bad = ~np.isfinite(norms) | (np.abs(norms - 1.0) > NORM_TOLERANCE)
        if bad.any():
            raise DamagedShard(f"{npy}: {int(bad.sum())} of {len(keys)} vectors are not finite unit vectors "
                               f"(row {int(np.argmax(bad))} has norm {norms[bad][0]!r})")
    return keys, vectors


def check_cache(directory: Path, *, full: bool = True, dimension: int | None = None) -> ArtefactCheck:
    """Check every shard of one model's cache folder without changing anything (for ``kgrag doctor``)."""
    started = time.perf_counter()
    result = ArtefactCheck(kind=EMBEDDING_CACHE_KIND, path=str(directory), status="ok", full=full,
                           rebuild=f"delete the named shard files (or the folder {directory}); "
                                   "their vectors are recomputed on the next use")
    for keys_file in sorted(directory.glob("shard-*.json")):
        try:
            load_shard(directory, keys_file.stem, dimension=dimension, full=full)
        except DamagedShard as exc:
            result.problems.append(str(exc))
        result.files += 2
        if full:
            result.bytes_checked += (directory / f"{keys_file.stem}.npy").stat().st_size \
                if (directory / f"{keys_file.stem}.npy").exists() else 0
    result.status = "damaged" if result.problems else "ok"
    result.seconds = round(time.perf_counter() - started, 4)
    return result


class DiskCache:
    """Append-only on-disk vector store: shards of (vectors .npy, keys .json), safe for concurrent writers.

    Each shard has a unique name (time, pid, random), its vectors are written before its keys and
    both land by atomic rename, so a reader sees a shard whole or not at all and two processes never
    overwrite each other's shards. New shards written by other processes are picked up on a miss.
    A shard is checked (:func:`load_shard`) when first used; a damaged one is set aside with a
    warning and its keys are looked up again (in other shards, or embedded again by the caller).
    """

    def __init__(self, directory: Path, dimension: int | None = None) -> None:
        self.directory = directory
        self.dimension = dimension
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
            try:
                meta = read_shard_keys(keys_file)
            except DamagedShard as exc:
                self._set_aside(shard, str(exc))
                continue
            for row, key in enumerate(meta if isinstance(meta, list) else meta.keys):
                self._index.setdefault(key, (shard, row))

    def _set_aside(self, shard: str, reason: str) -> None:
        """Warn, rename the shard's files to ``*.damaged`` and forget its keys."""
        print(f"warning: damaged embedding cache shard: {reason}; its vectors will be computed again "
              f"(the files are renamed to {shard}.*.damaged, delete them when convenient)", file=sys.stderr)
        for suffix in (".npy", ".json"):
            try:
                (self.directory / f"{shard}{suffix}").rename(self.directory / f"{shard}{suffix}.damaged")
            except FileNotFoundError:
                pass  # another process set it aside first, or the file was never there
        self._shards.pop(shard, None)
        lost = [key for key, (where, _) in self._index.items() if where == shard]
        for key in lost:
            del self._index[key]
        if lost:  # the same keys may be in other shards
            self._seen = {s for s in self._seen if s == shard}
            self._refresh()

    def _shard(self, shard: str) -> np.ndarray | None:
        if shard not in self._shards:
            try:
                _, self._shards[shard] = load_shard(self.directory, shard, dimension=self.dimension)
            except DamagedShard as exc:
                self._set_aside(shard, str(exc))
                return None
        return self._shards[shard]

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        if any(k not in self._index for k in keys):
            self._refresh()
        found: dict[str, np.ndarray] = {}
        for _ in range(3):  # a damaged shard is set aside and its keys looked up again
            damaged = False
            for key in keys:
                if key in found or key not in self._index:
                    continue
                shard, row = self._index[key]
                vectors = self._shard(shard)
                if vectors is None:
                    damaged = True
                    continue
                found[key] = np.asarray(vectors[row])
            if not damaged:
                break
        return found

    def put_many(self, keys: list[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        shard = f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp_vectors = self.directory / f".{shard}.npy.tmp"
        with tmp_vectors.open("wb") as handle:
            np.save(handle, vectors)
        meta = ShardKeys(keys=list(keys), shape=vectors.shape, dtype=str(vectors.dtype),
                         npy_bytes=tmp_vectors.stat().st_size, npy_sha256=block_checksums(tmp_vectors))
        tmp_vectors.rename(self.directory / f"{shard}.npy")
        tmp_keys = self.directory / f".{shard}.json.tmp"
        tmp_keys.write_text(meta.model_dump_json())
        tmp_keys.rename(self.directory / f"{shard}.json")
        self._seen.add(shard)
        for row, key in enumerate(keys):
            self._index.setdefault(key, (shard, row))
