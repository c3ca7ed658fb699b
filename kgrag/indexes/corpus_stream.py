"""A corpus as a stream: passages (and removals) read one at a time, for builds that never hold the corpus.

:func:`corpus_stream` opens what ``kgrag build-text-index --corpus`` names:

- PubMed baseline/update XML (``.xml.gz``/``.xml``, one file or a folder; :mod:`kgrag.indexes.pubmed_xml`),
  streamed in file-name order; a ``DeleteCitation`` becomes a :class:`Removal` of ``pubmed:<PMID>``;
- a ``.jsonl`` file, streamed line by line;
- a folder of ``.txt`` files, or (no path) the public corpus: read in memory (they are small) and
  de-duplicated by text as before.

In a stream, a passage whose ``id`` came before replaces it (PubMed re-issues a whole record to
update it); a removal deletes the passages of that id read before it. Every malformed row or record
is appended to ``problems`` (file and line, or PMID) and skipped. ``fingerprint`` names the inputs
(their paths, sizes and modification times, or the checksum of an in-memory corpus): an interrupted
build resumes only over the same inputs.

Example::

    stream = corpus_stream(settings, Path("pubmed/"))
    for item in stream.items():        # Passage or Removal, in order
        ...
    stream.problems                    # ["pubmed25n0001.xml.gz: PMID 123: no title and no abstract", ...]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from kgrag.indexes.corpus import CorpusError, LoadResult, Passage, corpus_checksum, iter_jsonl, load_corpus
from kgrag.settings import Settings


class Removal(BaseModel):
    """A deletion read in the stream: every earlier passage with this ``id`` is removed."""

    id: str


@dataclass
class CorpusStream:
    """What a build reads: ``items()`` gives a fresh iterator each call (a resumed build reads it again)."""

    description: str
    fingerprint: str
    items: Callable[[], Iterator[Passage | Removal]]
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0


def _files_fingerprint(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def passages_stream(passages: Sequence[Passage], description: str = "passages in memory") -> CorpusStream:
    """A stream over passages already in memory."""
    passages = list(passages)
    return CorpusStream(description, corpus_checksum(passages), lambda: iter(passages))


def _loaded_stream(loaded: LoadResult, description: str) -> CorpusStream:
    """A stream over a corpus read into memory, with what its loader skipped."""
    stream = passages_stream(loaded.passages, description)
    stream.problems, stream.duplicates = list(loaded.malformed), loaded.duplicates
    return stream


def _files_stream(description: str, files: Sequence[Path],
                  read: Callable[[list[str]], Iterator[Passage | Removal]]) -> CorpusStream:
    """A stream that reads ``files`` anew on each ``items()`` call, its problems those of the latest reading."""
    stream = CorpusStream(description, _files_fingerprint(files), lambda: iter(()))

    def items() -> Iterator[Passage | Removal]:
        stream.problems.clear()  # a resumed build reads the files again: their problems once
        yield from read(stream.problems)

    stream.items = items
    return stream


def _pubmed_stream(path: Path) -> CorpusStream:
    from kgrag.indexes.pubmed_xml import PubmedDeletion, pubmed_files, read_pubmed

    files = pubmed_files(path)

    def read(problems: list[str]) -> Iterator[Passage | Removal]:
        for file in files:
            for item in read_pubmed(file, problems):
                yield Removal(id=f"pubmed:{item.pmid}") if isinstance(item, PubmedDeletion) else item

    return _files_stream(f"{len(files)} PubMed XML file(s) at {path}", files, read)


def corpus_stream(settings: Settings, path: Path | str | None = None) -> CorpusStream:
    """The corpus at ``path`` (PubMed XML, JSONL, or a folder of .txt), or the public corpus, as a stream."""
    if path is None:
        return _loaded_stream(load_corpus(settings), f"public corpus under {settings.sources_dir}")
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus {path}: no such file or folder")
    from kgrag.indexes.pubmed_xml import is_pubmed_corpus

    if is_pubmed_corpus(path):
        return _pubmed_stream(path)
    if path.is_file() and path.suffix in {".jsonl", ".json"}:
        return _files_stream(f"JSONL corpus {path}", [path], lambda problems: iter_jsonl(path, problems))
    return _loaded_stream(load_corpus(settings, path), f"text folder {path}")
