"""The embedded graph store: LadybugDB (the maintained fork of Kuzu), in-process, no server.

Schema (declared, fixed)::

    Node(id STRING PRIMARY KEY, label STRING, name STRING, keys STRING[], synonyms STRING[],
         xrefs STRING[], sources STRING[], props STRING)
    Edge(FROM Node TO Node, type STRING, sources STRING[], props STRING)

    NameKey(key STRING PRIMARY KEY, ids STRING[])

One relationship table holds every edge type (``type`` is a property, filtered with a parameter);
``props`` is the JSON of ``properties``; ``keys`` the normalised name and synonyms.

Lookups never scan: ids go through ``Node``'s primary-key index; names through the key table
``NameKey`` (normalised name or synonym -> node ids, primary key ``key``), kept in step with every
node write. A neighbourhood is one primary-key lookup per seed, then that node's adjacency lists
(LadybugDB plans ``UNWIND $ids ... MATCH (s {id: x})-[r]-()`` as a hash join over the whole
relationship table, and ``list_contains($ids, s.id)`` as a scan of every id). A graph written
before the key table existed gets it when first opened read-write; read-only, it is refused with
the fix (:meth:`LadybugGraphStore.missing_indexes`, checked by kgrag/graph/serving.py).

Loading into an empty table (a fresh build) streams every batch of the call into one temporary CSV
and writes it with one ``COPY FROM`` (LadybugDB's bulk path: COPY into an empty relationship table
is several times faster than into a filled one); ids or edges repeated across batches are applied
after the COPY as updates. Loading into a filled table goes batch by batch: each batch is
de-duplicated in Python, looked up in one query, and split into new rows (``UNWIND ... CREATE``, or
COPY from ``node_copy_threshold`` / ``edge_copy_threshold`` rows up) and existing ones. An existing
node is replaced by the new record; a duplicate edge (same source, type, target) is merged into the
existing one: sources united, properties updated (new values win). Unchanged rows are not
rewritten; edges whose endpoint is missing are not written.

Example::

    from kgrag.graph.ladybug_store import LadybugGraphStore
    from kgrag.graph.schema import NodeRecord
    store = LadybugGraphStore("/tmp/graph.lbug")
    store.load_nodes([NodeRecord(id="DOID:8893", label="Disease", name="psoriasis")])
    store.find_by_name(["Psoriasis"])["Psoriasis"][0].id   # 'DOID:8893'
    store.close()
"""

from __future__ import annotations

import csv
import tempfile
from contextlib import contextmanager
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ladybug

from kgrag.errors import GraphStoreError
from kgrag.graph.base import GraphStoreBase, apply_key_changes, check_batch_size, key_changes
from kgrag.graph.rows import (
    NODE_FIELDS,
    check_edge_types,
    check_labels,
    chunks,
    dedupe_nodes,
    dedupe_views,
    directed_views,
    edge_row,
    edge_view,
    in_order,
    merge_edges,
    merged_row,
    node_from_row,
    node_row,
    unique,
)
from kgrag.graph.schema import BuildMarker, EdgeRecord, EdgeView, NodeRecord, NodeRef

URI_PREFIX = "ladybug://"
_SEP = "\x1f"  # unit separator: joins list elements in the CSV files COPY reads
_N = ", ".join(f"n.{field}" for field in NODE_FIELDS)
_STORED_FIELDS = ("label", "name", "keys", "synonyms", "xrefs", "sources", "props")
_STORED = ", ".join(f"n.{field}" for field in _STORED_FIELDS)

