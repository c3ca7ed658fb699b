"""The text index: FAISS over passage embeddings, BM25 beside it, fused by reciprocal rank; passages by row.

An index lives in ``settings.text_index_dir`` (files: :mod:`kgrag.indexes.text_index_files`; the build:
:mod:`kgrag.indexes.text_index_build`). Loading reads the manifest, memory-maps the dense index and
BM25, and opens the passage store (:mod:`kgrag.indexes.passage_store`): it never reads the corpus,
so it takes well under 2 s whatever the size (docs/text_index.md, "Scale"). Search reads the
passages of its hits by row, one store query per batch.

The FAISS type follows the corpus size (``settings.text_index_type="auto"``): exact ``flat`` up to
100k passages, IVF-PQ beyond (re-ranked exactly from the saved vectors); ``hnsw`` can be forced. With
faiss-gpu and a CUDA device, flat and IVF-PQ indexes are searched on the GPU (a filtered search on
the CPU copy). Rows replaced by updates or deletions, and rows outside a :class:`TextFilter` (year
range, MeSH terms), are never returned: FAISS skips them by a bitmap of allowed rows, BM25 by a mask.

Loading checks the manifest against the embedder in use and, when given, the corpus: a mismatch is
an :class:`IndexMismatchError`, never silently wrong neighbours. It also verifies the files against
``artefacts.json`` (sizes always, checksums when the index is at most 128 MiB or a killed build left
its staging folder beside it), and search checks that dense scores are cosines and BM25 scores
finite: a damaged file is an :class:`~kgrag.errors.ArtefactError` naming it and
``kgrag build-text-index``, never evidence. A reader whose index was swapped while it loaded starts
again on the new one.

Example::

    from kgrag.indexes.text_index import TextIndex
    index = TextIndex.load(settings)
    hits = index.search(["Does metformin reduce cancer risk?"], k=10)    # one list of PassageHit per query
    hits[0][0].passage.pmid, hits[0][0].score
    index.search(["psoriasis genes"], text_filter=TextFilter(year_min=2010, mesh=["Psoriasis"]))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from pydantic import BaseModel

from kgrag.artefacts import (
    TEXT_INDEX_KIND,
    TEXT_INDEX_REBUILD,
    ArtefactCheck,
    leftovers,
    path_bytes,
    verify_on_load,
    wait_for_swap,
)
from kgrag.encoders.embeddings import Embedder, SentenceTransformerEmbedder, embedder_from_settings, settings_for_identity, \
    settings_identity
from kgrag.errors import ArtefactError, BackendUnavailableError, IndexMismatchError
from kgrag.indexes.bm25_index import Bm25Index
from kgrag.indexes.corpus import Passage, corpus_checksum
from kgrag.indexes.dense import COSINE_TOLERANCE, FLAT_MAX, choose_index_type, gpu_count, read_faiss, search_parameters
from kgrag.indexes.dense import search as faiss_search
from kgrag.indexes.passage_store import STORE_FILE, PassageStore
from kgrag.indexes.text_filter import TextFilter, settings_filter
from kgrag.indexes.text_index_files import (
    BM25_DIR,
    FAISS_FILE,
    MANIFEST_FILE,
    VECTORS_DIR,
    TextIndexError,
    TextIndexManifest,
    read_text_index_manifest,
)
from kgrag.settings import Settings
from kgrag.types import Evidence

__all__ = ["BM25_DIR", "FAISS_FILE", "FLAT_MAX", "MANIFEST_FILE", "STORE_FILE", "PassageHit", "TextFilter", "TextIndex",
           "TextIndexError", "TextIndexManifest", "check_index_model", "choose_index_type", "default_embedder",
           "faiss_search", "read_text_index_manifest"]

SearchMethod = Literal["dense", "bm25", "rrf"]  # how a hit was found (also settings.text_fusion)
RRF_K = 60
FUSION_DEPTH = 100  # candidates taken from each retriever before reciprocal-rank fusion
FILTER_CACHE = 16  # filters whose allowed rows are kept


class PassageHit(BaseModel):
    """One retrieved passage: ``rank`` counts from 1; ``score`` is cosine (dense), BM25, or RRF; ``row`` its store row."""

    passage: Passage
    score: float
    rank: int
    retriever: SearchMethod
    row: int | None = None

    def to_evidence(self) -> Evidence:
        """The hit as pipeline Evidence (kind "text"), its PMID as provenance ("PMID:<id>").

        ``score`` is the retrieval score (cosine for dense; pruning re-scores against the question).
        """
        passage = self.passage
        return Evidence(kind="text", text=passage.text, score=self.score, id=passage.id,
                        sources=[f"PMID:{passage.pmid}"] if passage.pmid else [passage.source],
                        properties={"retriever": self.retriever, "rank": self.rank, "pmid": passage.pmid,
                                    "title": passage.title, "corpus": passage.source, "year": passage.year})


def default_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """The settings' embedding model and backend, with its vector cache under ``<home>/embeddings``."""
    return embedder_from_settings(settings)


