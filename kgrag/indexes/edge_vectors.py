"""Edge-sentence vectors computed once, at build time, and memory-mapped at query time.

Every edge of the graph becomes the sentence pruning compares with the question
(:func:`kgrag.retrieval.graph_context.edge_evidence`, i.e. :func:`kgrag.graph.schema.edge_sentence`). ``kgrag
build-edge-vectors`` embeds each distinct sentence once and stores, beside the graph::

    <graph>.edge-vectors/<model>/          (Neo4j: <home>/edge-vectors/<uri>/<model>/)
        keys.npy       uint64, sorted: the first 8 bytes of each sentence's SHA-1 (big-endian)
        vectors.npy    float16 (count, dimension), row i embeds the sentence whose key is keys[i]
        meta.json      model, dimension, dtype, count, and the graph it was built from
        artefacts.json sizes and block checksums (kgrag.artefacts)

Sentences are keyed by their text, not by edge: a vector can never belong to another sentence, so
a graph changed since the build gives misses (embedded on demand), never wrong vectors. Loading
maps both arrays (``np.load(mmap_mode="r")``: nothing is copied); a lookup is one
``np.searchsorted`` over the keys and a gather of the found rows, so pruning a cold question is a
lookup plus a matrix product. float16 keeps 3 significant digits: similarities differ from the
float32 embedder's by at most ~1e-3.

The build (:mod:`kgrag.indexes.edge_vector_build`) is resumable: it works in ``.<model>.building`` beside
the target, saving each chunk of vectors as it goes; a killed build run again skips the sentences its chunks
hold. The finished store is checked and published the way every builder publishes (:mod:`kgrag.artefacts`):
under the build lock ``<model>.build.lock``, swapped in by two renames (the old one set aside, then deleted); the
next reader or build puts back a store a killed build set aside, and a successful build deletes what interrupted
builds left.

Checks on load (:func:`open_edge_vectors`): the manifest (sizes; checksums for small stores or
after an interrupted build), the model and dimension against the embedder, array shapes and dtypes,
sorted unique keys; any failure is an :class:`~kgrag.errors.ArtefactError` naming
``kgrag build-edge-vectors``. A store built from another graph build (build id or edge count differ)
is still correct for every sentence it holds: with ``edge_vectors=auto`` it is used with a warning
(misses are embedded on demand), with ``edge_vectors=on`` it is an error.

Example::

    from kgrag.indexes.edge_vectors import open_edge_vectors
    vectors = open_edge_vectors(settings, store, embedder)   # None when there is no store (auto)
    found, rows = vectors.lookup(["Disease psoriasis associates Gene HLA-B and Provenance ..."])
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from kgrag.artefacts import leftovers, verify_on_load, wait_for_swap
from kgrag.encoders.embeddings import Embedder, settings_for_identity, settings_identity
from kgrag.encoders.model_files import slug
from kgrag.errors import ArtefactError
from kgrag.graph.base import GraphStore
from kgrag.settings import Settings, mask_uri

KIND = "edge vectors"
REBUILD = "kgrag build-edge-vectors"
FORMAT_VERSION = 1
DTYPE = "float16"
KEYS_FILE, VECTORS_FILE, META_FILE, BUILD_FILE = "keys.npy", "vectors.npy", "meta.json", "build.json"
NORM_TOLERANCE = 2e-2  # float16 rows of unit vectors: norms within 1 +- 2e-2 (renormalised on lookup)


class EdgeVectorsError(ArtefactError):
    """The edge-vector store is missing, damaged or does not match the model or the graph."""


class GraphIdentity(BaseModel):
    """Which graph a store was built from: backend, where, its build id (when marked) and counts."""

    backend: str
    location: str
    build_id: str | None = None
    nodes: int = Field(ge=0)
    edges: int = Field(ge=0)

    def differs(self, other: "GraphIdentity") -> list[str]:
        """What differs from ``other`` (build id, counts); empty when it is the same graph build."""
        out = []
        if self.build_id != other.build_id:
            out.append(f"build {other.build_id} (store built from {self.build_id})")
        if (self.nodes, self.edges) != (other.nodes, other.edges):
            out.append(f"{other.nodes:,} nodes / {other.edges:,} edges (store built from "
                       f"{self.nodes:,} / {self.edges:,})")
        return out


class EdgeVectorsMeta(BaseModel):
    """``meta.json`` of a store (and, as ``build.json``, of a build in progress, with count 0)."""

    format_version: int = FORMAT_VERSION
    model: str
    dimension: int = Field(gt=0)
    dtype: str = DTYPE
    count: int = Field(default=0, ge=0, description="Distinct sentences (rows)")
    graph: GraphIdentity
    built_at: str = ""
    seconds: float = 0.0


def edge_vectors_dir(settings: Settings) -> Path:
    """Where the store of the configured graph and embedding model lives (beside an embedded graph)."""
    model = slug(settings_identity(settings))
    if settings.graph_uri.startswith("ladybug://"):
        from kgrag.graph.ladybug_store import path_from_uri

        graph = path_from_uri(settings.graph_uri)
        return graph.with_name(graph.name + ".edge-vectors") / model
    where = slug(mask_uri(settings.graph_uri).split("://", 1)[-1] + (f"-{settings.graph_database}"
                                                                       if settings.graph_database else ""))
    return settings.home / "edge-vectors" / where / model


def staging_dir(target: Path) -> Path:
    """The resumable build folder of ``target``: ``.<model>.building`` beside it."""
    return target.with_name(f".{target.name}.building")


def sentence_keys(texts: Sequence[str]) -> np.ndarray:
    """uint64 keys of sentences: the first 8 bytes (big-endian) of each text's SHA-1."""
    if not texts:
        return np.zeros(0, dtype=np.uint64)
    blob = b"".join(hashlib.sha1(t.encode("utf-8")).digest()[:8] for t in texts)
    return np.frombuffer(blob, dtype=">u8").astype(np.uint64)


