"""Building the text index: streamed in shards, resumable after a kill, bounded memory, swapped in whole.

:func:`build_text_index` reads a :class:`~kgrag.indexes.corpus_stream.CorpusStream` one item at a
time and works in ``.<name>.building`` beside the index, under the build lock:

1. every ``shard_size`` passages it embeds the shard (one embedding call), saves the vectors
   (``vectors/shard-NNNNN.npy``, float32) and the shard's BM25 term counts (``terms/``), then commits
   the shard's passages, MeSH terms and removals to the passage store (one SQLite transaction, the
   commit point). A killed build run again over the same inputs finds its committed shards, skips
   the items they hold (read again, not embedded) and goes on from the next one;
2. then it marks the rows that later rows or removals replace (updates, deletions), builds the
   dense index from the saved vectors (flat, or IVF-PQ trained on a sample and filled shard by
   shard, or HNSW; ``auto`` picks by live passages), assembles BM25 from the saved counts
   (:mod:`kgrag.indexes.bm25_index`), writes the manifest and ``artefacts.json``, loads the result
   as a reader would, and publishes it (:mod:`kgrag.artefacts`: two renames, leftovers swept).

``add=True`` builds on the live index without embedding its passages again: its passage store is
copied, its vector and term shards hard-linked, the new shards appended; an IVF-PQ or HNSW index
takes the new vectors as they are (the IVF-PQ quantiser is not retrained), a flat one is rebuilt
from the saved vectors. Memory holds one shard, the training sample and the index itself.

Example::

    from kgrag.indexes.corpus_stream import corpus_stream
    report = build_text_index(settings, corpus_stream(settings, "pubmed/"), shard_size=10_000)
    report.live, report.resumed_shards, report.problems[:3]
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from kgrag.artefacts import (
    CANNOT_WRITE_ERRNOS,
    TEXT_INDEX_KIND,
    TEXT_INDEX_REBUILD,
    build_lock,
    cannot_write,
    path_bytes,
    publish,
    recover,
    verify,
    write_atomically,
    write_manifest,
)
from kgrag.encoders.embeddings import Embedder, embedder_from_settings
from kgrag.indexes import bm25_index
from kgrag.indexes.corpus import Passage
from kgrag.indexes.corpus_stream import CorpusStream, Removal
from kgrag.indexes.dense import (
    choose_index_type,
    cluster_on_gpus,
    fill_index,
    new_index,
    read_faiss,
    train_sample,
    write_faiss,
)
from kgrag.indexes.passage_store import STORE_FILE, PassageStore
from kgrag.indexes.text_index_files import (
    BM25_DIR,
    FAISS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    TERMS_DIR,
    VECTORS_DIR,
    ShardInfo,
    TextIndexError,
    TextIndexManifest,
    read_text_index_manifest,
    shard_name,
)
from kgrag.settings import Settings

BUILD_FILE = "build.json"
DEFAULT_SHARD_SIZE = 10_000
CACHE_MAX_ROWS = 100_000  # up to this many rows the embedder's cache keeps the vectors (the answer path reuses them)


class BuildIdentity(BaseModel):
    """What a resumed build must share with the interrupted one."""

    format_version: int = FORMAT_VERSION
    embedding_model: str
    dimension: int
    corpus: str
    shard_size: int
    bm25: bool
    bm25_stemmer: str | None
    base_build: str | None = None


class TextIndexBuildReport(BaseModel):
    """What a build did."""

    directory: str
    index_type: str
    rows: int = Field(description="Rows in the passage store (live and replaced)")
    live: int = Field(description="Passages search can return")
    added: int = Field(description="Passages this build read")
    removals: int = Field(description="Deletions this build read")
    replaced: int = Field(description="Rows this build marked dead (updated or deleted passages)")
    shards: int
    resumed_shards: int = Field(description="Shards found committed by an interrupted build")
    embedded: int = Field(description="Passages this run sent to the embedder (the rest: resumed shards)")
    encoded_by_model: int | None = Field(default=None, description="Of those, how many the model encoded (the others "
                                         "were in the embedder's cache); None when the embedder does not say")
    problems: list[str] = Field(default_factory=list)
    duplicates: int = 0
    bm25: dict[str, int] = Field(default_factory=dict)
    size_bytes: int
    seconds: float


def build_folder(target: Path) -> Path:
    """Where a build of the index at ``target`` works (and an interrupted one left what it committed)."""
    target = Path(target)
    return target.parent / f".{target.name}.building"


def _link_tree(source: Path, destination: Path) -> None:
    """Hard-link every file of ``source`` into ``destination`` (copy where links are not possible)."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            try:
                os.link(path, destination / path.name)
            except OSError:
                shutil.copy2(path, destination / path.name)