_NODE_DDL = (
    "CREATE NODE TABLE IF NOT EXISTS Node(id STRING PRIMARY KEY, label STRING, name STRING, "
    "keys STRING[], synonyms STRING[], xrefs STRING[], sources STRING[], props STRING)"
)
_EDGE_DDL = "CREATE REL TABLE IF NOT EXISTS Edge(FROM Node TO Node, type STRING, sources STRING[], props STRING)"
# The build marker (kgrag.graph.schema.BuildMarker as JSON): its own table, so no Node/Edge query sees it.
MARKER_TABLE = "KgragBuild"
_MARKER_DDL = f"CREATE NODE TABLE IF NOT EXISTS {MARKER_TABLE}(id STRING PRIMARY KEY, marker STRING)"
# The name key table: normalised name or synonym -> ids of the nodes that have it (primary key: indexed).
KEY_TABLE = "NameKey"
_KEY_BUILD = "NameKeyBuild"  # filled under this name, then renamed: readers never see a half-filled table
_KEY_DDL = "CREATE NODE TABLE {table}(key STRING PRIMARY KEY, ids STRING[])"
_KEY_FILL = "COPY {table} FROM (MATCH (n:Node) UNWIND n.keys AS k RETURN k, collect(n.id))"
# The indexed lookups (their plans are checked by tests/graph/test_contract.py: no node-table scan).
ID_LOOKUP = f"UNWIND $ids AS x MATCH (n:Node {{id: x}}) RETURN {_N}"
KEY_LOOKUP = f"UNWIND $keys AS x MATCH (k:{KEY_TABLE} {{key: x}}) RETURN k.key, k.ids"
# No LIMIT in the query: LadybugDB 0.22 spends ~0.8 ms planning one; rows are read up to the limit instead.
# A seed's edges, out then in: two directed matches return the direction and the edge's own columns, which reads
# ~1.8x faster than one undirected match returning the edge as a struct (a seed of ~340 edges on the public graph:
# 7.0 against 12.3 ms).
_SEED_BRANCH = ("MATCH (s:Node {{id: $id}}){arrow}(o:Node){where} "
                "RETURN {out}, r.type, r.sources, r.props, o.id, o.label, o.name")
SEED_EDGES = (_SEED_BRANCH.replace("{arrow}", "-[r:Edge]->").replace("{out}", "true") + " UNION ALL "
              + _SEED_BRANCH.replace("{arrow}", "<-[r:Edge]-").replace("{out}", "false"))
TYPE_FILTER = " WHERE list_contains($types, r.type)"
# WITH before the filter: without it the planner scans every node for y (a hash join on ids).
_PAIR_BRANCH = ("MATCH (x:Node {id: $id})ARROW(y:Node) WITH r, y WHERE list_contains($b, y.id) "
                "RETURN OUT, r.type, r.sources, r.props, y.id, y.label, y.name")
PAIR_EDGES = (_PAIR_BRANCH.replace("ARROW", "-[r:Edge]->").replace("OUT", "true") + " UNION ALL "
              + _PAIR_BRANCH.replace("ARROW", "<-[r:Edge]-").replace("OUT", "false"))


def path_from_uri(uri: str) -> Path:
    """``ladybug:///abs/path/graph.lbug`` -> ``Path('/abs/path/graph.lbug')``."""
    if not uri.startswith(URI_PREFIX):
        raise GraphStoreError(f"graph URI {uri!r} is not a ladybug:// URI (e.g. ladybug:///data/graph.lbug)")
    path = uri[len(URI_PREFIX) :]
    if not path.startswith("/"):
        raise GraphStoreError(f"graph URI {uri!r}: the path must be absolute (ladybug:///abs/path/graph.lbug)")
    return Path(path)


def _csv_list(values: Sequence[str], what: str) -> str:
    """A list as one CSV field, elements joined by U+001F (stored lists hold no empty strings)."""
    for value in values:
        if _SEP in value:
            raise ValueError(f"{what}: list value {value!r} contains the control character U+001F")
    return _SEP.join(values)


def _list_column(column: str) -> str:
    """The expression turning a :func:`_csv_list` field back into a STRING[] (an empty field is NULL).

    Plain ``string_split``: a ``list_transform`` lambda here made the COPY of the public graph's
    117k nodes fail now and then with "buffer pool is full".
    """
    return f"CASE WHEN {column} IS NULL THEN CAST([] AS STRING[]) ELSE string_split({column}, '{_SEP}') END"


_NODE_LISTS = ("keys", "synonyms", "xrefs", "sources")
# Table -> (CSV columns, all read as STRING; the expressions COPY stores, in table column order).
_COPY_COLUMNS = {
    "Node": (
        ("id", "label", "name", *_NODE_LISTS, "props"),
        ", ".join(["id", "label", "name", *(_list_column(f) for f in _NODE_LISTS), "props"]),
    ),
    "Edge": (("s", "t", "type", "sources", "props"), f"s, t, type, {_list_column('sources')}, props"),
}


def _node_csv(row: dict[str, Any]) -> list[str]:
    lists = [_csv_list(row[f], f"node {row['id']!r} {f}") for f in _NODE_LISTS]
    return [row["id"], row["label"], row["name"], *lists, row["props"]]


def _edge_csv(row: dict[str, Any]) -> list[str]:
    sources = _csv_list(row["sources"], f"edge {row['s']}|{row['type']}|{row['t']}")
    return [row["s"], row["t"], row["type"], sources, row["props"]]


