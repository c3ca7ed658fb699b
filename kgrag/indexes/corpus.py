"""Passages for the text index: the public PubMedQA contexts and BioASQ snippets, or a user's corpus.

Every loader returns a :class:`LoadResult`: the passages plus every malformed row it skipped,
each named by file and line (or key) so nothing is dropped silently. The public corpus is

- PubMedQA (PQA-L dev and test): one passage per ``CONTEXTS`` paragraph, ``id`` =
  ``pubmedqa:<pmid>:<i>``, with the record's ``YEAR`` and ``MESHES`` as metadata (for search filters).
  Only the contexts and that metadata are read: never the labels, ``LONG_ANSWER`` (the conclusion)
  or ``final_decision``.
- BioASQ golden files: one passage per snippet, the PMID taken from the document URL,
  ``id`` = ``bioasq:<pmid>:<hash of text>``; a PMID's title snippet also fills ``title``.

De-duplication keys on the normalised text (first occurrence wins, PubMedQA first).

Example::

    from kgrag.indexes.corpus import load_corpus, write_jsonl
    result = load_corpus(settings)            # the public corpus under settings.sources_dir
    write_jsonl(result.passages, "passages.jsonl")
    result.malformed                          # ["bioasq/...json: question 55..., snippet 3: no text", ...]
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from kgrag.errors import KgragError
from kgrag.settings import Settings
from kgrag.sources import source_path, sources_root
from kgrag.text import normalise

PUBMEDQA_FILES = ("pubmedqa/pqal_dev_labelled.json", "pubmedqa/pqal_test_unlabelled.json")
BIOASQ_GLOB = "bioasq/Task*BGoldenEnriched/*.json"
_PMID_IN_URL = re.compile(r"/pubmed/(\d+)\s*$")
_WS = re.compile(r"\s+")


class CorpusError(KgragError, ValueError):
    """A corpus file is missing, unreadable or holds no usable passage."""


class Passage(BaseModel):
    """One retrievable unit of text, with its PubMed id as provenance.

    Example::

        Passage(id="pubmedqa:21645374:0", pmid="21645374", text="Programmed cell death ...", source="pubmedqa")
    """

    id: str = Field(min_length=1)
    pmid: str | None = None
    title: str | None = None
    text: str = Field(min_length=1)
    source: str = "user"
    year: int | None = Field(default=None, description="Publication year, for year-range filters")
    mesh: list[str] = Field(default_factory=list, description="MeSH descriptor names, for MeSH filters")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value

    @field_validator("pmid", mode="before")
    @classmethod
    def _pmid_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


@dataclass
class LoadResult:
    """Passages loaded, plus what was skipped: ``malformed`` rows (file and line) and ``duplicates``."""

    passages: list[Passage] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    duplicates: int = 0

    def extend(self, other: "LoadResult") -> None:
        self.passages.extend(other.passages)
        self.malformed.extend(other.malformed)
        self.duplicates += other.duplicates

    def stats(self) -> dict[str, object]:
        """Counts for reports: passages by source, distinct PMIDs, malformed rows, duplicates."""
        return {
            "passages": len(self.passages),
            "by_source": dict(Counter(p.source for p in self.passages)),
            "pmids": len({p.pmid for p in self.passages if p.pmid}),
            "malformed": len(self.malformed),
            "duplicates": self.duplicates,
        }


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc


def load_pubmedqa(path: Path) -> LoadResult:
    """PubMedQA contexts (``{pmid: {"QUESTION", "CONTEXTS", ...}}``), one passage per paragraph."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected a JSON object keyed by PMID, got {type(data).__name__}")
    result = LoadResult()
    for pmid, row in data.items():
        contexts = row.get("CONTEXTS") if isinstance(row, dict) else None
        if not isinstance(contexts, list) or not contexts:
            result.malformed.append(f"{path}: PMID {pmid}: no CONTEXTS list")
            continue
        for i, context in enumerate(contexts):
            if not isinstance(context, str) or not context.strip():
                result.malformed.append(f"{path}: PMID {pmid}: CONTEXTS[{i}] is not text")
                continue
            result.passages.append(Passage(id=f"pubmedqa:{pmid}:{i}", pmid=str(pmid), text=_clean(context),
                                           source="pubmedqa", year=_year(row.get("YEAR")),
                                           mesh=[m for m in row.get("MESHES") or [] if isinstance(m, str) and m.strip()]))
    return result


