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

A malformed row (missing required value, bad label/type, wrong number of fields) is reported
with file and line and counted; an edge whose endpoint is not in ``nodes.csv`` is counted as
dangling and not written.

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

from pydantic import BaseModel, ValidationError

from graph_loaders.issues import RowIssues
from kgrag.errors import SourceFileError
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.graph.strength import BASIS_KEY, STRENGTH_KEY, strength_properties, valid_strength

NODE_COLUMNS = ("id", "label", "name")
EDGE_COLUMNS = ("source_id", "type", "target_id", "sources")
_LIST_COLUMNS = ("synonyms", "xrefs", "sources")


class UserGraphReport(BaseModel):
    nodes: int
    edges: int
    dangling_edges: int
    malformed_rows: int


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
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            issues.report(path, 1, f"header lacks required columns {missing}")
            return
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


def iter_nodes(path: Path, issues: RowIssues) -> Iterator[NodeRecord]:
    """Stream the valid nodes of a ``nodes.csv``."""
    for line, row in _rows(path, NODE_COLUMNS, issues):
        extra = {k: _value(v) for k, v in row.items() if k not in NODE_COLUMNS + _LIST_COLUMNS and v.strip()}
        try:
            yield NodeRecord(id=row["id"].strip(), label=row["label"].strip(), name=row["name"].strip(),
                             synonyms=_split(row.get("synonyms")), xrefs=_split(row.get("xrefs")),
                             sources=_split(row.get("sources")), properties=extra)
        except ValidationError as exc:
            issues.report(path, line, exc.errors()[0]["msg"])


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

    def nodes() -> Iterator[NodeRecord]:
        for node in iter_nodes(directory / "nodes.csv", issues):
            node_ids.add(node.id)
            yield node

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
    return UserGraphReport(nodes=n_nodes, edges=n_edges, dangling_edges=dangling, malformed_rows=issues.total)
