"""Build a local Infini-gram index (suffix array over word ids) from a text corpus.

Documents are normalised and tokenised by a word-level tokenizer trained on the corpus itself
(:mod:`quco.tokenizer`), written as Infini-gram's ``tokenized.0``/``offset.0`` (each document is
the separator ``0xffff`` followed by its word ids, u16; u32 when the vocabulary outgrows u16), and
the package's own indexer (``python -m infini_gram.indexing``) builds the suffix array. A
``manifest.json`` beside the index records the tokenizer, dtype, token and document counts and the
corpus checksum, and an ``artefacts.json`` (:mod:`kgrag.artefacts`) every file's size and
checksums, verified on load. The build publishes the way every builder does
(:func:`kgrag.artefacts.staged_artefact`): under a build lock, into a staging folder
``.<name>.staging-*`` beside the target, swapped in when complete by two renames (old index to
``.<name>-old-<ns>``, new one in place); a killed build's set-aside index is put back by the next
reader or build, and every successful build deletes what interrupted builds left.

Example::

    from quco.index_builder import build_index, jsonl_texts, project_corpus
    manifest = build_index(project_corpus(settings), Path("/tmp/kgrag-home/stats"))
    manifest = build_index(jsonl_texts(Path("corpus.jsonl")), Path("/tmp/some-index"))  # any {"text"} JSONL
    manifest.total_tokens, manifest.doc_count
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from kgrag.artefacts import STATS_INDEX_KIND, STATS_INDEX_REBUILD, staged_artefact, write_manifest
from kgrag.errors import KgragError
from kgrag.settings import Settings
from quco.tokenizer import NORMALISER, WordTokenizer

FORBIDDEN_PATH_WORDS = ("tokenized", "table", "offset", "metadata", "metaoff", "unigram")
MANIFEST = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
FORMAT_VERSION = 1
PARALLEL_MIN_BYTES = 1 << 20

TextSource = Callable[[], Iterable[str]]


class IndexBuildError(KgragError):
    """The statistics index cannot be built (bad path, bad corpus, indexer failure)."""


class StatsIndexManifest(BaseModel):
    """What an index was built from and how; read back by :class:`quco.stats.LocalInfiniGramStats`."""

    format_version: int = FORMAT_VERSION
    engine: str = "infini-gram"
    engine_version: str
    tokenizer: str = "word-level (tokenizers WordLevel, trained on the corpus)"
    tokenizer_file: str = TOKENIZER_FILE
    normaliser: str = NORMALISER
    vocab_size: int
    token_dtype: Literal["u16", "u32"]
    total_tokens: int
    doc_count: int
    corpus_sha256: str
    source: str
    skipped_rows: int = 0
    built_at: str
    build_seconds: float
    index_bytes: int


def check_index_path(path: Path) -> Path:
    """Return ``path`` absolute; raise :class:`IndexBuildError` if the engine would misread it.

    The engine classifies files by substrings of their full path, so no part of the path may
    contain ``tokenized``, ``table``, ``offset``, ``metadata``, ``metaoff`` or ``unigram``.
    """
    absolute = path.expanduser().resolve()
    bad = [w for w in FORBIDDEN_PATH_WORDS if w in str(absolute).lower()]
    if bad:
        raise IndexBuildError(
            f"stats index path {absolute} contains {', '.join(repr(w) for w in bad)}; Infini-gram classifies "
            f"index files by these words, so choose a path without any of {', '.join(FORBIDDEN_PATH_WORDS)}"
        )
    return absolute


def jsonl_texts(path: Path, field: str = "text") -> TextSource:
    """A re-readable source of the ``field`` of each line of a JSONL file (lines with no text are errors)."""
    if not path.is_file():
        raise IndexBuildError(f"corpus file {path} not found")

    def read() -> Iterator[str]:
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise IndexBuildError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
                text = row.get(field) if isinstance(row, dict) else None
                if not isinstance(text, str):
                    raise IndexBuildError(f"{path}:{lineno}: no string field {field!r}")
                yield text

    return read


@dataclass
class CorpusSource:
    """Texts to index (re-readable), with a name, a checksum and the rows the loader skipped."""

    texts: TextSource
    name: str
    sha256: str | None = None
    skipped_rows: int = 0


def project_corpus(settings: Settings, path: Path | None = None) -> CorpusSource:
    """The passages of :func:`kgrag.indexes.corpus.load_corpus`: the public corpus (PubMedQA contexts + BioASQ
    snippets) by default, or a user's ``.jsonl``/folder of ``.txt`` at ``path``; one document per passage.
    """
    from kgrag.indexes.corpus import corpus_checksum as passages_checksum  # noqa: PLC0415
    from kgrag.indexes.corpus import load_corpus  # noqa: PLC0415

    result = load_corpus(settings, path)
    texts = [p.text for p in result.passages]
    name = str(path) if path is not None else "kgrag.indexes.corpus public passages (PubMedQA contexts + BioASQ snippets)"
    return CorpusSource(texts=lambda: texts, name=name, sha256=passages_checksum(result.passages),
                        skipped_rows=len(result.malformed) + result.duplicates)


def corpus_checksum(texts: Iterable[str]) -> str:
    """SHA-256 over the UTF-8 texts, each followed by a NUL byte (order matters)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def read_stats_manifest(index_dir: Path) -> StatsIndexManifest:
    """The ``manifest.json`` of the statistics index in ``index_dir``."""
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexBuildError(f"no stats index at {index_dir} ({MANIFEST} missing); run `kgrag build-stats-index`")
    return StatsIndexManifest.model_validate_json(path.read_text())