def _year(value: object) -> int | None:
    """A publication year from PubMedQA's ``YEAR`` ("2000"), or None."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) == 4 else None


def load_bioasq(path: Path) -> LoadResult:
    """BioASQ golden file snippets; the PMID comes from the snippet's document URL."""
    data = _read_json(path)
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list):
        raise CorpusError(f"{path}: expected {{\"questions\": [...]}}")
    result = LoadResult()
    titles: dict[str, str] = {}
    for qi, question in enumerate(questions):
        qid = question.get("id", f"#{qi}") if isinstance(question, dict) else f"#{qi}"
        snippets = question.get("snippets", []) if isinstance(question, dict) else None
        if not isinstance(snippets, list):
            result.malformed.append(f"{path}: question {qid}: snippets is not a list")
            continue
        for si, snippet in enumerate(snippets):
            where = f"{path}: question {qid}, snippet {si}"
            if not isinstance(snippet, dict):
                result.malformed.append(f"{where}: not an object")
                continue
            text = snippet.get("text")
            match = _PMID_IN_URL.search(str(snippet.get("document", "")))
            if not isinstance(text, str) or not text.strip():
                result.malformed.append(f"{where}: no text")
                continue
            if match is None:
                result.malformed.append(f"{where}: document {snippet.get('document')!r} is not a PubMed URL")
                continue
            pmid, text = match.group(1), _clean(text)
            if snippet.get("beginSection") == "title":
                titles.setdefault(pmid, text)
            digest = hashlib.sha1(normalise(text).encode()).hexdigest()[:12]
            result.passages.append(Passage(id=f"bioasq:{pmid}:{digest}", pmid=pmid, text=text, source="bioasq"))
    for passage in result.passages:
        passage.title = titles.get(passage.pmid or "")
    return result