Ranked = tuple[np.ndarray, np.ndarray]  # (rows, scores) of one query


class _Allowed:
    """Rows a search may return (``keep``, one bool per row; None: all): a FAISS selector over their bitmap (kept
    alive here) and, when BM25 asks, a weight mask."""

    def __init__(self, keep: np.ndarray | None) -> None:
        self.keep = keep
        self.count = -1 if keep is None else int(keep.sum())  # -1: every row
        self.bits = None if keep is None else np.packbits(keep, bitorder="little")
        self.selector = None if keep is None else faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(self.bits))
        self._mask: np.ndarray | None = None

    @classmethod
    def rows(cls, rows: np.ndarray, total: int) -> "_Allowed":
        keep = np.zeros(total, dtype=bool)
        keep[rows] = True
        return cls(keep)

    @property
    def mask(self) -> np.ndarray | None:
        if self.keep is not None and self._mask is None:
            self._mask = self.keep.astype(np.float32)
        return self._mask

    def allows(self, rows: np.ndarray) -> np.ndarray:
        return np.ones(len(rows), dtype=bool) if self.keep is None else self.keep[rows]


class TextIndex:
    """A passage index: dense FAISS search, optional BM25, reciprocal-rank fusion, filters.

    Build with :func:`kgrag.indexes.text_index_build.build_text_index` (or :meth:`TextIndex.build` for
    passages in memory) and open with :meth:`TextIndex.load`, which takes an existing ``embedder`` so
    the pipeline shares one model. ``search`` takes a batch of queries and makes one embedding call,
    one FAISS call and one passage-store query for all of them.

    Example::

        index = TextIndex.load(settings, embedder=pipeline_embedder)
        for hit in index.search(["Is HLA-B linked to psoriasis?"], k=5)[0]:
            print(hit.rank, hit.passage.pmid, round(hit.score, 3), hit.passage.text[:80])
    """

    def __init__(self, *, manifest: TextIndexManifest, store: PassageStore, dense: faiss.Index,
                 bm25: Bm25Index | None, embedder: Embedder, settings: Settings, directory: Path) -> None:
        self.manifest = manifest
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.directory = directory
        self.device = "cpu"
        self.verification: ArtefactCheck | None = None  # how load checked the files (kgrag.artefacts)
        self._bm25 = bm25
        self._cpu_dense = dense
        self._gpu_resources: Any = None
        self._dense = self._to_device(dense)
        self._vectors: dict[str, np.ndarray] = {}
        self._starts = np.array([s.first_row for s in manifest.shards], dtype=np.int64)
        dead = store.dead_rows()
        keep = None
        if len(dead):
            keep = np.ones(manifest.rows, dtype=bool)
            keep[dead] = False
        self._live = _Allowed(keep)
        self._filters: dict[tuple[object, ...], _Allowed] = {}

    # --- building and loading -----------------------------------------------------------------
    @classmethod
    def build(cls, passages: Sequence[Passage], settings: Settings, *, embedder: Embedder | None = None,
              index_type: str | None = None, bm25: bool = True, progress: bool = True,
              shard_size: int | None = None) -> "TextIndex":
        """Build the index of ``passages`` (in memory) into ``settings.text_index_dir`` and open it.

        The build streams in shards (:func:`~kgrag.indexes.text_index_build.build_text_index`); a passage
        id given twice keeps the later passage.
        """
        from kgrag.indexes.corpus_stream import passages_stream
        from kgrag.indexes.text_index_build import DEFAULT_SHARD_SIZE, build_text_index

        passages = list(passages)
        if not passages:
            raise TextIndexError("cannot build a text index from an empty corpus")
        embedder = embedder or default_embedder(settings)
        build_text_index(settings, passages_stream(passages), embedder=embedder, index_type=index_type, bm25=bm25,
                         shard_size=shard_size or DEFAULT_SHARD_SIZE, progress=progress)
        return cls.load(settings, embedder=embedder)

    @classmethod
    def load(cls, settings: Settings, *, embedder: Embedder | None = None, directory: Path | None = None,
             corpus: Sequence[Passage] | str | None = None) -> "TextIndex":
        """Open the index in ``directory`` (default ``settings.text_index_dir``).

        Raises :class:`IndexMismatchError` when it was built with another embedding model than
        ``embedder`` (or ``settings.embedding_model``), when its files disagree with its manifest,
        or when ``corpus`` (passages or their checksum) differs from the corpus it was built from;
        :class:`ArtefactError` when a file is missing, truncated or (checksums) damaged.
        """
        directory = Path(directory or settings.text_index_dir)  # type: ignore[arg-type]
        wait_for_swap(directory, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD)
        identity = _identity(directory)
        try:
            return cls._load(settings, directory, embedder=embedder, corpus=corpus)
        except (ArtefactError, IndexMismatchError, TextIndexError):
            if identity is None or _identity(directory) in (None, identity):
                raise
            # a build swapped the index while we read it: read the new one
            wait_for_swap(directory, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD)
            return cls._load(settings, directory, embedder=embedder, corpus=corpus)

    @classmethod
    def _load(cls, settings: Settings, directory: Path, *, embedder: Embedder | None,
              corpus: Sequence[Passage] | str | None) -> "TextIndex":
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.is_file():
            raise TextIndexError(f"no text index at {directory} (no {MANIFEST_FILE}); build it with "
                                 "`kgrag build-text-index` or set KGRAG_TEXT_INDEX_DIR")
        manifest = read_text_index_manifest(directory)
        verification = verify_on_load(directory, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD,
                                      interrupted=leftovers(directory))
        model = embedder.model_name if embedder is not None else None
        check_index_model(settings, directory, model=model, manifest=manifest)
        if embedder is not None and embedder.dimension != manifest.dimension:
            raise IndexMismatchError(f"text index at {directory} has dimension {manifest.dimension}, "
                                     f"the embedder {embedder.model_name!r} gives {embedder.dimension}")
        if corpus is not None:
            expected = corpus if isinstance(corpus, str) else corpus_checksum(corpus)
            if expected != manifest.corpus_checksum:
                count = "" if isinstance(corpus, str) else f" ({len(corpus)} passages now)"
                raise IndexMismatchError(
                    f"the corpus changed since the text index at {directory} was built from "
                    f"{manifest.passage_count} passages (checksum {manifest.corpus_checksum[:12]}, "
                    f"now {expected[:12]}){count}; rebuild it with `kgrag build-text-index`")
        store = PassageStore.open(directory / STORE_FILE, rebuild=TEXT_INDEX_REBUILD)
        rows = store.max_row() + 1
        if rows != manifest.rows:
            raise IndexMismatchError(f"{directory / STORE_FILE} holds {rows} rows, the manifest says {manifest.rows}; "
                                     f"rebuild with `{TEXT_INDEX_REBUILD}`")
        dense = read_faiss(directory / FAISS_FILE, mmap=manifest.index_type != "hnsw")
        if dense.ntotal != manifest.rows or dense.d != manifest.dimension:
            raise IndexMismatchError(f"{directory / FAISS_FILE} holds {dense.ntotal} vectors of dimension {dense.d}, "
                                     f"the manifest says {manifest.rows} of {manifest.dimension}")
        lexical = _read_bm25(directory / BM25_DIR, manifest.bm25_stemmer) if manifest.bm25 else None
        index = cls(manifest=manifest, store=store, dense=dense, bm25=lexical,
                    embedder=embedder or default_embedder(settings), settings=settings, directory=directory)
        index.verification = verification
        return index

    def _to_device(self, index: faiss.Index) -> faiss.Index:
        if self.manifest.index_type == "hnsw" or gpu_count() == 0:
            return index
        self._gpu_resources = faiss.StandardGpuResources()
        self.device = "gpu"
        return faiss.index_cpu_to_gpu(self._gpu_resources, 0, index)

    # --- searching ----------------------------------------------------------------------------
    @property
    def has_bm25(self) -> bool:
        return self._bm25 is not None

    def _allowed(self, text_filter: TextFilter | None) -> _Allowed:
        if text_filter is None or not text_filter.active:
            return self._live
        key = text_filter.key()
        if key not in self._filters:
            if len(self._filters) >= FILTER_CACHE:
                self._filters.pop(next(iter(self._filters)))
            self._filters[key] = _Allowed.rows(self.store.allowed_rows(text_filter), self.manifest.rows)
        return self._filters[key]

    def search(self, queries: Sequence[str], k: int | None = None, *, fusion: SearchMethod | None = None,
               text_filter: TextFilter | None = None) -> list[list[PassageHit]]:
        """The top ``k`` passages for each query, by ``fusion`` (default ``settings.text_fusion``).

        ``rrf`` fuses the top 100 of dense and BM25 by reciprocal rank (1/(60 + rank)); on an index
        built without BM25 it falls back to dense, and the hits say ``retriever="dense"``.
        ``text_filter`` (default: the settings' ``text_year_min``, ``text_year_max``, ``text_mesh``)
        restricts the passages returned.
        """
        queries = _check_queries(queries)
        k = k if k is not None else self.settings.text_top_k
        if k <= 0:
            raise TextIndexError(f"k must be positive, got {k}")
        mode = fusion or self.settings.text_fusion
        if mode not in ("dense", "bm25", "rrf"):
            raise TextIndexError(f"fusion {mode!r}: expected dense, bm25 or rrf")
        if mode == "bm25" and self._bm25 is None:
            raise TextIndexError(f"the text index at {self.directory} was built without BM25; rebuild without --no-bm25")
        if mode == "rrf" and self._bm25 is None:
            mode = "dense"
        if not queries:
            return []
        allowed = self._allowed(text_filter if text_filter is not None else settings_filter(self.settings))
        if allowed.count == 0:
            return [[] for _ in queries]  # nothing passes the filter
        if mode == "dense":
            return self._hits(self._dense_rows(queries, k, allowed), "dense")
        if mode == "bm25":
            return self._hits(self._bm25_rows(queries, k, allowed), "bm25")
        depth = max(k, FUSION_DEPTH)
        fused = [_fuse(d, b, k) for d, b in zip(self._dense_rows(queries, depth, allowed),
                                                self._bm25_rows(queries, depth, allowed))]
        return self._hits(fused, "rrf")

    def search_dense(self, queries: Sequence[str], k: int, *, text_filter: TextFilter | None = None
                     ) -> list[list[PassageHit]]:
        """Dense neighbours: one embedding call and one FAISS call for the whole batch."""
        queries = _check_queries(queries)
        return self._hits(self._dense_rows(queries, k, self._allowed(text_filter)), "dense") if queries else []

    def search_bm25(self, queries: Sequence[str], k: int, *, text_filter: TextFilter | None = None
                    ) -> list[list[PassageHit]]:
        """BM25 hits with a positive score (a query sharing no term with a passage does not retrieve it)."""
        queries = _check_queries(queries)
        if self._bm25 is None:
            raise TextIndexError(f"the text index at {self.directory} was built without BM25")
        return self._hits(self._bm25_rows(queries, k, self._allowed(text_filter)), "bm25") if queries else []

    def _dense_rows(self, queries: Sequence[str], k: int, allowed: _Allowed) -> list[Ranked]:
        vectors = np.ascontiguousarray(self.embedder.encode(list(queries), persist=False), dtype=np.float32)
        available = self._available(allowed)
        depth = min(k, available)
        rerank = self.settings.text_rerank if self.manifest.index_type == "ivfpq" else 0
        candidates = min(max(depth * rerank, depth), available) if rerank else depth
        index = self._dense if allowed.selector is None else self._cpu_dense
        params = search_parameters(self.manifest.index_type, self.manifest.index_params, allowed.selector, candidates,
                                   nprobe=self.settings.text_nprobe)
        scores, labels = faiss_search(index, vectors, candidates, params)
        self._check_dense(labels, scores, allowed, exact=not rerank)
        if rerank:
            return [self._rerank(query, row_labels, depth) for query, row_labels in zip(vectors, labels)]
        return [(row_labels[row_labels >= 0], row_scores[row_labels >= 0]) for row_labels, row_scores in zip(labels, scores)]

    def _available(self, allowed: _Allowed) -> int:
        return self.manifest.rows if allowed.count < 0 else allowed.count

    def _rerank(self, query: np.ndarray, labels: np.ndarray, depth: int) -> Ranked:
        """Exact cosines of the IVF-PQ candidates, from the saved vectors; the best ``depth``."""
        rows = labels[labels >= 0]
        if not len(rows):
            return rows, np.zeros(0, dtype=np.float32)
        exact = self.vectors(rows) @ query
        self._check_cosines(exact, FAISS_FILE)
        order = np.argsort(-exact, kind="stable")[:depth]
        return rows[order], exact[order]

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The saved float32 vectors of ``rows`` (memory-mapped shards; read only what is asked)."""
        shard_of = np.searchsorted(self._starts, rows, side="right") - 1
        out = np.empty((len(rows), self.manifest.dimension), dtype=np.float32)
        for shard in np.unique(shard_of):
            info = self.manifest.shards[int(shard)]
            if info.name not in self._vectors:
                path = self.directory / VECTORS_DIR / f"{info.name}.npy"
                try:
                    self._vectors[info.name] = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as exc:
                    raise ArtefactError(f"{path} is missing or damaged ({exc}); rebuild the text index with "
                                        f"`{TEXT_INDEX_REBUILD}`") from None
            where = shard_of == shard
            out[where] = self._vectors[info.name][rows[where] - info.first_row]
        return out

    def _bm25_rows(self, queries: Sequence[str], k: int, allowed: _Allowed) -> list[Ranked]:
        assert self._bm25 is not None
        docs, scores = self._bm25.search(queries, min(k, self._available(allowed)), allowed=allowed.mask)
        bad = ~np.isfinite(scores)
        if bad.any():
            raise ArtefactError(f"text index bm25 search returned score {float(scores[bad][0])!r}, which is not a finite "
                                f"BM25 score: {self.directory / BM25_DIR} is damaged; rebuild it with "
                                f"`{TEXT_INDEX_REBUILD}`")
        ranked = []
        for row_docs, row_scores in zip(docs, scores):
            keep = (row_scores > 0.0) & allowed.allows(row_docs)
            ranked.append((row_docs[keep], row_scores[keep]))
        return ranked

    def _check_dense(self, labels: np.ndarray, scores: np.ndarray, allowed: _Allowed, *, exact: bool) -> None:
        """Raise :class:`ArtefactError` when a hit cannot come from an intact index (a row beyond the store, or
        one the search excluded; a score that is not a cosine, within 1e-3, or 0.5 for unreranked PQ codes)."""
        found = labels[labels >= 0]
        if len(found) and (found.max() >= self.manifest.rows or not allowed.allows(found).all()):
            raise ArtefactError(f"text index dense search returned a row outside the passages it may return: "
                                f"{self.directory / FAISS_FILE} is damaged; rebuild it with `{TEXT_INDEX_REBUILD}`")
        self._check_cosines(scores[labels >= 0], FAISS_FILE, tolerance=COSINE_TOLERANCE if exact else 0.5)

    def _check_cosines(self, values: np.ndarray, file: str, tolerance: float = COSINE_TOLERANCE) -> None:
        limit = 1.0 + tolerance
        bad = ~np.isfinite(values) | (np.abs(values) > limit)
        if bad.any():
            raise ArtefactError(f"text index dense search returned score {float(values[bad][0])!r}, which is not a "
                                f"cosine (|score| <= {limit:g}): {self.directory / file} is damaged; rebuild it with "
                                f"`{TEXT_INDEX_REBUILD}`")

    def _hits(self, ranked: list[Ranked], retriever: SearchMethod) -> list[list[PassageHit]]:
        """Hits with their passages: one passage-store query for every query's rows."""
        passages = self.store.get(int(r) for rows, _ in ranked for r in rows)
        out = []
        for rows, scores in ranked:
            hits = []
            for rank, (row, score) in enumerate(zip(rows.tolist(), scores.tolist()), start=1):
                passage = passages.get(row)
                if passage is None:
                    raise ArtefactError(f"row {row} is not in {self.directory / STORE_FILE}: the text index is damaged; "
                                        f"rebuild it with `{TEXT_INDEX_REBUILD}`")
                hits.append(PassageHit(passage=passage, score=float(score), rank=rank, retriever=retriever, row=row))
            out.append(hits)
        return out

    def stats(self) -> dict[str, Any]:
        """The manifest plus where the index lives, its size on disk and the search device."""
        data: dict[str, Any] = self.manifest.model_dump(exclude={"shards"})
        data["shard_count"] = len(self.manifest.shards)
        data["directory"] = str(self.directory)
        data["device"] = self.device
        if self.directory.exists():
            data["size_bytes"] = path_bytes(self.directory)
            data["faiss_bytes"] = (self.directory / FAISS_FILE).stat().st_size
        return data