def graph_identity(store: GraphStore) -> GraphIdentity:
    """The identity of the graph ``store`` serves now (one marker read, one count query)."""
    marker = store.read_marker()
    schema = store.schema()
    return GraphIdentity(backend=store.backend, location=mask_uri(store.location),
                         build_id=marker.build_id if marker is not None else None,
                         nodes=schema.total_nodes, edges=schema.total_edges)


class EdgeVectorStore:
    """A loaded store: sorted keys and float16 vectors, both memory-mapped. Build with :func:`load`."""

    def __init__(self, directory: Path, meta: EdgeVectorsMeta, keys: np.ndarray, vectors: np.ndarray,
                 stale: list[str] | None = None) -> None:
        self.directory = directory
        self.meta = meta
        self.keys = keys
        self.vectors = vectors
        self.stale = stale or []

    @property
    def count(self) -> int:
        return int(self.keys.shape[0])

    def describe(self) -> str:
        """For the trace: 'N sentences (stale: ...)'."""
        state = f"; built from another graph build: {', '.join(self.stale)}" if self.stale else ""
        return f"{self.count} sentences{state}"

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, float32 unit vectors): row i embeds texts[i] when found[i], else it is zero."""
        out = np.zeros((len(texts), self.meta.dimension), dtype=np.float32)
        if not texts or self.count == 0:
            return np.zeros(len(texts), dtype=bool), out
        wanted = sentence_keys(texts)
        pos = np.searchsorted(self.keys, wanted)
        pos_clipped = np.minimum(pos, self.count - 1)
        found = np.asarray(self.keys[pos_clipped] == wanted)
        if found.any():
            idx = pos_clipped[found]
            order = np.argsort(idx, kind="stable")
            rows = np.empty((idx.size, self.meta.dimension), dtype=np.float32)
            rows[order] = self.vectors[idx[order]]  # gathered in file order (sequential reads)
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            if not np.all(np.isfinite(norms)) or np.any(np.abs(norms - 1.0) > NORM_TOLERANCE):
                bad = int(np.argmax(~np.isfinite(norms[:, 0]) | (np.abs(norms[:, 0] - 1.0) > NORM_TOLERANCE)))
                raise EdgeVectorsError(
                    f"{KIND} at {self.directory} are damaged: the vector of {texts[int(np.flatnonzero(found)[bad])][:80]!r} "
                    f"has norm {float(norms[bad, 0])!r}, not 1; rebuild it with `{REBUILD}`")
            out[found] = rows / norms
        return found, out


def read_meta(path: Path, what: str) -> EdgeVectorsMeta:
    try:
        return EdgeVectorsMeta.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise EdgeVectorsError(f"{what}: {path} is missing; rebuild it with `{REBUILD}`") from None
    except (OSError, ValidationError, ValueError) as exc:
        raise EdgeVectorsError(f"{what}: {path} is unreadable ({str(exc)[:120]}); rebuild it with `{REBUILD}`") from None


def load(directory: Path, *, model: str, dimension: int, identity: GraphIdentity | None = None) -> EdgeVectorStore:
    """Check and map the store in ``directory`` (see the module docstring); :class:`EdgeVectorsError` if it fails."""
    what = f"{KIND} at {directory}"
    wait_for_swap(directory, kind=KIND, rebuild=REBUILD)
    if not directory.is_dir():
        raise EdgeVectorsError(f"no {KIND} at {directory} (model {model}); build them with `{REBUILD}`")
    try:
        verify_on_load(directory, kind=KIND, rebuild=REBUILD,
                       interrupted=[*leftovers(directory), *[p for p in [staging_dir(directory)] if p.exists()]])
    except ArtefactError as exc:
        raise EdgeVectorsError(str(exc)) from None
    meta = read_meta(directory / META_FILE, what)
    if meta.format_version != FORMAT_VERSION:
        raise EdgeVectorsError(f"{what} has format {meta.format_version}, this kgrag reads {FORMAT_VERSION}; "
                               f"rebuild it with `{REBUILD}`")
    if meta.model != model or meta.dimension != dimension:
        raise EdgeVectorsError(f"{what} were built with model {meta.model} ({meta.dimension} dimensions), the "
                               f"embedder is {model} ({dimension}); rebuild them with `{REBUILD}`")
    try:
        keys = np.load(directory / KEYS_FILE, mmap_mode="r", allow_pickle=False)
        vectors = np.load(directory / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise EdgeVectorsError(f"{what} are damaged: {str(exc)[:120]}; rebuild them with `{REBUILD}`") from None
    if (keys.dtype != np.uint64 or keys.shape != (meta.count,) or vectors.dtype != np.dtype(meta.dtype)
            or vectors.shape != (meta.count, meta.dimension)):
        raise EdgeVectorsError(f"{what} are damaged: keys {keys.dtype}{keys.shape}, vectors {vectors.dtype}"
                               f"{vectors.shape}, expected uint64 ({meta.count},) and {meta.dtype} "
                               f"({meta.count}, {meta.dimension}); rebuild them with `{REBUILD}`")
    if meta.count > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        raise EdgeVectorsError(f"{what} are damaged: the keys are not sorted and unique; rebuild them with `{REBUILD}`")
    stale = meta.graph.differs(identity) if identity is not None else []
    return EdgeVectorStore(directory, meta, keys, vectors, stale)


def open_edge_vectors(settings: Settings, store: GraphStore | None, embedder: Embedder) -> EdgeVectorStore | None:
    """The store the pipeline uses, per ``settings.edge_vectors``; None means embed on demand.

    ``off``: None. ``auto``: the store when there is one (a store of another graph build is used, with a
    warning on stderr, since its vectors are keyed by sentence text); None when there is none. ``on``: the
    store, which must be there and match the graph build. A damaged store or one of another model is an
    :class:`EdgeVectorsError` in both ``auto`` and ``on``.
    """
    if settings.edge_vectors == "off" or store is None:
        return None
    directory = edge_vectors_dir(settings)
    wait_for_swap(directory, kind=KIND, rebuild=REBUILD)
    others = other_embeddings(directory) if not directory.exists() else []
    hint = f"; edge vectors of other embeddings are beside it: {'; '.join(others)}" if others else ""
    if not directory.exists() and settings.edge_vectors == "auto":
        if others:  # embedding on demand is ~100x slower per question; say why it happens
            print(f"warning: no {KIND} for {embedder.model_name} at {directory}, so sentences are embedded at query "
                  f"time; build them with `{REBUILD}`{hint}", file=sys.stderr)
        return None
    try:
        loaded = load(directory, model=embedder.model_name, dimension=embedder.dimension,
                      identity=graph_identity(store))
    except EdgeVectorsError as exc:
        if not hint:
            raise
        raise EdgeVectorsError(f"{exc}{hint}") from None
    if loaded.stale:
        message = (f"{KIND} at {directory} were built from another graph build ({'; '.join(loaded.stale)}); "
                   f"sentences not in them are embedded at query time; rebuild them with `{REBUILD}`")
        if settings.edge_vectors == "on":
            raise EdgeVectorsError(message + " (or set KGRAG_EDGE_VECTORS=auto to use them as they are)")
        print(f"warning: {message}", file=sys.stderr)
    return loaded


def other_embeddings(directory: Path) -> list[str]:
    """The stores beside ``directory`` (other embedding models, backends or precisions), each as its model
    identity and the settings that use it."""
    found = []
    for path in sorted(directory.parent.glob(f"*/{META_FILE}")) if directory.parent.is_dir() else []:
        try:
            model = read_meta(path, f"{KIND} at {path.parent}").model
        except EdgeVectorsError:
            continue  # an unreadable neighbour is its own problem (named when it is the one in use)
        if path.parent != directory:
            found.append(f"{model} ({settings_for_identity(model)})")
    return found
