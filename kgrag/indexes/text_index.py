"""The text index: FAISS over passage embeddings, optional BM25 beside it, fused by reciprocal rank.

An index lives in ``settings.text_index_dir``::

    manifest.json     embedding model, dimension, passage count, corpus checksum, index type, build time
    faiss.index       the dense index (inner product over unit vectors = cosine)
    passages.jsonl    the passages, row i = FAISS id i
    bm25/             the bm25s index (when built with BM25)
    artefacts.json    every file's size and block checksums (:mod:`kgrag.artefacts`), written last

The FAISS type follows the corpus size (``settings.text_index_type="auto"``): exact ``flat`` up to
100k passages, ``hnsw`` up to 5M, ``ivfpq`` beyond; any of them can be forced. With faiss-gpu and a
CUDA device, flat and IVF-PQ indexes are searched on the GPU. Loading checks the manifest against
the embedder in use and, when given, the corpus: a mismatch is an :class:`IndexMismatchError`,
never silently wrong neighbours. It also verifies the files against ``artefacts.json`` (sizes
always, checksums when the index is at most 128 MiB or a killed build left its staging folder
beside it), and search checks that dense scores are cosines (finite, within [-1, 1]) and BM25
scores finite: a damaged file is an :class:`~kgrag.errors.ArtefactError` naming it and
``kgrag build-text-index``, never evidence.

A build publishes the way every builder does (:func:`kgrag.artefacts.staged_artefact`): one
at a time (a build lock), into a staging folder beside the index, swapped in with two renames (old
index aside, new one in place). A reader that arrives between them waits for the second; after a
build killed between them, the next reader or build puts the previous index back; every successful
build deletes what interrupted builds left. A reader whose index was swapped while it loaded starts
again on the new one. A full disk or a read-only home is a :class:`~kgrag.errors.CannotWriteError`.

Example::

    from kgrag.indexes.corpus import load_corpus
    from kgrag.indexes.text_index import TextIndex
    index = TextIndex.build(load_corpus(settings).passages, settings)   # or TextIndex.load(settings)
    hits = index.search(["Does metformin reduce cancer risk?"], k=10)    # one list of PassageHit per query
    hits[0][0].passage.pmid, hits[0][0].score
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from pydantic import BaseModel, Field
from tqdm import tqdm

from kgrag.artefacts import (
    TEXT_INDEX_KIND,
    TEXT_INDEX_REBUILD,
    ArtefactCheck,
    leftovers,
    staged_artefact,
    verify_on_load,
    wait_for_swap,
    write_manifest,
)
from kgrag.indexes.corpus import Passage, corpus_checksum, read_jsonl, write_jsonl
from kgrag.encoders.embeddings import Embedder, SentenceTransformerEmbedder, embedder_from_settings, settings_for_identity, \
    settings_identity
from kgrag.errors import ArtefactError, BackendUnavailableError, IndexMismatchError, KgragError
from kgrag.settings import Settings
from kgrag.types import Evidence

IndexType = Literal["flat", "hnsw", "ivfpq"]
SearchMethod = Literal["dense", "bm25", "rrf"]  # how a hit was found (also settings.text_fusion)

MANIFEST_FILE = "manifest.json"
FAISS_FILE = "faiss.index"
PASSAGES_FILE = "passages.jsonl"
BM25_DIR = "bm25"
FORMAT_VERSION = 1
FLAT_MAX = 100_000
HNSW_MAX = 5_000_000
RRF_K = 60
FUSION_DEPTH = 100  # candidates taken from each retriever before reciprocal-rank fusion
SMALL_BATCH = 20  # FAISS's own BLAS threshold: below it, one thread per search call
COSINE_TOLERANCE = {"flat": 1e-3, "hnsw": 1e-3, "ivfpq": 0.5}  # PQ codes approximate the vectors


class TextIndexError(KgragError):
    """The text index is missing, unreadable, or cannot answer the request."""


class TextIndexManifest(BaseModel):
    """What an index was built from; checked on every load."""

    format_version: int = FORMAT_VERSION
    embedding_model: str
    dimension: int
    passage_count: int
    corpus_checksum: str
    index_type: IndexType
    index_params: dict[str, int] = Field(default_factory=dict)
    bm25: bool = False
    bm25_stemmer: str | None = None
    build_seconds: float
    built_at: str


class PassageHit(BaseModel):
    """One retrieved passage: ``rank`` counts from 1; ``score`` is cosine (dense), BM25, or RRF."""

    passage: Passage
    score: float
    rank: int
    retriever: SearchMethod

    def to_evidence(self) -> Evidence:
        """The hit as pipeline Evidence (kind "text"), its PMID as provenance ("PMID:<id>").

        ``score`` is the retrieval score (cosine for dense; pruning re-scores against the question).
        """
        passage = self.passage
        return Evidence(kind="text", text=passage.text, score=self.score, id=passage.id,
                        sources=[f"PMID:{passage.pmid}"] if passage.pmid else [passage.source],
                        properties={"retriever": self.retriever, "rank": self.rank, "pmid": passage.pmid,
                                    "title": passage.title, "corpus": passage.source})


def default_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """The settings' embedding model and backend, with its vector cache under ``<home>/embeddings``."""
    return embedder_from_settings(settings)


