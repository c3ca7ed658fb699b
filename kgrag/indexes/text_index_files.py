"""The text index's files and manifest: names, the manifest model, reading it.

An index lives in ``settings.text_index_dir``::

    manifest.json      embedding model, dimension, rows and live passages, shards, corpus checksum, index type
    faiss.index        the dense index over every row (inner product over unit vectors = cosine)
    passages.sqlite    the passage store: text and metadata by row (:mod:`kgrag.indexes.passage_store`)
    vectors/           shard-NNNNN.npy: each shard's float32 vectors (IVF-PQ re-ranking, rebuilds, adds)
    bm25/              the bm25s index, memory-mapped on load (when built with BM25)
    terms/             each shard's BM25 term counts (adds re-derive BM25 from them)
    artefacts.json     every file's size and block checksums (:mod:`kgrag.artefacts`), written last
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from kgrag.artefacts import TEXT_INDEX_REBUILD
from kgrag.errors import KgragError

IndexType = Literal["flat", "hnsw", "ivfpq"]
MANIFEST_FILE = "manifest.json"
FAISS_FILE = "faiss.index"
BM25_DIR = "bm25"
VECTORS_DIR = "vectors"
TERMS_DIR = "terms"
FORMAT_VERSION = 2


class TextIndexError(KgragError):
    """The text index is missing, unreadable, or cannot answer the request."""


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}"


class ShardInfo(BaseModel):
    """One committed shard: rows ``first_row .. first_row + rows - 1``, and the checksum of its passages."""

    name: str
    first_row: int
    rows: int
    checksum: str


class TextIndexManifest(BaseModel):
    """What an index was built from; checked on every load."""

    format_version: int = FORMAT_VERSION
    embedding_model: str
    dimension: int
    passage_count: int = Field(description="Live passages (search can return them)")
    rows: int = Field(description="Rows in the store and the dense index, replaced ones included")
    corpus_checksum: str = Field(description="SHA-256 over the live passages' ids, PMIDs and texts in row order")
    index_type: IndexType
    index_params: dict[str, int] = Field(default_factory=dict)
    bm25: bool = False
    bm25_stemmer: str | None = None
    shards: list[ShardInfo] = Field(default_factory=list)
    build_id: str = ""
    sources: list[str] = Field(default_factory=list, description="What each build (the first, then adds) read")
    build_seconds: float
    built_at: str


def read_text_index_manifest(directory: Path) -> TextIndexManifest:
    """The ``manifest.json`` of the text index in ``directory``; :class:`TextIndexError` when missing, unreadable or old."""
    path = Path(directory) / MANIFEST_FILE
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise TextIndexError(f"no text index at {directory} (no {MANIFEST_FILE}); build it with "
                             f"`{TEXT_INDEX_REBUILD}` or set KGRAG_TEXT_INDEX_DIR") from None
    except OSError as exc:
        raise TextIndexError(f"{path}: unreadable manifest ({exc}); rebuild it with `{TEXT_INDEX_REBUILD}`") from None
    try:
        version = json.loads(raw).get("format_version", 1)
    except (ValueError, AttributeError):
        version = None
    if version is not None and version != FORMAT_VERSION:
        raise TextIndexError(f"the text index at {directory} has format {version}, this version reads format "
                             f"{FORMAT_VERSION} (passages in a store, not in the corpus file); rebuild it with "
                             f"`{TEXT_INDEX_REBUILD}`")
    try:
        return TextIndexManifest.model_validate_json(raw)
    except ValueError as exc:
        raise TextIndexError(f"{path}: unreadable manifest ({str(exc)[:200]}); rebuild it with "
                             f"`{TEXT_INDEX_REBUILD}`") from None