def _start(work: Path, identity: BuildIdentity, base: Path | None) -> None:
    """Resume the build in ``work`` when it is the same build; else clear it and lay out the base index."""
    build_file = work / BUILD_FILE
    if build_file.is_file():
        try:
            previous = BuildIdentity.model_validate_json(build_file.read_text())
        except ValueError:
            previous = None
        if previous == identity and (work / STORE_FILE).is_file():
            return
        print(f"note: {work} holds an interrupted build of other inputs or settings; starting over", file=sys.stderr)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / VECTORS_DIR).mkdir()
    (work / TERMS_DIR).mkdir()
    if base is not None:
        shutil.copyfile(base / STORE_FILE, work / STORE_FILE)
        _link_tree(base / VECTORS_DIR, work / VECTORS_DIR)
        if (base / TERMS_DIR).is_dir():
            _link_tree(base / TERMS_DIR, work / TERMS_DIR)
    build_file.write_text(identity.model_dump_json(indent=1))


def _drop_uncommitted(work: Path, committed: int) -> None:
    """Vector and term files of shards whose commit never happened (a kill between the two)."""
    for folder in (work / VECTORS_DIR, work / TERMS_DIR):
        for path in folder.iterdir():
            name = path.name.lstrip(".")
            if name.startswith("shard-") and int(name[6:11]) >= committed:
                path.unlink()


def build_text_index(settings: Settings, stream: CorpusStream, *, embedder: Embedder | None = None,
                     index_type: str | None = None, bm25: bool = True, shard_size: int = DEFAULT_SHARD_SIZE,
                     add: bool = False, retrain: bool = False, progress: bool = True,
                     stop_after_shards: int | None = None) -> TextIndexBuildReport:
    """Build (or with ``add=True`` extend) the text index from ``stream``; see the module docstring.

    ``retrain`` (with ``add``) builds the dense index anew from every saved vector instead of adding to
    the trained one: ``kgrag build-text-index --reindex`` is an add of nothing with ``retrain``.

    ``stop_after_shards`` raises :class:`KeyboardInterrupt` after committing that many new shards
    (tests use it to interrupt a build). A full disk or a read-only home is a
    :class:`~kgrag.errors.CannotWriteError`: the live index is unchanged, the committed shards are kept
    and the same command resumes once there is room.
    """
    try:
        return _build(settings, stream, embedder=embedder, index_type=index_type, bm25=bm25, shard_size=shard_size,
                      add=add, retrain=retrain, progress=progress, stop_after_shards=stop_after_shards)
    except OSError as exc:
        if exc.errno not in CANNOT_WRITE_ERRNOS:
            raise
        error = cannot_write(exc, Path(settings.text_index_dir), TEXT_INDEX_KIND, TEXT_INDEX_REBUILD,
                             build_folder(settings.text_index_dir))
        raise type(error)(f"{error}; the shards committed so far in {build_folder(settings.text_index_dir)} are "
                          "kept: the same command resumes from them") from None