def _fuse(dense: Ranked, lexical: Ranked, k: int) -> Ranked:
    """Reciprocal-rank fusion of two ranked row lists (1/(60 + rank) each), the best ``k``."""
    scores: dict[int, float] = {}
    for rows, _ in (dense, lexical):
        for rank, row in enumerate(rows.tolist(), start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (RRF_K + rank)
    ranked = sorted(scores.items(), key=lambda item: -item[1])[:k]
    return (np.array([r for r, _ in ranked], dtype=np.int64), np.array([s for _, s in ranked], dtype=np.float64))


def _read_bm25(directory: Path, stemmer_name: str | None) -> Bm25Index:
    """:meth:`Bm25Index.load` with a damaged file as :class:`ArtefactError`."""
    try:
        return Bm25Index.load(directory, stemmer_name)
    except BackendUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - bm25s raises whatever numpy/json/scipy raise on a bad file
        raise ArtefactError(f"BM25 index {directory} is damaged or unreadable ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); rebuild the text index with `{TEXT_INDEX_REBUILD}`") from None


def _identity(directory: Path) -> tuple[int, int] | None:
    """(device, inode) of ``directory``: a swap by a build changes it; None when it is not there."""
    try:
        stat = directory.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _check_queries(queries: Sequence[str]) -> list[str]:
    if isinstance(queries, str):
        raise TextIndexError("search takes a list of queries; wrap one query as [query]")
    checked = list(queries)
    for i, query in enumerate(checked):
        if not isinstance(query, str) or not query.strip():
            raise TextIndexError(f"query {i} is empty or not text: {query!r}")
    return checked


def check_index_model(settings: Settings, directory: Path | None = None, *, model: str | None = None,
                      manifest: TextIndexManifest | None = None) -> TextIndexManifest | None:
    """The one check that the text index was built with the embedding model in use.

    ``model`` is the embedder's identity (default: the one ``settings`` choose, so ``kgrag ask`` can
    check before any model loads). Returns the index's manifest; None when there is no readable index
    (``TextIndex.load`` names that problem). Raises :class:`IndexMismatchError` naming both models and
    the settings that select the index's model.
    """
    directory = Path(directory or settings.text_index_dir)  # type: ignore[arg-type]
    if manifest is None:
        try:
            manifest = read_text_index_manifest(directory)
        except TextIndexError:
            return None
    in_use = model or settings_identity(settings)
    if manifest.embedding_model == in_use:
        return manifest
    chosen = "" if model else (f" (KGRAG_EMBEDDING_MODEL={settings.embedding_model!r}, KGRAG_EMBEDDING_BACKEND="
                               f"{settings.embedding_backend}, KGRAG_EMBEDDING_PRECISION={settings.embedding_precision})")
    raise IndexMismatchError(
        f"text index at {directory} was built with embedding model {manifest.embedding_model!r}, but {in_use!r} is "
        f"in use{chosen}: its vectors are not comparable. Rebuild it (`{TEXT_INDEX_REBUILD}`) or set "
        f"{settings_for_identity(manifest.embedding_model)}")