class _CsvRows:
    """Rows written to a COPY file, counted."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer
        self.count = 0

    def add(self, row: list[str]) -> None:
        self._writer.writerow(row)
        self.count += 1


class LadybugGraphStore(GraphStoreBase):
    """GraphStore on an embedded LadybugDB database file (plus its ``.wal``).

    Example::

        store = LadybugGraphStore("/tmp/g.lbug")
        store.schema().total_nodes
    """

    backend = "ladybug"
    _NODE_COUNTS = "MATCH (n:Node) RETURN n.label, count(*)"
    _EDGE_COUNTS = "MATCH ()-[r:Edge]->() RETURN r.type, count(*)"

    def __init__(
        self,
        path: str | Path,
        *,
        node_copy_threshold: int = 1000,
        edge_copy_threshold: int = 20_000,
        buffer_pool_bytes: int | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.read_only = read_only
        self.node_copy_threshold = node_copy_threshold
        self.edge_copy_threshold = edge_copy_threshold
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # buffer_pool_bytes: None keeps LadybugDB's default (a share of physical memory).
            # read_only: many processes may read one graph at once (a writer locks it exclusively)
            self._db = ladybug.Database(str(self.path), buffer_pool_size=buffer_pool_bytes or 0, read_only=read_only)
            self._conn = ladybug.Connection(self._db)
        except (RuntimeError, OSError) as exc:
            raise GraphStoreError(
                f"cannot open LadybugDB database at {self.path}: {exc} (if another process holds it, wait for it; "
                "if the file is damaged, rebuild it: `kgrag build-graph --clear`)"
            ) from exc
        if not read_only:
            self.create_schema()

    @classmethod
    def from_uri(cls, uri: str, *, read_only: bool = False) -> "LadybugGraphStore":
        return cls(path_from_uri(uri), read_only=read_only)

    # --- plumbing -------------------------------------------------------------------------------

    def _run(self, query: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        try:
            result = self._conn.execute(query, parameters or {})
            rows = result.get_all()
            result.close()
            return rows
        except RuntimeError as exc:
            raise GraphStoreError(f"LadybugDB query failed at {self.path}: {exc}") from exc

    _rows = _run

    def _first(self, query: str, parameters: dict[str, Any], limit: int | None) -> list[list[Any]]:
        """The first ``limit`` rows of a query (all when None), read one by one."""
        if limit is None:
            return self._run(query, parameters)
        try:
            result = self._conn.execute(query, parameters)
            rows = []
            while len(rows) < limit and result.has_next():
                rows.append(result.get_next())
            result.close()
            return rows
        except RuntimeError as exc:
            raise GraphStoreError(f"LadybugDB query failed at {self.path}: {exc}") from exc

    def _node_refs(self, ids: Sequence[str]) -> dict[str, NodeRef]:
        """Each existing node of ``ids`` as a :class:`NodeRef` (one primary-key lookup for all)."""
        return {n.id: NodeRef(id=n.id, label=n.label, name=n.name) for n in self.get_nodes(ids)}

    def query_plan(self, query: str, parameters: dict[str, Any] | None = None) -> str:
        """The physical plan LadybugDB chooses for a query (``EXPLAIN``), as text."""
        return "\n".join(str(row[0]) for row in self._run(f"EXPLAIN {query}", parameters))

    def _tables(self) -> set[str]:
        return {row[0] for row in self._run("CALL show_tables() RETURN name")}

    @contextmanager
    def _copy_csv(self, table: str) -> Iterator["_CsvRows"]:
        """Collect rows in a temporary CSV file; on leaving, COPY them into ``table`` (if any)."""
        with tempfile.TemporaryDirectory(prefix="kgrag-copy-") as tmp:
            path = Path(tmp) / f"{table}.csv"
            if "'" in str(path):
                raise GraphStoreError(f"temporary directory {tmp!r} contains a quote; set TMPDIR elsewhere")
            with path.open("w", newline="", encoding="utf-8") as handle:
                rows = _CsvRows(csv.writer(handle))
                yield rows
            if rows.count:
                header, select = _COPY_COLUMNS[table]
                columns = ", ".join(f"{name} STRING" for name in header)
                self._run(
                    f"COPY {table} FROM (LOAD WITH HEADERS ({columns}) FROM '{path.as_posix()}' "
                    f"(header=false, parallel=false, auto_detect=false) RETURN {select})"
                )

    # --- schema ---------------------------------------------------------------------------------

    def create_schema(self) -> None:
        self._run(_NODE_DDL)
        self._run(_EDGE_DDL)
        if KEY_TABLE not in self._tables():
            self._build_name_keys()

    def _build_name_keys(self) -> None:
        """(Re)build the name key table from every node's keys; renamed into place only when filled."""
        self._run(f"DROP TABLE IF EXISTS {_KEY_BUILD}")
        self._run(_KEY_DDL.format(table=_KEY_BUILD))
        if self._count("MATCH (n:Node) RETURN count(*)"):
            self._run(_KEY_FILL.format(table=_KEY_BUILD))
        self._run(f"DROP TABLE IF EXISTS {KEY_TABLE}")
        self._run(f"ALTER TABLE {_KEY_BUILD} RENAME TO {KEY_TABLE}")

    def missing_indexes(self) -> list[str]:
        """The lookup structures this graph lacks (a graph written before they existed), each with the fix."""
        if KEY_TABLE in self._tables():
            return []
        return [f"the name key table {KEY_TABLE} (the graph predates it): open it once read-write, e.g. "
                "`kgrag build-graph` (it is added from the nodes), or rebuild with `kgrag build-graph --clear`"]

    def clear(self) -> None:
        self._run("DROP TABLE IF EXISTS Edge")
        self._run("DROP TABLE IF EXISTS Node")
        self._run(f"DROP TABLE IF EXISTS {KEY_TABLE}")
        self.create_schema()

    def close(self) -> None:
        """Close the connection and the database (LadybugDB checkpoints on close: no ``.wal`` is left)."""
        self._conn.close()
        self._db.close()

    # --- build marker ---------------------------------------------------------------------------

    def read_marker(self) -> BuildMarker | None:
        """The build marker, or None for a graph no kgrag build has marked."""
        tables = {row[0] for row in self._run("CALL show_tables() RETURN name")}
        if MARKER_TABLE not in tables:
            return None
        rows = self._run(f"MATCH (b:{MARKER_TABLE} {{id: $id}}) RETURN b.marker", {"id": "graph"})
        return BuildMarker.model_validate_json(rows[0][0]) if rows else None

    def write_marker(self, marker: BuildMarker) -> None:
        """Store ``marker`` (replacing the previous one)."""
        self._run(_MARKER_DDL)
        self._run(
            f"MERGE (b:{MARKER_TABLE} {{id: $id}}) SET b.marker = $marker",
            {"id": "graph", "marker": marker.model_dump_json()},
        )

    # --- loading --------------------------------------------------------------------------------

    def load_nodes(self, nodes: Iterable[NodeRecord], batch_size: int = 5000) -> int:
        if self._count("MATCH (n:Node) RETURN count(*)") == 0:
            return self._bulk_nodes(nodes, batch_size)
        written = 0
        for batch in chunks(nodes, batch_size):
            rows = [node_row(node) for node in dedupe_nodes(batch)]
            self._write_nodes(rows)
            written += len(rows)
        return written

    def _bulk_nodes(self, nodes: Iterable[NodeRecord], batch_size: int) -> int:
        """Into an empty table: stream every batch into one CSV, then one COPY (repeats applied after)."""
        written, seen, late = 0, set(), {}
        with self._copy_csv("Node") as csv_rows:
            for batch in chunks(nodes, batch_size):
                rows = [node_row(node) for node in dedupe_nodes(batch)]
                for row in rows:
                    if row["id"] in seen:
                        late.pop(row["id"], None)
                        late[row["id"]] = row
                    else:
                        seen.add(row["id"])
                        csv_rows.add(_node_csv(row))
                written += len(rows)
        self._build_name_keys()  # from the copied nodes in one pass; the late repeats below keep it in step
        if late:
            self._write_nodes(list(late.values()))
        return written

    def _write_nodes(self, rows: list[dict[str, Any]]) -> None:
        """Replace the stored rows that changed, create the new ones."""
        found = self._run(f"UNWIND $ids AS x MATCH (n:Node {{id: x}}) RETURN n.id, {_STORED}", {"ids": [r["id"] for r in rows]})
        stored = {row[0]: list(row[1:]) for row in found}
        changed = [r for r in rows if r["id"] in stored and [r[f] for f in _STORED_FIELDS] != stored[r["id"]]]
        new = [r for r in rows if r["id"] not in stored]
        keys_at = _STORED_FIELDS.index("keys")
        self._write_keys({r["id"]: list(stored[r["id"]][keys_at] or []) for r in changed},
                         {r["id"]: r["keys"] for r in changed + new})
        if changed:
            self._run(
                "UNWIND $rows AS row MATCH (n:Node {id: row.id}) SET n.label = row.label, n.name = row.name, "
                "n.keys = row.keys, n.synonyms = row.synonyms, n.xrefs = row.xrefs, "
                "n.sources = row.sources, n.props = row.props",
                {"rows": changed},
            )
        if len(new) >= self.node_copy_threshold:
            with self._copy_csv("Node") as csv_rows:
                for row in new:
                    csv_rows.add(_node_csv(row))
        elif new:
            self._run(
                "UNWIND $rows AS row CREATE (n:Node {id: row.id, label: row.label, name: row.name, "
                "keys: row.keys, synonyms: row.synonyms, xrefs: row.xrefs, sources: row.sources, props: row.props})",
                {"rows": new},
            )

    def _write_keys(self, old: dict[str, list[str]], new: dict[str, list[str]]) -> None:
        """Keep the name key table in step with nodes whose keys change from ``old`` to ``new``."""
        drop, add = key_changes(old, new)
        touched = unique([*drop, *add])
        if not touched:
            return
        current = {key: list(ids or []) for key, ids in self._run(KEY_LOOKUP, {"keys": touched})}
        rows = apply_key_changes(current, drop, add)
        if rows:
            self._run(f"UNWIND $rows AS row MERGE (k:{KEY_TABLE} {{key: row.key}}) SET k.ids = row.ids", {"rows": rows})

    def load_edges(self, edges: Iterable[EdgeRecord], batch_size: int = 5000) -> int:
        if self._count("MATCH ()-[r:Edge]->() RETURN count(*)") == 0:
            return self._bulk_edges(edges, batch_size)
        written = 0
        for batch in chunks(edges, batch_size):
            kept = self._with_endpoints(merge_edges(batch).values())
            self._write_edges(kept)
            written += len(kept)
        return written

    def _with_endpoints(self, edges: Iterable[EdgeRecord]) -> list[EdgeRecord]:
        """The edges whose two endpoints are stored (one lookup query for the batch)."""
        edges = list(edges)
        ids = unique([i for e in edges for i in (e.source_id, e.target_id)])
        present = {r[0] for r in self._run("UNWIND $ids AS x MATCH (n:Node {id: x}) RETURN n.id", {"ids": ids})}
        return [e for e in edges if e.source_id in present and e.target_id in present]

    def _bulk_edges(self, edges: Iterable[EdgeRecord], batch_size: int) -> int:
        """Into an empty table: stream every batch into one CSV, then one COPY (repeats merged after)."""
        written, seen, late = 0, set(), []
        with self._copy_csv("Edge") as csv_rows:
            for batch in chunks(edges, batch_size):
                kept = self._with_endpoints(merge_edges(batch).values())
                for edge in kept:
                    if edge.key in seen:
                        late.append(edge)
                    else:
                        seen.add(edge.key)
                        csv_rows.add(_edge_csv(edge_row(edge)))
                written += len(kept)
        if late:
            self._write_edges(list(merge_edges(late).values()))
        return written

    def _write_edges(self, kept: list[EdgeRecord]) -> None:
        """Merge into the stored edges that exist, create the others (endpoints already checked)."""
        if not kept:
            return
        found = self._run(
            "UNWIND $rows AS row MATCH (a:Node {id: row.s}) MATCH (b:Node {id: row.t}) "
            "MATCH (a)-[r:Edge]->(b) WHERE r.type = row.type RETURN row.s, row.type, row.t, r.sources, r.props",
            {"rows": [{"s": e.source_id, "t": e.target_id, "type": e.type} for e in kept]},
        )
        old = {f"{s}|{t}|{o}": (sources, props) for s, t, o, sources, props in found}
        updates = [
            row
            for e in kept
            if e.key in old
            if (row := merged_row(e, *old[e.key]))["sources"] != old[e.key][0] or row["props"] != old[e.key][1]
        ]
        new = [edge_row(e) for e in kept if e.key not in old]
        if updates:
            self._run(
                "UNWIND $rows AS row MATCH (a:Node {id: row.s}) MATCH (b:Node {id: row.t}) "
                "MATCH (a)-[r:Edge]->(b) WHERE r.type = row.type SET r.sources = row.sources, r.props = row.props",
                {"rows": updates},
            )
        if len(new) >= self.edge_copy_threshold:
            with self._copy_csv("Edge") as csv_rows:
                for row in new:
                    csv_rows.add(_edge_csv(row))
        elif new:
            self._run(
                "UNWIND $rows AS row MATCH (a:Node {id: row.s}) MATCH (b:Node {id: row.t}) "
                "CREATE (a)-[:Edge {type: row.type, sources: row.sources, props: row.props}]->(b)",
                {"rows": new},
            )

    # --- lookups --------------------------------------------------------------------------------

    def get_nodes(self, ids: Sequence[str]) -> list[NodeRecord]:
        wanted = unique(list(ids))
        rows = self._run(ID_LOOKUP, {"ids": wanted}) if wanted else []
        return in_order(wanted, [node_from_row(row) for row in rows])

    def _ids_by_key(self, keys: list[str]) -> dict[str, list[str]]:
        try:
            return {key: list(ids or []) for key, ids in self._run(KEY_LOOKUP, {"keys": keys})}
        except GraphStoreError:
            if missing := self.missing_indexes():
                raise GraphStoreError(f"cannot look up names in the graph at {self.path}: missing {missing[0]}") from None
            raise

    def iter_names(self, labels: Sequence[str] | None = None) -> Iterator[tuple[str, str, str, list[str]]]:
        label_filter = check_labels(labels)
        query, params = "MATCH (n:Node) RETURN n.id, n.label, n.name, n.synonyms", {}
        if label_filter is not None:
            query = "MATCH (n:Node) WHERE list_contains($labels, n.label) RETURN n.id, n.label, n.name, n.synonyms"
            params = {"labels": label_filter}
        try:
            result = self._conn.execute(query, params)
            while result.has_next():
                node_id, label, name, synonyms = result.get_next()
                yield node_id, label, name, list(synonyms or [])
            result.close()
        except RuntimeError as exc:
            raise GraphStoreError(f"LadybugDB query failed at {self.path}: {exc}") from exc

    def iter_edges(self, batch_size: int = 5000, edge_types: Sequence[str] | None = None) -> Iterator[list[EdgeView]]:
        """Every edge of the graph (of ``edge_types`` only, when given), in batches of at most ``batch_size``
        (streamed; properties not read).

        For work over the whole graph (``kgrag build-edge-vectors``, the is-a hierarchy): each view has its
        endpoints, type and sources, enough for :func:`kgrag.graph.schema.edge_sentence`.
        """
        check_batch_size(batch_size)
        types = check_edge_types(edge_types)
        query = ("MATCH (a:Node)-[r:Edge]->(b:Node)" + (TYPE_FILTER if types is not None else "") +
                 " RETURN a.id, a.label, a.name, r.type, b.id, b.label, b.name, r.sources")
        try:
            result = self._conn.execute(query, {"types": types} if types is not None else {})
            batch: list[EdgeView] = []
            while result.has_next():
                ai, al, an, edge_type, bi, bl, bn, sources = result.get_next()
                batch.append(edge_view((ai, al, an), edge_type, (bi, bl, bn), sources, None))
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
            result.close()
        except RuntimeError as exc:
            raise GraphStoreError(f"LadybugDB query failed at {self.path}: {exc}") from exc
        if batch:
            yield batch

    def _fetch_neighbourhood(self, seeds: list[str], types: list[str] | None, limit: int | None) -> list[EdgeView]:
        """One primary-key lookup per seed, then its adjacency lists: cost grows with the seeds' degree, not the graph."""
        query = SEED_EDGES.format(where=TYPE_FILTER if types is not None else "")
        params: dict[str, Any] = {"types": types} if types is not None else {}
        refs = self._node_refs(seeds)
        views: list[EdgeView] = []
        for seed_id in seeds:
            if seed_id not in refs:
                continue
            rows = self._first(query, {**params, "id": seed_id}, limit)
            views.extend(directed_views(refs[seed_id], rows))
        return dedupe_views(views)

    def _fetch_edges_between(self, a: list[str], b: list[str]) -> list[EdgeView]:
        """Edges joining a node of ``a`` to a node of ``b``: for each node of the shorter list (a
        primary-key lookup), its edges to any node of the other (the evidence checker joins hundreds of subtypes to
        a batch's few dozen option nodes: one query per option node, not per subtype)."""
        if len(b) < len(a):
            a, b = b, a
        refs = self._node_refs(a)
        views = []
        for node_id in a:
            if node_id in refs:
                views.extend(directed_views(refs[node_id], self._run(PAIR_EDGES, {"id": node_id, "b": b})))
        return dedupe_views(views)