def _build(settings: Settings, stream: CorpusStream, *, embedder: Embedder | None, index_type: str | None, bm25: bool,
           shard_size: int, add: bool, retrain: bool, progress: bool,
           stop_after_shards: int | None) -> TextIndexBuildReport:
    from tqdm import tqdm

    if shard_size <= 0:
        raise TextIndexError(f"shard size must be positive, got {shard_size}")
    started = time.perf_counter()
    target = Path(settings.text_index_dir)
    work = build_folder(target)
    embedder = embedder or embedder_from_settings(settings)
    stem, stem_name = bm25_index.stemmer() if bm25 else (None, None)
    with build_lock(target, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD):
        recover(target, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD)
        base_manifest = _base_manifest(target, embedder, bm25) if add else None
        identity = BuildIdentity(embedding_model=embedder.model_name, dimension=embedder.dimension,
                                 corpus=stream.fingerprint, shard_size=shard_size, bm25=bm25, bm25_stemmer=stem_name,
                                 base_build=base_manifest.build_id if base_manifest else None)
        _start(work, identity, target if base_manifest else None)
        store = PassageStore.create(work / STORE_FILE)
        base_shards = len(base_manifest.shards) if base_manifest else 0
        base_rows = base_manifest.rows if base_manifest else 0
        committed = store.committed_shards()
        mine = [c for c in committed if c[0] >= base_shards]
        _drop_uncommitted(work, len(committed))
        next_shard = len(committed)
        next_row = committed[-1][1] + committed[-1][2] if committed else 0
        items_done = mine[-1][3] if mine else 0
        counts = {"added": 0, "removals": 0, "embedded": 0, "new_shards": 0}
        encoded_before = getattr(embedder, "encoded_count", None)
        passages: list[Passage] = []
        removals: list[tuple[str, int]] = []
        item_index = 0

        def flush() -> None:
            nonlocal next_shard, next_row, passages, removals
            name = shard_name(next_shard)
            texts = [p.text for p in passages]
            if next_row + len(passages) <= CACHE_MAX_ROWS:
                vectors = embedder.encode(texts)  # small corpora: kept in the embedder's cache for the answer path
            else:
                vectors = embedder.encode_once(texts)
            shard_vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(passages), embedder.dimension)
            write_atomically(work / VECTORS_DIR / f"{name}.npy", lambda handle: np.save(handle, shard_vectors))
            if bm25:
                bm25_index.save_counts(bm25_index.count_terms(texts, stem) if texts else _empty_counts(),
                                       work / TERMS_DIR / name)
            store.add_shard(next_shard, first_row=next_row, passages=passages, removals=removals, items_end=item_index)
            counts["embedded"] += len(passages)
            counts["new_shards"] += 1
            next_shard += 1
            next_row += len(passages)
            passages, removals = [], []
            if stop_after_shards is not None and counts["new_shards"] >= stop_after_shards:
                raise KeyboardInterrupt(f"stopped after {counts['new_shards']} shard(s) (test)")

        items: Iterator[Passage | Removal] = stream.items()
        try:
            with tqdm(desc="text index: passages", unit="passage", disable=not progress, file=sys.stderr) as bar:
                for item in items:
                    item_index += 1
                    if item_index <= items_done:
                        continue  # in a committed shard of the interrupted build
                    if isinstance(item, Removal):
                        removals.append((item.id, next_row + len(passages)))
                        counts["removals"] += 1
                        continue
                    passages.append(item)
                    counts["added"] += 1
                    bar.update(1)
                    if len(passages) >= shard_size:
                        flush()
                if passages or removals:
                    flush()
        except BaseException:
            store.close()  # what is committed stays; the next build resumes from it
            raise
        replaced = store.apply_removals(first_row=base_rows)
        shards = [ShardInfo(name=shard_name(s), first_row=first, rows=rows, checksum=checksum)
                  for s, first, rows, _, checksum in store.committed_shards()]
        rows, live = store.counts()
        if live == 0 or not shards:
            store.close()
            raise TextIndexError(f"{stream.description}: no passage to index ({len(stream.problems)} problems"
                                 f"{'; first: ' + stream.problems[0] if stream.problems else ''})")
        live_mask = np.ones(rows, dtype=bool)
        live_mask[store.dead_rows()] = False
        checksum = store.corpus_checksum()
        store.finish()
        out = work / "out"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir()
        kind = choose_index_type(live, index_type or settings.text_index_type)
        params = _dense(work, out, shards, kind, embedder.dimension, None if retrain else base_manifest, target,
                        progress=progress)
        bm25_sizes = bm25_index.assemble([work / TERMS_DIR / s.name for s in shards], live_mask, out / BM25_DIR) \
            if bm25 else {}
        os.replace(work / STORE_FILE, out / STORE_FILE)
        os.replace(work / VECTORS_DIR, out / VECTORS_DIR)
        if bm25:
            os.replace(work / TERMS_DIR, out / TERMS_DIR)
        manifest = TextIndexManifest(
            embedding_model=embedder.model_name, dimension=embedder.dimension, passage_count=live, rows=rows,
            corpus_checksum=checksum, index_type=kind, index_params=params, bm25=bm25, bm25_stemmer=stem_name,
            shards=shards, build_id=uuid.uuid4().hex, sources=[*(base_manifest.sources if base_manifest else []),
                                                                stream.description],
            build_seconds=round(time.perf_counter() - started, 3),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        (out / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=1))
        write_manifest(out, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD)
        verify(out, full=False, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD)
        read_text_index_manifest(out)
        publish(out, target)
    shutil.rmtree(work, ignore_errors=True)
    return TextIndexBuildReport(
        directory=str(target), index_type=kind, rows=rows, live=live, added=counts["added"],
        removals=counts["removals"], replaced=replaced, shards=len(shards) - base_shards,
        resumed_shards=len(mine), embedded=counts["embedded"], problems=list(stream.problems),
        encoded_by_model=None if encoded_before is None else getattr(embedder, "encoded_count") - encoded_before,
        duplicates=stream.duplicates, bm25=bm25_sizes, size_bytes=path_bytes(target), seconds=round(time.perf_counter() - started, 3))


