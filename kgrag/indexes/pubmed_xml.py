"""PubMed's distribution format, streamed: the annual baseline and daily update files ``pubmed*.xml.gz``.

NLM publishes PubMed as a baseline (``pubmed25n0001.xml.gz`` ... ``pubmed25n1274.xml.gz``) followed by
daily update files numbered on from it (``pubmed25n1275.xml.gz`` ...). Each file is one
``<PubmedArticleSet>`` of ``<PubmedArticle>`` records and, in update files, ``<DeleteCitation>``
lists of PMIDs. Plain ``.xml`` (an efetch download, an unpacked file) is read the same way.

:func:`read_pubmed` streams one file with :class:`xml.etree.ElementTree.XMLPullParser`, clearing each
record once read, so memory stays flat on a 30,000-record file. It yields, in document order,

- a :class:`~kgrag.indexes.corpus.Passage` per ``<PubmedArticle>``: ``id`` = ``pubmed:<pmid>``,
  ``title`` = ``ArticleTitle`` (nested markup such as ``<i>`` kept as text), ``text`` = title + abstract
  (each ``AbstractText`` prefixed ``"LABEL: "`` when it has a ``Label``; the title alone when there is
  no abstract), ``year`` = ``PubDate/Year``, else the first year in ``PubDate/MedlineDate``, else
  ``ArticleDate/Year``, else ``None``; ``mesh`` = the MeSH descriptor names; ``source`` = ``"pubmed"``;
- a :class:`PubmedDeletion` per PMID inside ``<DeleteCitation>``.

Updates and deletions are *not* applied here; the index builder applies them, with these semantics:

1. files are applied in file-name order (:func:`pubmed_files` returns them so: NLM numbers the
   baseline before the update files);
2. a later record with the same PMID replaces the earlier one (an update file re-issues the whole
   record, not a difference);
3. a ``PubmedDeletion`` removes that PMID's record, wherever it came from.

Nothing is dropped silently. A malformed record (no PMID, a PMID that is not digits, neither title nor
abstract text, a year present but not plausible) is skipped and reported in ``problems`` as
``"<file>: PMID <pmid>: <what is wrong>"`` (``"<file>: record <n>: no PMID"``). Damaged XML or
compressed data (a truncated download) ends that file with a line saying where and after how many
records; the records already yielded stay. Only a file that cannot be opened raises
:class:`~kgrag.indexes.corpus.CorpusError`.

Example::

    from kgrag.indexes.pubmed_xml import PubmedDeletion, pubmed_files, read_pubmed
    problems: list[str] = []
    records = {}
    for path in pubmed_files("pubmed/"):               # baseline first, then the updates
        for item in read_pubmed(path, problems):
            if isinstance(item, PubmedDeletion):
                records.pop(item.pmid, None)
            else:
                records[item.pmid] = item               # a re-issued record replaces the old one
    problems                                           # ["pubmed/pubmed25n0002.xml.gz: PMID 123: no title ..."]
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.etree import ElementTree as ET
from xml.parsers import expat

from pydantic import BaseModel, Field, ValidationError

from kgrag.indexes.corpus import CorpusError, Passage

PUBMED_SUFFIXES = (".xml.gz", ".xml")
ROOT_TAG = "PubmedArticleSet"
YEARS = range(1600, 2101)  # a publication year outside this range is a data error, not a date
_CHUNK = 64 * 1024
_WS = re.compile(r"\s+")
_YEAR_IN_TEXT = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_DIGITS = re.compile(r"\d+")


class PubmedDeletion(BaseModel):
    """A PMID withdrawn by an update file's ``<DeleteCitation>``: the index drops its record.

    Example::

        PubmedDeletion(pmid="31234567")
    """

    pmid: str = Field(pattern=r"^\d+$")


def _is_pubmed_name(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and name.endswith(PUBMED_SUFFIXES)


def _candidates(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*.xml*") if p.is_file() and _is_pubmed_name(p))


def pubmed_files(path: Path | str) -> list[Path]:
    """One ``.xml``/``.xml.gz`` file, or every one under a folder (recursively), in file-name order.

    Name order is application order: NLM numbers the baseline files before the update files.
    Raises :class:`CorpusError` if ``path`` is missing, is a file of another kind, or a folder with none.
    """
    path = Path(path)
    if path.is_file():
        if not _is_pubmed_name(path):
            raise CorpusError(f"{path}: expected a PubMed .xml or .xml.gz file")
        return [path]
    if not path.is_dir():
        raise CorpusError(f"{path}: no such PubMed file or folder")
    files = sorted(_candidates(path), key=lambda p: (p.name, p.as_posix()))
    if not files:
        raise CorpusError(f"{path}: no PubMed .xml.gz or .xml files found")
    return files


def is_pubmed_corpus(path: Path | str) -> bool:
    """True for a ``.xml``/``.xml.gz`` file, or a folder holding at least one (recursively)."""
    path = Path(path)
    if path.is_file():
        return _is_pubmed_name(path)
    return path.is_dir() and any(True for _ in _candidates(path))


def _open(path: Path) -> IO[bytes]:
    try:
        if path.name.lower().endswith(".gz"):
            return gzip.open(path, "rb")
        return path.open("rb")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot open PubMed file ({exc})") from exc


def read_pubmed(path: Path, problems: list[str]) -> Iterator[Passage | PubmedDeletion]:
    """Stream one PubMed file: a :class:`Passage` per article, a :class:`PubmedDeletion` per deleted PMID.

    Skipped records and damage are appended to ``problems`` (see the module docstring). Raises
    :class:`CorpusError` at once if the file cannot be opened.
    """
    path = Path(path)
    _open(path).close()  # fail here, not at the first next(), if the file cannot be opened
    return _stream(path, problems)


def _stream(path: Path, problems: list[str]) -> Iterator[Passage | PubmedDeletion]:
    parser = ET.XMLPullParser(events=("start", "end"))
    root: ET.Element | None = None
    depth = 0
    records = 0
    with _open(path) as handle:
        while True:
            try:
                chunk = handle.read(_CHUNK)
            except (OSError, EOFError, zlib.error) as exc:
                problems.append(f"{path}: compressed data is damaged or cut short ({type(exc).__name__}: {exc}) "
                                f"after {records} records; the rest of this file is skipped")
                return
            try:
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
                for event, elem in parser.read_events():
                    if event == "start":
                        depth += 1
                        if root is None:
                            root = elem
                            if elem.tag != ROOT_TAG:
                                problems.append(f"{path}: root element <{elem.tag}> is not <{ROOT_TAG}>; "
                                                "not a PubMed file, skipped")
                                return
                        continue
                    depth -= 1
                    if depth != 1 or root is None:
                        continue
                    records += 1
                    yield from _record(elem, path, records, problems)
                    root.clear()  # drop the finished record (and anything else read so far)
            except ET.ParseError as exc:
                problems.append(f"{path}: not well-formed XML at line {exc.position[0]} ({_parse_reason(exc)}) "
                                f"after {records} records; the rest of this file is skipped")
                return
            if not chunk:
                return


def _parse_reason(exc: ET.ParseError) -> str:
    try:
        return expat.ErrorString(exc.code)
    except (AttributeError, TypeError, ValueError):
        return str(exc)


def _record(elem: ET.Element, path: Path, n: int, problems: list[str]) -> Iterator[Passage | PubmedDeletion]:
    if elem.tag == "PubmedArticle":
        passage = _article(elem, path, n, problems)
        if passage is not None:
            yield passage
    elif elem.tag == "DeleteCitation":
        for pmid_elem in elem.iter("PMID"):
            pmid = _text(pmid_elem)
            if _DIGITS.fullmatch(pmid):
                yield PubmedDeletion(pmid=pmid)
            else:
                problems.append(f"{path}: record {n}: DeleteCitation PMID {pmid!r} is not a number")
    elif elem.tag == "PubmedBookArticle":
        pmid = _text(elem.find("BookDocument/PMID")) or "?"
        problems.append(f"{path}: PMID {pmid}: a PubmedBookArticle (book chapter), not read")
    else:
        problems.append(f"{path}: record {n}: unexpected element <{elem.tag}>, skipped")


def _text(elem: ET.Element | None) -> str:
    """The element's text including nested markup (``<i>``, ``<sup>``), whitespace collapsed."""
    if elem is None:
        return ""
    return _WS.sub(" ", "".join(elem.itertext())).strip()


