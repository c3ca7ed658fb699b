"""A user's own graph from two CSV files, ``nodes.csv`` and ``edges.csv`` (SPOKE-style; see docs/user_graph.md).

``nodes.csv`` (UTF-8, comma-separated, header required):

=========== ======== ================================================================
column      required meaning
=========== ======== ================================================================
id          yes      unique typed id, e.g. ``DOID:9008``, ``NCBIGene:3106``, ``rs6457620``
label       yes      node label: letters, digits, underscore (``Disease``, ``Gene``, ...)
name        yes      display name, used for entity linking
synonyms    no       ``|``-separated other names
xrefs       no       ``|``-separated ids in other vocabularies
sources     no       ``|``-separated provenance
(any other) no       a property; numbers are stored as numbers
=========== ======== ================================================================

``edges.csv``: ``source_id``, ``type`` (e.g. ``ASSOCIATES_DaG``), ``target_id``, ``sources``
(``|``-separated, at least one) required; any other column is an evidence property (empty
cells are left out; numbers are stored as numbers). An optional ``strength`` column (a number in
[0, 1]) is kept as the edge's evidence strength; where it is empty or invalid (reported), the
strength is computed from the sources and properties (docs/evidence_strength.md), and
``strength_basis`` says which.

Files saved by spreadsheets load as they are: a UTF-8 byte-order mark is dropped, and header names
are matched without surrounding spaces and case (`` Label `` is ``label``). A header that lacks a
required column is a :class:`~kgrag.errors.SourceFileError` naming the file, the missing columns and
the header found.

A malformed row (missing required value, bad label/type, wrong number of fields) is reported
with file and line and counted; an edge whose endpoint is not in ``nodes.csv`` is counted as
dangling and not written.

An id on several rows of ``nodes.csv`` is merged, never overwritten: the first row's label, name
and property values are kept; the later rows' names (when different) and synonyms, xrefs and
sources are added to the first row's lists; a later row with another label is not merged. Each
later row is reported (:class:`DuplicateId`: file, line, the first row's line, what was done).

Example::

    issues = RowIssues()
    report = load_user_graph(store, Path("my_graph"), issues)
    report.nodes, report.edges, issues.total
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from graph_loaders.issues import RowIssues
from kgrag.errors import SourceFileError
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.graph.strength import BASIS_KEY, STRENGTH_KEY, strength_properties, valid_strength

NODE_COLUMNS = ("id", "label", "name")
EDGE_COLUMNS = ("source_id", "type", "target_id", "sources")
_LIST_COLUMNS = ("synonyms", "xrefs", "sources")


class DuplicateId(BaseModel):
    """A later row of ``nodes.csv`` whose id an earlier row (``first_line``) already has, and what was done."""

    file: str
    line: int
    first_line: int
    id: str
    reason: str


class UserGraphReport(BaseModel):
    nodes: int
    edges: int
    dangling_edges: int
    malformed_rows: int
    duplicate_ids: int = 0
    duplicates: list[DuplicateId] = Field(default_factory=list, description="The first 20 duplicate rows")


DUPLICATE_SAMPLES = 20


def _value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, anything else stays text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split("|") if t.strip()]


def _rows(path: Path, required: tuple[str, ...], issues: RowIssues) -> Iterator[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise SourceFileError(f"user graph file {path} not found (expected nodes.csv and edges.csv in one folder)")
    with path.open(newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: a spreadsheet's BOM is dropped
        reader = csv.DictReader(handle)
        found = reader.fieldnames or []
        header = [_column(name) for name in found]
        reader.fieldnames = header
        missing = [c for c in required if c not in header]
        if missing:
            raise SourceFileError(f"{path}: the header lacks the required column(s) {missing}; it has {list(found)} "
                                  f"(the first line must name the columns {list(required)}; see docs/user_graph.md)")
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                issues.report(path, line, f"expected {len(header)} fields")
                continue
            empty = [c for c in required if not row[c].strip()]
            if empty:
                issues.report(path, line, f"empty required value(s) {empty}")
                continue
            yield line, row


def _column(name: str | None) -> str:
    """A header cell as the column it names: spaces around it and case ignored (known columns are lower case)."""
    cleaned = (name or "").strip()
    return cleaned.lower() if cleaned.lower() in NODE_COLUMNS + EDGE_COLUMNS + _LIST_COLUMNS else cleaned


def _node_rows(path: Path, issues: RowIssues) -> Iterator[tuple[int, NodeRecord]]:
    for line, row in _rows(path, NODE_COLUMNS, issues):
        extra = {k: _value(v) for k, v in row.items() if k not in NODE_COLUMNS + _LIST_COLUMNS and v.strip()}
        try:
            yield line, NodeRecord(id=row["id"].strip(), label=row["label"].strip(), name=row["name"].strip(),
                                   synonyms=_split(row.get("synonyms")), xrefs=_split(row.get("xrefs")),
                                   sources=_split(row.get("sources")), properties=extra)
        except ValidationError as exc:
            issues.report(path, line, exc.errors()[0]["msg"])


def iter_nodes(path: Path, issues: RowIssues) -> Iterator[NodeRecord]:
    """Stream the valid nodes of a ``nodes.csv`` (as they are: :func:`load_user_graph` merges repeated ids)."""
    for _, node in _node_rows(path, issues):
        yield node


def _first_lines(path: Path) -> tuple[dict[str, int], set[str]]:
    """Each valid id's first line in ``path``, and the ids on more than one line (a first, cheap pass)."""
    first: dict[str, int] = {}
    repeated: set[str] = set()
    for line, row in _rows(path, NODE_COLUMNS, RowIssues()):  # the second pass reports malformed rows
        node_id = row["id"].strip()
        if node_id in first:
            repeated.add(node_id)
        else:
            first[node_id] = line
    return first, repeated