def _empty_counts() -> bm25_index.TermCounts:
    import scipy.sparse as sp

    return bm25_index.TermCounts(sp.csr_matrix((0, 0), dtype=np.float32), [])


def _base_manifest(target: Path, embedder: Embedder, bm25: bool) -> TextIndexManifest:
    """The live index an ``add`` build extends; it must use the same model and BM25 setting."""
    manifest = read_text_index_manifest(target)
    if manifest.embedding_model != embedder.model_name:
        raise TextIndexError(f"cannot add to the text index at {target}: it was built with "
                             f"{manifest.embedding_model!r}, the embedder in use is {embedder.model_name!r}")
    if manifest.bm25 != bm25:
        raise TextIndexError(f"cannot add to the text index at {target}: it was built "
                             f"{'with' if manifest.bm25 else 'without'} BM25; pass {'--bm25' if manifest.bm25 else '--no-bm25'}")
    return manifest


def _shard_vectors(work: Path, shards: list[ShardInfo]) -> Iterator[np.ndarray]:
    for shard in shards:
        yield np.load(work / VECTORS_DIR / f"{shard.name}.npy", mmap_mode="r")


def _dense(work: Path, out: Path, shards: list[ShardInfo], kind: str, dimension: int, base: TextIndexManifest | None,
           target: Path, *, progress: bool) -> dict[str, int]:
    """Write ``out/faiss.index`` from the saved shard vectors; an add reuses a trained IVF-PQ or HNSW index."""
    rows = sum(s.rows for s in shards)
    if base is not None and base.index_type == kind and kind in ("ivfpq", "hnsw"):
        index = read_faiss(target / FAISS_FILE)
        new_shards = [s for s in shards if s.first_row >= base.rows]
        params = dict(base.index_params)
    else:
        index, params = new_index(kind, dimension, rows)
        if kind == "ivfpq":
            cluster_on_gpus(index)
            index.train(train_sample(list(_shard_vectors(work, shards)), rows, limit=params["train"]))
        new_shards = shards
    fill_index(index, _shard_vectors(work, new_shards), total=sum(s.rows for s in new_shards), progress=progress,
               label=kind)
    if index.ntotal != rows:
        raise TextIndexError(f"the dense index holds {index.ntotal} vectors, the passage store {rows} rows")
    write_faiss(index, out / FAISS_FILE)
    return params