def _write_tokens(texts: Iterable[str], tok: WordTokenizer, dtype: type[np.unsignedinteger], work: Path) -> tuple[int, int]:
    width = np.dtype(dtype).itemsize
    sep = np.array([np.iinfo(dtype).max], dtype=dtype).tobytes()
    position, docs, tokens = 0, 0, 0
    with (work / "tokenized.0").open("wb") as data, (work / "offset.0").open("wb") as offsets:
        for ids in tok.iter_encode(texts):
            offsets.write(np.array([position], dtype=np.uint64).tobytes())
            data.write(sep)
            data.write(np.asarray(ids, dtype=dtype).tobytes())
            position += width * (1 + len(ids))
            docs += 1
            tokens += len(ids)
    return docs, tokens


def _run_indexer(work: Path, dtype_name: str, cpus: int, mem_gib: int) -> None:
    data_size = (work / "tokenized.0").stat().st_size
    if data_size < cpus * PARALLEL_MIN_BYTES:
        cpus = 1  # the indexer's parts overlap by 100 kB: small data split across jobs gives a corrupt table
    empty = work / "no-input"
    empty.mkdir()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    ulimit = 1 << 16 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    cmd = [sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(empty), "--save_dir", str(work),
           "--token_dtype", dtype_name, "--cpus", str(cpus), "--mem", str(mem_gib), "--ulimit", str(ulimit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    empty.rmdir()
    if proc.returncode != 0 or not (work / "table.0").is_file() or "went wrong" in proc.stdout:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise IndexBuildError(f"infini-gram indexer failed (exit {proc.returncode}):\n{tail}")
    width = 2 if dtype_name == "u16" else 4
    ptr_size = int(np.ceil(np.log2(data_size) / 8))
    expected = data_size // width * ptr_size
    if (work / "table.0").stat().st_size != expected:
        raise IndexBuildError(f"infini-gram indexer wrote a suffix array of {(work / 'table.0').stat().st_size} bytes, "
                              f"expected {expected}; the index is corrupt")


def build_index(
    source: CorpusSource | TextSource,
    out_dir: Path,
    *,
    cpus: int | None = None,
    mem_gib: int = 4,
) -> StatsIndexManifest:
    """Build the index of the texts of ``source`` into ``out_dir`` (replacing an index there).

    The texts are read three times (checksum unless given, tokenizer training, encoding), so the
    source must be re-readable. The corpus checksum is ``source.sha256`` when set (for the project
    corpus, :func:`kgrag.indexes.corpus.corpus_checksum`), else :func:`corpus_checksum` of the texts.
    """
    if not isinstance(source, CorpusSource):
        source = CorpusSource(texts=source, name="corpus")
    from importlib.metadata import version  # noqa: PLC0415

    target = check_index_path(out_dir)
    check_index_path(target.with_name(f".{target.name}.staging-0"))
    started = time.perf_counter()
    checksum = source.sha256 or corpus_checksum(source.texts())
    tok = WordTokenizer.train(source.texts())
    dtype_name, dtype = ("u16", np.uint16) if tok.vocab_size < np.iinfo(np.uint16).max else ("u32", np.uint32)
    with staged_artefact(target, kind=STATS_INDEX_KIND, rebuild=STATS_INDEX_REBUILD) as work:
        docs, tokens = _write_tokens(source.texts(), tok, dtype, work)
        if docs == 0 or tokens == 0:
            raise IndexBuildError(f"corpus {source.name} has no words to index ({docs} documents)")
        tok.save(work / TOKENIZER_FILE)
        _run_indexer(work, dtype_name, cpus or max(1, min(os.cpu_count() or 1, 4)), mem_gib)
        size = sum(p.stat().st_size for p in work.iterdir() if p.is_file())
        manifest = StatsIndexManifest(
            engine_version=version("infini-gram"), vocab_size=tok.vocab_size, token_dtype=dtype_name,
            total_tokens=tokens, doc_count=docs, corpus_sha256=checksum, source=source.name,
            skipped_rows=source.skipped_rows,
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3), index_bytes=size,
        )
        (work / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        write_manifest(work, kind=STATS_INDEX_KIND, rebuild=STATS_INDEX_REBUILD)
    return manifest