def _article(elem: ET.Element, path: Path, n: int, problems: list[str]) -> Passage | None:
    citation = elem.find("MedlineCitation")
    pmid = _text(citation.find("PMID")) if citation is not None else ""
    if citation is None or not pmid:
        problems.append(f"{path}: record {n}: no PMID")
        return None
    if not _DIGITS.fullmatch(pmid):
        problems.append(f"{path}: PMID {pmid}: not a number")
        return None
    article = citation.find("Article")
    title = _text(article.find("ArticleTitle")) if article is not None else ""
    abstract = _abstract(article)
    if not title and not abstract:
        problems.append(f"{path}: PMID {pmid}: no title or abstract text")
        return None
    year, bad_year = _year(article)
    if bad_year is not None:
        problems.append(f"{path}: PMID {pmid}: year {bad_year!r} is not a plausible year "
                        f"({YEARS.start}-{YEARS.stop - 1})")
        return None
    mesh = [name for name in (_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName"))
            if name]
    try:
        return Passage(id=f"pubmed:{pmid}", pmid=pmid, title=title or None,
                       text=" ".join(part for part in (title, abstract) if part), source="pubmed", year=year, mesh=mesh)
    except ValidationError as exc:
        problems.append(f"{path}: PMID {pmid}: {exc.errors()[0]['msg']}")
        return None


def _abstract(article: ET.Element | None) -> str:
    if article is None:
        return ""
    parts = []
    for section in article.iterfind("Abstract/AbstractText"):
        text = _text(section)
        if not text:
            continue
        label = _WS.sub(" ", section.get("Label", "")).strip()
        parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


def _year(article: ET.Element | None) -> tuple[int | None, str | None]:
    """(year, None), or (None, the offending text) when a year is given but implausible.

    The first source that is present decides: ``PubDate/Year``, the first four-digit number of
    ``PubDate/MedlineDate`` ("1998 Dec-1999 Jan"), then ``ArticleDate/Year``.
    """
    if article is None:
        return None, None
    pub_date = article.find("Journal/JournalIssue/PubDate")
    candidates: list[str | None] = []
    if pub_date is not None:
        candidates.append(_text(pub_date.find("Year")) or None)
        match = _YEAR_IN_TEXT.search(_text(pub_date.find("MedlineDate")))
        candidates.append(match.group(1) if match else None)
    candidates.append(_text(article.find("ArticleDate/Year")) or None)
    raw = next((c for c in candidates if c), None)
    if raw is None:
        return None, None
    if raw.isdigit() and int(raw) in YEARS:
        return int(raw), None
    return None, raw