def iter_jsonl(path: Path | str, problems: list[str], *, source: str = "user") -> Iterator[Passage]:
    """Passages from JSONL one line at a time (``{"text", "id"?, "pmid"?, "title"?, "source"?, "year"?, "mesh"?}``).

    A missing ``id`` becomes ``<file stem>:<line>``. A bad line is skipped and named (file and line) in
    ``problems``. Memory does not grow with the file.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc})") from exc
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{lineno}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path}:{lineno}: expected a JSON object")
                continue
            row.setdefault("id", f"{path.stem}:{lineno}")
            row.setdefault("source", source)
            try:
                yield Passage(**row)
            except (ValidationError, TypeError) as exc:
                problems.append(f"{path}:{lineno}: {_first_error(exc)}")


def read_jsonl(path: Path | str, *, source: str = "user") -> LoadResult:
    """Passages from JSONL (:func:`iter_jsonl`), all in memory, with every bad line in ``malformed``."""
    result = LoadResult()
    result.passages.extend(iter_jsonl(path, result.malformed, source=source))
    return result


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"field {'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}"
    return str(exc)


def load_text_folder(folder: Path | str) -> LoadResult:
    """Every ``*.txt`` under ``folder`` (recursively), one passage per blank-line-separated paragraph.

    ``id`` = ``<relative path>#<paragraph>``, ``title`` = the file name without suffix.
    """
    folder = Path(folder)
    result = LoadResult()
    files = sorted(folder.rglob("*.txt"))
    if not files:
        raise CorpusError(f"{folder}: no .txt files found")
    for path in files:
        relative = path.relative_to(folder).as_posix()
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.malformed.append(f"{path}: cannot read ({exc})")
            continue
        paragraphs = [_clean(p) for p in re.split(r"\n\s*\n", content)]
        paragraphs = [p for p in paragraphs if p]
        if not paragraphs:
            result.malformed.append(f"{path}: empty file")
        for i, paragraph in enumerate(paragraphs):
            result.passages.append(Passage(id=f"{relative}#{i}", title=path.stem, text=paragraph, source="user"))
    return result


def deduplicate(passages: Iterable[Passage]) -> tuple[list[Passage], int]:
    """Drop passages whose normalised text, or id, was seen before; return (kept, number dropped)."""
    kept: list[Passage] = []
    seen_text: set[str] = set()
    seen_id: set[str] = set()
    dropped = 0
    for passage in passages:
        key = hashlib.sha1(normalise(passage.text).encode()).hexdigest()
        if key in seen_text or passage.id in seen_id:
            dropped += 1
            continue
        seen_text.add(key)
        seen_id.add(passage.id)
        kept.append(passage)
    return kept, dropped


def load_public_corpus(settings: Settings) -> LoadResult:
    """PubMedQA contexts (dev + test) and all BioASQ snippets found under the sources directory."""
    result = LoadResult()
    for relative in PUBMEDQA_FILES:
        result.extend(load_pubmedqa(source_path(settings, relative)))
    bioasq_files = sorted(sources_root(settings).glob(BIOASQ_GLOB))
    if not bioasq_files:
        raise CorpusError(f"no BioASQ files matching {BIOASQ_GLOB} under {sources_root(settings)} "
                          "(set KGRAG_SOURCES_DIR to a directory laid out like shared/data)")
    for path in bioasq_files:
        result.extend(load_bioasq(path))
    result.passages, result.duplicates = deduplicate(result.passages)
    return result


def load_user_corpus(path: Path | str) -> LoadResult:
    """A user's corpus: a ``.jsonl`` file or a folder of ``.txt`` files, de-duplicated."""
    path = Path(path)
    if path.is_dir():
        result = load_text_folder(path)
    elif path.is_file() and path.suffix in {".jsonl", ".json"}:
        result = read_jsonl(path)
    else:
        raise CorpusError(f"corpus {path}: expected a .jsonl file or a folder of .txt files")
    passages, dropped = deduplicate(result.passages)
    result.passages, result.duplicates = passages, result.duplicates + dropped
    return result


def load_corpus(settings: Settings, path: Path | str | None = None) -> LoadResult:
    """The user's corpus at ``path`` when given, else the public corpus. Raises if nothing usable loads."""
    result = load_user_corpus(path) if path is not None else load_public_corpus(settings)
    if not result.passages:
        detail = f"; first problem: {result.malformed[0]}" if result.malformed else ""
        raise CorpusError(f"corpus {path or sources_root(settings)}: no usable passages "
                          f"({len(result.malformed)} malformed rows{detail})")
    return result


def write_jsonl(passages: Iterable[Passage], path: Path | str) -> int:
    """Write passages one JSON object a line; return how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for passage in passages:
            out.write(passage.model_dump_json(exclude_none=True, exclude=None if passage.mesh else {"mesh"}) + "\n")
            count += 1
    return count


def corpus_checksum(passages: Iterable[Passage]) -> str:
    """SHA-256 over ids, PMIDs and texts in order: names the exact corpus an index was built from."""
    return rows_checksum((passage.id, passage.pmid, passage.text) for passage in passages)


def rows_checksum(rows: Iterable[tuple[str, str | None, str]]) -> str:
    """:func:`corpus_checksum` over (id, PMID, text) rows, for passages read back from a store."""
    digest = hashlib.sha256()
    for passage_id, pmid, text in rows:
        digest.update(f"{passage_id}\t{pmid or ''}\t{text}\n".encode())
    return digest.hexdigest()