def choose_index_type(passage_count: int, requested: str = "auto") -> IndexType:
    """``requested`` unless it is ``auto``; then flat, hnsw or ivfpq by corpus size."""
    if requested in ("flat", "hnsw", "ivfpq"):
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise TextIndexError(f"index type {requested!r}: expected auto, flat, hnsw or ivfpq")
    if passage_count <= FLAT_MAX:
        return "flat"
    return "hnsw" if passage_count <= HNSW_MAX else "ivfpq"


def make_faiss_index(vectors: np.ndarray, index_type: IndexType, *, progress: bool = False,
                     batch_size: int = 8192) -> tuple[faiss.Index, dict[str, int]]:
    """A CPU FAISS index over unit ``vectors`` (inner product), trained if needed, filled in batches."""
    count, dim = vectors.shape
    params: dict[str, int] = {}
    if index_type == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        params = {"M": 32, "efConstruction": 80, "efSearch": 128}
        index = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
        index.hnsw.efSearch = params["efSearch"]
    elif index_type == "ivfpq":
        if count < 16 * 39:
            raise TextIndexError(f"ivfpq needs at least {16 * 39} passages to train, got {count}; use flat")
        nbits = 8 if count >= 256 * 39 else 6 if count >= 64 * 39 else 4
        nlist = max(1, min(int(4 * math.sqrt(count)), count // 39))
        m = next(m for m in (dim // 8, dim // 4, dim // 2, dim) if m and dim % m == 0)
        params = {"nlist": nlist, "m": m, "nbits": nbits, "nprobe": min(nlist, 16)}
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
        sample = vectors if count <= 200_000 else vectors[np.random.default_rng(0).choice(count, 200_000, replace=False)]
        index.train(np.ascontiguousarray(sample))
        index.nprobe = params["nprobe"]
    else:  # pragma: no cover - guarded by choose_index_type
        raise TextIndexError(f"unknown index type {index_type!r}")
    with tqdm(total=count, desc=f"indexing ({index_type})", unit="passage", disable=not progress) as bar:
        for start in range(0, count, batch_size):
            chunk = np.ascontiguousarray(vectors[start:start + batch_size])
            index.add(chunk)
            bar.update(len(chunk))
    return index, params


def faiss_search(index: faiss.Index, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One FAISS search call; batches under 20 queries run on one OpenMP thread.

    FAISS parallelises small batches poorly: on a 2-core machine shared with other processes a
    single flat query took 32 ms p50 on 2 threads and 1.5 ms on 1 (bench/text_index.py).
    """
    if len(vectors) >= SMALL_BATCH or not hasattr(faiss, "omp_get_max_threads"):
        return index.search(vectors, k)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(vectors, k)
    finally:
        faiss.omp_set_num_threads(threads)


def _gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _stemmer() -> tuple[Any, str | None]:
    try:
        import Stemmer  # PyStemmer
    except ImportError:
        return None, None
    return Stemmer.Stemmer("english"), "pystemmer-english"


class Bm25Index:
    """bm25s over passage texts; English stop words, PyStemmer stemming when installed.

    Example::

        bm25, stemmer = Bm25Index.build(["Metformin lowers glucose.", "HLA-B and psoriasis."])
        docs, scores = bm25.search(["psoriasis genes"], k=1)   # row indices and BM25 scores per query
    """

    def __init__(self, retriever: Any, stemmer: Any) -> None:
        self.retriever = retriever
        self.stemmer = stemmer

    @classmethod
    def build(cls, texts: Sequence[str]) -> tuple["Bm25Index", str | None]:
        import bm25s

        stemmer, name = _stemmer()
        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(retriever, stemmer), name

    @classmethod
    def load(cls, directory: Path, stemmer_name: str | None) -> "Bm25Index":
        import bm25s

        stemmer, name = _stemmer() if stemmer_name else (None, None)
        if stemmer_name and name != stemmer_name:
            raise BackendUnavailableError(f"BM25 index at {directory} was built with {stemmer_name}, which is "
                                          "not installed (pip install PyStemmer)")
        return cls(bm25s.BM25.load(str(directory), show_progress=False), stemmer)

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        import bm25s

        tokens = bm25s.tokenize(list(queries), stopwords="en", stemmer=self.stemmer, return_ids=False,
                                show_progress=False)
        docs, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
        return np.asarray(docs), np.asarray(scores)


class TextIndex:
    """A passage index: dense FAISS search, optional BM25, reciprocal-rank fusion.

    Build once (``TextIndex.build``) and load after (``TextIndex.load``); both take an existing
    ``embedder`` so the pipeline shares one model. ``search`` takes a batch of queries and makes one
    embedding call and one FAISS call for all of them.

    Example::

        index = TextIndex.load(settings, embedder=pipeline_embedder)
        for hit in index.search(["Is HLA-B linked to psoriasis?"], k=5)[0]:
            print(hit.rank, hit.passage.pmid, round(hit.score, 3), hit.passage.text[:80])
    """

    def __init__(self, *, manifest: TextIndexManifest, passages: list[Passage], dense: faiss.Index,
                 bm25: Bm25Index | None, embedder: Embedder, settings: Settings,
                 directory: Path | None = None) -> None:
        self.manifest = manifest
        self.passages = passages
        self.embedder = embedder
        self.settings = settings
        self.directory = directory
        self.device = "cpu"
        self.verification: ArtefactCheck | None = None  # how load checked the files (kgrag.artefacts)
        self._gpu_resources: Any = None
        self._bm25 = bm25
        self._dense = self._to_device(dense)

    # --- building and loading -----------------------------------------------------------------
    @classmethod
    def build(cls, passages: Sequence[Passage], settings: Settings, *, embedder: Embedder | None = None,
              index_type: str | None = None, bm25: bool = True, progress: bool = True,
              batch_size: int = 2048, save: bool = True) -> "TextIndex":
        """Embed ``passages`` in batches (cached), build FAISS (and BM25), save to ``settings.text_index_dir``."""
        passages = list(passages)
        if not passages:
            raise TextIndexError("cannot build a text index from an empty corpus")
        ids = [p.id for p in passages]
        if len(set(ids)) != len(ids):
            raise TextIndexError("passage ids must be unique (run the corpus through corpus.deduplicate)")
        started = time.perf_counter()
        embedder = embedder or default_embedder(settings)
        vectors = np.zeros((len(passages), embedder.dimension), dtype=np.float32)
        with tqdm(total=len(passages), desc="embedding passages", unit="passage", disable=not progress) as bar:
            for start in range(0, len(passages), batch_size):
                chunk = passages[start:start + batch_size]
                vectors[start:start + len(chunk)] = embedder.encode([p.text for p in chunk])
                bar.update(len(chunk))
        kind = choose_index_type(len(passages), index_type or settings.text_index_type)
        dense, params = make_faiss_index(vectors, kind, progress=progress)
        lexical, stemmer = Bm25Index.build([p.text for p in passages]) if bm25 else (None, None)
        manifest = TextIndexManifest(
            embedding_model=embedder.model_name, dimension=embedder.dimension, passage_count=len(passages),
            corpus_checksum=corpus_checksum(passages), index_type=kind, index_params=params, bm25=bm25,
            bm25_stemmer=stemmer, build_seconds=round(time.perf_counter() - started, 3),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        index = cls(manifest=manifest, passages=passages, dense=dense, bm25=lexical, embedder=embedder,
                    settings=settings)
        if save:
            index.save(settings.text_index_dir)
        return index

    def save(self, directory: Path | None) -> Path:
        """Write the index to ``directory`` atomically (a complete new folder replaces the old one)."""
        if directory is None:
            raise TextIndexError("no directory to save the text index to (set KGRAG_TEXT_INDEX_DIR)")
        directory = Path(directory)
        with staged_artefact(directory, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD) as staging:
            dense = faiss.index_gpu_to_cpu(self._dense) if self.device == "gpu" else self._dense
            _write_faiss(dense, staging / FAISS_FILE)
            write_jsonl(self.passages, staging / PASSAGES_FILE)
            if self._bm25 is not None:
                self._bm25.save(staging / BM25_DIR)
            (staging / MANIFEST_FILE).write_text(self.manifest.model_dump_json(indent=2))
            write_manifest(staging, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD)
        self.directory = directory
        return directory

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
        verification = verify_on_load(directory, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD,
                                      interrupted=leftovers(directory))
        manifest = read_text_index_manifest(directory)
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
        loaded = read_jsonl(directory / PASSAGES_FILE)
        if loaded.malformed:
            raise TextIndexError(f"text index at {directory} is damaged: {loaded.malformed[0]}")
        if corpus_checksum(loaded.passages) != manifest.corpus_checksum:
            raise IndexMismatchError(f"{directory / PASSAGES_FILE} does not match the manifest's corpus checksum "
                                     "(edited after the build?); rebuild with `kgrag build-text-index`")
        dense = _read_faiss(directory / FAISS_FILE)
        if dense.ntotal != manifest.passage_count or dense.d != manifest.dimension:
            raise IndexMismatchError(f"{directory / FAISS_FILE} holds {dense.ntotal} vectors of dimension {dense.d}, "
                                     f"the manifest says {manifest.passage_count} of {manifest.dimension}")
        _apply_search_params(dense, manifest)
        lexical = _read_bm25(directory / BM25_DIR, manifest.bm25_stemmer) if manifest.bm25 else None
        index = cls(manifest=manifest, passages=loaded.passages, dense=dense, bm25=lexical,
                    embedder=embedder or default_embedder(settings), settings=settings, directory=directory)
        index.verification = verification
        return index

    def _to_device(self, index: faiss.Index) -> faiss.Index:
        if self.manifest.index_type == "hnsw" or not _gpu_available():
            return index
        self._gpu_resources = faiss.StandardGpuResources()
        self.device = "gpu"
        return faiss.index_cpu_to_gpu(self._gpu_resources, 0, index)

    # --- searching ----------------------------------------------------------------------------
    @property
    def has_bm25(self) -> bool:
        return self._bm25 is not None

    def search(self, queries: Sequence[str], k: int | None = None, *,
               fusion: SearchMethod | None = None) -> list[list[PassageHit]]:
        """The top ``k`` passages for each query, by ``fusion`` (default ``settings.text_fusion``).

        ``rrf`` fuses the top 100 of dense and BM25 by reciprocal rank (1/(60 + rank)); on an index
        built without BM25 it falls back to dense, and the hits say ``retriever="dense"``.
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
        if mode == "dense":
            return self.search_dense(queries, k)
        if mode == "bm25":
            return self.search_bm25(queries, k)
        depth = max(k, FUSION_DEPTH)
        return [self._fuse(d, b, k) for d, b in zip(self.search_dense(queries, depth), self.search_bm25(queries, depth))]

    def search_dense(self, queries: Sequence[str], k: int) -> list[list[PassageHit]]:
        """Dense neighbours: one embedding call and one FAISS call for the whole batch."""
        queries = _check_queries(queries)
        if not queries:
            return []
        vectors = np.ascontiguousarray(self.embedder.encode(list(queries), persist=False), dtype=np.float32)
        depth = min(k, len(self.passages))
        if self.manifest.index_type == "hnsw":
            self._dense.hnsw.efSearch = max(self.manifest.index_params.get("efSearch", 128), depth)
        scores, labels = faiss_search(self._dense, vectors, depth)
        return [self._hits(row_labels, row_scores, "dense") for row_labels, row_scores in zip(labels, scores)]

    def search_bm25(self, queries: Sequence[str], k: int) -> list[list[PassageHit]]:
        """BM25 hits with a positive score (a query sharing no term with a passage does not retrieve it)."""
        queries = _check_queries(queries)
        if self._bm25 is None:
            raise TextIndexError(f"the text index at {self.directory} was built without BM25")
        if not queries:
            return []
        docs, scores = self._bm25.search(queries, min(k, len(self.passages)))
        return [self._hits(row_docs, row_scores, "bm25") for row_docs, row_scores in zip(docs, scores)]

    def _hits(self, labels: np.ndarray, scores: np.ndarray, retriever: SearchMethod) -> list[PassageHit]:
        self._check_scores(labels, scores, retriever)
        hits: list[PassageHit] = []
        for label, score in zip(labels.tolist(), scores.tolist()):
            if label < 0 or (retriever == "bm25" and score <= 0.0):
                continue
            hits.append(PassageHit(passage=self.passages[label], score=float(score), rank=len(hits) + 1,
                                   retriever=retriever))
        return hits

    def _check_scores(self, labels: np.ndarray, scores: np.ndarray, retriever: SearchMethod) -> None:
        """Raise :class:`ArtefactError` when a hit cannot come from an intact index.

        Dense scores are inner products of unit vectors, so cosines: finite and within
        1 + tolerance of zero (1e-3; 0.5 for IVF-PQ, whose codes approximate the vectors). BM25
        scores are not bounded; they must be finite. Labels must be rows of passages.jsonl.
        """
        found = labels >= 0
        bad_label = found & (labels >= len(self.passages))
        values = scores[found]
        if retriever == "dense":
            limit = 1.0 + COSINE_TOLERANCE[self.manifest.index_type]
            bad = ~np.isfinite(values) | (np.abs(values) > limit)
            what, file = f"a cosine (|score| <= {limit:g})", FAISS_FILE
        else:
            bad = ~np.isfinite(values)
            what, file = "a finite BM25 score", BM25_DIR
        if bad.any() or bad_label.any():
            problem = (f"score {float(values[bad][0])!r}, which is not {what}" if bad.any()
                       else f"row {int(labels[bad_label][0])} of {len(self.passages)} passages")
            where = self.directory / file if self.directory is not None else f"the in-memory {file}"
            raise ArtefactError(f"text index {retriever} search returned {problem}: {where} is damaged; "
                                f"rebuild it with `{TEXT_INDEX_REBUILD}`")

    @staticmethod
    def _fuse(dense: list[PassageHit], lexical: list[PassageHit], k: int) -> list[PassageHit]:
        scores: dict[str, float] = {}
        passages: dict[str, Passage] = {}
        for hits in (dense, lexical):
            for hit in hits:
                scores[hit.passage.id] = scores.get(hit.passage.id, 0.0) + 1.0 / (RRF_K + hit.rank)
                passages[hit.passage.id] = hit.passage
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:k]
        return [PassageHit(passage=passages[pid], score=score, rank=rank, retriever="rrf")
                for rank, (pid, score) in enumerate(ranked, start=1)]

    def stats(self) -> dict[str, Any]:
        """The manifest plus where the index lives, its size on disk and the search device."""
        data: dict[str, Any] = self.manifest.model_dump()
        data["directory"] = str(self.directory) if self.directory else None
        data["device"] = self.device
        if self.directory is not None and self.directory.exists():
            data["size_bytes"] = _dir_size(self.directory)
            data["faiss_bytes"] = (self.directory / FAISS_FILE).stat().st_size
        return data


def _apply_search_params(index: faiss.Index, manifest: TextIndexManifest) -> None:
    if manifest.index_type == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = manifest.index_params.get("efSearch", 128)
    elif manifest.index_type == "ivfpq":
        faiss.extract_index_ivf(index).nprobe = manifest.index_params.get("nprobe", 16)


def _identity(directory: Path) -> tuple[int, int] | None:
    """(device, inode) of ``directory``: a swap by a build changes it; None when it is not there."""
    try:
        stat = directory.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _write_faiss(index: faiss.Index, path: Path) -> None:
    """``faiss.write_index`` through a Python file, so a full disk raises ``OSError`` (faiss's own writer only
    prints a failed close to stderr: a small index on a full disk was written short without an error)."""
    with path.open("wb") as handle:
        writer = faiss.PyCallbackIOWriter(handle.write)
        faiss.write_index(index, writer)
        del writer
        handle.flush()
        os.fsync(handle.fileno())


def _read_faiss(path: Path) -> faiss.Index:
    """``faiss.read_index`` with its failures (truncated or garbled file) as :class:`ArtefactError`."""
    try:
        return faiss.read_index(str(path))
    except (RuntimeError, MemoryError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtefactError(f"{path} is damaged or unreadable ({first[:200]}); rebuild the text index "
                            f"with `{TEXT_INDEX_REBUILD}`") from None


def _read_bm25(directory: Path, stemmer_name: str | None) -> Bm25Index:
    """:meth:`Bm25Index.load` with a damaged file as :class:`ArtefactError`."""
    try:
        return Bm25Index.load(directory, stemmer_name)
    except BackendUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - bm25s raises whatever numpy/json/scipy raise on a bad file
        raise ArtefactError(f"BM25 index {directory} is damaged or unreadable ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); rebuild the text index with `{TEXT_INDEX_REBUILD}`") from None


def _check_queries(queries: Sequence[str]) -> list[str]:
    if isinstance(queries, str):
        raise TextIndexError("search takes a list of queries; wrap one query as [query]")
    checked = list(queries)
    for i, query in enumerate(checked):
        if not isinstance(query, str) or not query.strip():
            raise TextIndexError(f"query {i} is empty or not text: {query!r}")
    return checked


def read_text_index_manifest(directory: Path) -> TextIndexManifest:
    """The ``manifest.json`` of the text index in ``directory``; :class:`TextIndexError` when it is missing or unreadable."""
    path = Path(directory) / MANIFEST_FILE
    try:
        return TextIndexManifest.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise TextIndexError(f"no text index at {directory} (no {MANIFEST_FILE}); build it with "
                             f"`{TEXT_INDEX_REBUILD}` or set KGRAG_TEXT_INDEX_DIR") from None
    except (OSError, ValueError) as exc:
        raise TextIndexError(f"{path}: unreadable manifest ({str(exc)[:200]}); rebuild it with "
                             f"`{TEXT_INDEX_REBUILD}`") from None


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
