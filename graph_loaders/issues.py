"""Malformed-row reporting and the one table reader every loader uses.

A row that cannot be parsed is never dropped silently: :meth:`RowIssues.report` records the file,
the line number and the reason, counts it per file, keeps the first samples, and logs a warning.
The build report shows the counts and samples.

Example::

    issues = RowIssues()
    for line_no, row in read_table(path, issues, columns=["doid", "name"]):
        ...
    issues.total
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel

log = logging.getLogger(__name__)


class MalformedRow(BaseModel):
    """One row a loader could not use: where it is and why."""

    file: str
    line: int
    reason: str


class RowIssues:
    """Collects malformed rows: counts per file and the first ``samples_per_file`` rows of each file."""

    def __init__(self, samples_per_file: int = 5) -> None:
        self.samples_per_file = samples_per_file
        self.counts: dict[str, int] = {}
        self.samples: list[MalformedRow] = []

    def report(self, file: str | Path, line: int, reason: str) -> None:
        """Record one malformed row of ``file`` at 1-based ``line``."""
        name = _display(file)
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.counts[name] <= self.samples_per_file:
            self.samples.append(MalformedRow(file=name, line=line, reason=reason))
        log.debug("malformed row %s:%d: %s", name, line, reason)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _display(file: str | Path) -> str:
    """Show a source file as its path below ``kg_sources`` (or its name) so reports are machine-independent."""
    parts = Path(file).parts
    for anchor in ("kg_sources", "biomixqa"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor):])
    return str(file)


def open_text(path: Path) -> TextIO:
    """Open a text file, transparently gunzipping ``*.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_table(
    path: Path,
    issues: RowIssues,
    *,
    columns: list[str] | None = None,
    header: bool = True,
    n_fields: int | None = None,
    comment: str | None = None,
    quoted: bool = False,
    ragged: bool = False,
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_no, fields)`` of a tab-separated file, streaming.

    With ``header`` the first (non-comment) line is the header; ``columns`` then names columns
    that must be present (a missing column is a malformed header and nothing is yielded) and each
    row is returned reordered to ``columns``. A row with a different number of fields than the
    header (or ``n_fields``) is reported to ``issues`` and not yielded, unless ``ragged`` (files
    whose trailing empty fields are omitted). ``quoted`` strips one pair
    of double quotes around each field (DO reports quote every value).
    """
    expected = n_fields
    index: list[int] | None = None
    need_header = header
    with open_text(path) as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if comment and line.startswith(comment):
                continue
            if not line.strip():
                continue
            fields = line.split("\t")
            if quoted:
                fields = [f[1:-1] if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in fields]
            if need_header:
                need_header = False
                expected = expected or len(fields)
                if columns is not None:
                    missing = [c for c in columns if c not in fields]
                    if missing:
                        issues.report(path, line_no, f"header lacks columns {missing}")
                        return
                    index = [fields.index(c) for c in columns]
                continue
            if expected is None:
                expected = len(fields)
            if len(fields) != expected and not ragged:
                issues.report(path, line_no, f"expected {expected} tab-separated fields, found {len(fields)}")
                continue
            yield line_no, ([fields[i] for i in index] if index is not None else fields)