def _merge_into(kept: NodeRecord, later: NodeRecord) -> tuple[NodeRecord, str]:
    """``later`` merged into ``kept`` by the documented rule (module docstring), and what was done."""
    if later.label != kept.label:
        return kept, f"label {later.label} differs from the kept {kept.label}: row not merged (fix the id or the label)"
    lists = {}
    for field, extra in (("synonyms", [later.name] if later.name != kept.name else []), ("xrefs", []), ("sources", [])):
        values = getattr(kept, field) + [v for v in extra + getattr(later, field) if v not in getattr(kept, field)]
        lists[field] = list(dict.fromkeys(values))
    conflicts = [f"{k} {v!r} (kept {kept.properties[k]!r})" for k, v in later.properties.items()
                 if k in kept.properties and kept.properties[k] != v]
    added = {k: v for k, v in later.properties.items() if k not in kept.properties}
    merged = kept.model_copy(update={**lists, "properties": {**kept.properties, **added}})
    what = "merged into the first row (its label, name and values kept; names and lists added)"
    if conflicts:
        what += f"; differing values not taken: {', '.join(conflicts)}"
    return merged, what


def iter_edges(path: Path, issues: RowIssues) -> Iterator[EdgeRecord]:
    """Stream the valid edges of an ``edges.csv``."""
    for line, row in _rows(path, EDGE_COLUMNS, issues):
        sources = _split(row["sources"])
        extra = {k: _value(v) for k, v in row.items() if k not in EDGE_COLUMNS and v.strip()}
        given = extra.pop(STRENGTH_KEY, None)
        extra.pop(BASIS_KEY, None)
        strength = valid_strength(given)
        if given is not None and strength is None:
            issues.report(path, line, f"strength {given!r} is not a number in [0, 1]; computed from the sources instead")
        if strength is None:
            extra.update(strength_properties(row["type"].strip(), sources, extra))
        else:
            extra.update({STRENGTH_KEY: strength, BASIS_KEY: "given in edges.csv"})
        try:
            yield EdgeRecord(source_id=row["source_id"].strip(), type=row["type"].strip(),
                             target_id=row["target_id"].strip(), sources=sources, properties=extra)
        except ValidationError as exc:
            issues.report(path, line, exc.errors()[0]["msg"])


def load_user_graph(store: GraphStore, directory: Path, issues: RowIssues, batch_size: int = 5000) -> UserGraphReport:
    """Write ``directory/nodes.csv`` and ``directory/edges.csv`` to ``store`` in batches."""
    node_ids: set[str] = set()
    nodes_file = directory / "nodes.csv"
    first_lines, repeated = _first_lines(nodes_file)
    duplicates: list[DuplicateId] = []
    duplicate_count = 0

    def nodes() -> Iterator[NodeRecord]:
        nonlocal duplicate_count
        held: dict[str, NodeRecord] = {}  # repeated ids, merged here and written after the others
        for line, node in _node_rows(nodes_file, issues):
            node_ids.add(node.id)
            if node.id not in repeated:
                yield node
            elif node.id not in held:
                held[node.id] = node
            else:
                held[node.id], what = _merge_into(held[node.id], node)
                duplicate_count += 1
                if len(duplicates) < DUPLICATE_SAMPLES:
                    duplicates.append(DuplicateId(file=str(nodes_file), line=line, first_line=first_lines[node.id],
                                                  id=node.id, reason=what))
        yield from held.values()

    dangling = 0

    def edges() -> Iterator[EdgeRecord]:
        nonlocal dangling
        for edge in iter_edges(directory / "edges.csv", issues):
            if edge.source_id in node_ids and edge.target_id in node_ids:
                yield edge
            else:
                dangling += 1

    store.create_schema()
    n_nodes = store.load_nodes(nodes(), batch_size=batch_size)
    n_edges = store.load_edges(edges(), batch_size=batch_size)
    return UserGraphReport(nodes=n_nodes, edges=n_edges, dangling_edges=dangling, malformed_rows=issues.total,
                           duplicate_ids=duplicate_count, duplicates=duplicates)
