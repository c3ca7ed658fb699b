"""The server graph store: Neo4j (or any Bolt server speaking Neo4j 5 Cypher) through the official driver.

Model: every node has the common label ``:Entity`` (unique ``id``, the lookup path) plus its schema
label (``:Disease``, ``:Gene``, ...); properties ``id, label, name, keys, synonyms, xrefs, sources,
props`` where ``props`` is the JSON of ``properties`` and ``keys`` the normalised name and synonyms.
A relationship's type is the edge type; it carries ``sources`` and ``props``.

Lookups go through indexes: ids through the unique constraint on ``:Entity(id)``; names through
key nodes ``(:NameKey {key, ids})`` (normalised name or synonym -> node ids, unique on ``key``),
kept in step with every node write in the same transaction. A graph loaded before the key nodes
existed gets them on its next load; until then :meth:`Neo4jGraphStore.missing_indexes` names the
gap and readers refuse the graph (kgrag/graph/serving.py).

Writes are batched ``UNWIND $rows`` in one transaction per batch; labels and relationship types
are schema identifiers (validated, grouped in Python) and the only text put into a query;
everything else is a parameter. Loading a node id again replaces its fields; a duplicate edge
(same source, type, target) is merged: sources united, properties updated (new values win). Edges
whose endpoint is missing are not written. Queries return properties and scalars, never node
objects, and keep to the Cypher that Neo4j 5 and ArcadeDB share. Reloading a node with another
label relabels it on Neo4j; ArcadeDB cannot change an existing vertex's labels (GraphStoreError).

Example::

    from pydantic import SecretStr
    from kgrag.graph.neo4j_store import Neo4jGraphStore
    store = Neo4jGraphStore("bolt://127.0.0.1:7687", user="neo4j", password=SecretStr("..."))
    store.schema().edge_counts
    store.close()
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from neo4j import GraphDatabase, ManagedTransaction
from neo4j.exceptions import AuthError, ClientError, DriverError, Neo4jError
from pydantic import SecretStr

from kgrag.errors import GraphStoreError
from kgrag.settings import mask_text
from kgrag.graph.base import GraphStoreBase, apply_key_changes, check_batch_size, key_changes
from kgrag.graph.rows import (
    NODE_FIELDS,
    check_edge_types,
    check_labels,
    chunks,
    dedupe_nodes,
    dedupe_views,
    edge_row,
    edge_view,
    in_order,
    merge_edges,
    merged_row,
    node_from_row,
    node_row,
    unique,
)
from kgrag.graph.schema import BuildMarker, EdgeRecord, EdgeView, NodeRecord, check_identifier

ENTITY = "Entity"
# The build marker (kgrag.graph.schema.BuildMarker as JSON) is one node with this label and no :Entity,
# so schema() and every reader query, which all match :Entity, never see it.
MARKER_LABEL = "KgragBuild"
# Name key nodes: normalised name or synonym -> ids of the nodes that have it (no :Entity label).
KEY_LABEL = "NameKey"
_N = ", ".join(f"n.{field}" for field in NODE_FIELDS)
SCHEMA_STATEMENTS = (
    f"CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (n:{ENTITY}) REQUIRE n.id IS UNIQUE",
    f"CREATE INDEX entity_label IF NOT EXISTS FOR (n:{ENTITY}) ON (n.label)",
    f"CREATE CONSTRAINT name_key IF NOT EXISTS FOR (k:{KEY_LABEL}) REQUIRE k.key IS UNIQUE",
)
# The indexed lookups (tests/graph/test_contract.py checks that their plans use the indexes).
ID_LOOKUP = f"UNWIND $ids AS x MATCH (n:{ENTITY} {{id: x}}) RETURN {_N}"
KEY_LOOKUP = f"UNWIND $keys AS x MATCH (k:{KEY_LABEL} {{key: x}}) RETURN k.key, k.ids"
SEED_EDGES = (
    f"UNWIND $ids AS sid MATCH (s:{ENTITY} {{{{id: sid}}}})-[r]-(o:{ENTITY}){{where}} "
    "WITH s, collect({{oid: o.id, olabel: o.label, oname: o.name, type: type(r), out: startNode(r) = s, "
    "sources: r.sources, props: r.props}}) AS es RETURN s.id, s.label, s.name, {edges}"
)
TYPE_FILTER = " WHERE type(r) IN $types"
PAIR_EDGES = (
    f"UNWIND $a AS aid MATCH (x:{ENTITY} {{id: aid}})-[r]-(y:{ENTITY}) WHERE y.id IN $b "
    "WITH startNode(r) = x AS out, x, y, r "
    "RETURN out, x.id, x.label, x.name, type(r), y.id, y.label, y.name, r.sources, r.props"
)
_KEY_WRITE = f"UNWIND $rows AS row MERGE (k:{KEY_LABEL} {{key: row.key}}) SET k.ids = row.ids"
T = TypeVar("T")


def redact_uri(uri: str) -> str:
    """The URI without any user:password part."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Neo4jGraphStore(GraphStoreBase):
    """GraphStore over Bolt (Neo4j 5, Aura, or a Bolt-speaking server such as ArcadeDB).

    Example::

        store = Neo4jGraphStore("neo4j://localhost:7687", user="neo4j", password=SecretStr("pw"), database="neo4j")
        store.neighbourhood(["DOID:8893"], edge_types=["ASSOCIATES_DaG"], limit_per_node=100)

    ``schema_warnings`` lists the DDL statements the server refused (ArcadeDB lacks some).
    """

    backend = "neo4j"
    _NODE_COUNTS = f"MATCH (n:{ENTITY}) RETURN n.label, count(*)"
    _EDGE_COUNTS = f"MATCH (:{ENTITY})-[r]->(:{ENTITY}) RETURN type(r), count(*)"

    def __init__(
        self,
        uri: str,
        *,
        user: str = "neo4j",
        password: SecretStr | str = "neo4j",
        database: str | None = None,
        connection_timeout_s: float = 10.0,
    ) -> None:
        self.uri = redact_uri(uri)
        self.location = self.uri + (f" (database {database})" if database else "")
        self.database = database
        self.schema_warnings: list[str] = []
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        self._secret = secret.get_secret_value()
        self._hidden = [text for text in (self._secret, urlsplit(uri).password) if text]
        try:
            self._driver = GraphDatabase.driver(
                uri,
                auth=(user, self._secret),
                connection_timeout=connection_timeout_s,
                max_transaction_retry_time=connection_timeout_s,
            )
            self._driver.verify_connectivity()
        except (Neo4jError, DriverError, ValueError, OSError) as exc:
            driver = getattr(self, "_driver", None)
            if driver is not None:
                driver.close()
            raise self._error("cannot connect", exc) from None
        self.create_schema()

    # --- plumbing -------------------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> GraphStoreError:
        # str(exc): the driver's own words (its GQL .message can be a bare "50N42: Unexpected error ...")
        message = str(exc) or str(getattr(exc, "message", None) or "no detail")
        hint = ("; check that the server runs at that address and KGRAG_GRAPH_URI, KGRAG_GRAPH_USER and "
                "KGRAG_GRAPH_PASSWORD (credentials go there, not in the URI)") if what == "cannot connect" else ""
        return GraphStoreError(mask_text(f"{what} to the graph at {self.uri} ({type(exc).__name__}): {message.rstrip('. ')}{hint}",
                                         self._hidden))

    def _read(self, query: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        try:
            records, _, _ = self._driver.execute_query(query, parameters or {}, database_=self.database, routing_="r")
        except (Neo4jError, DriverError) as exc:
            raise self._error("query failed", exc) from None
        return [record.values() for record in records]

    _rows = _read

    def query_plan(self, query: str, parameters: dict[str, Any] | None = None) -> str:
        """The plan the server reports for a read query (``PROFILE``: ArcadeDB names the index it used only there)."""
        try:
            _, summary, _ = self._driver.execute_query(f"PROFILE {query}", parameters or {}, database_=self.database,
                                                      routing_="r")
        except (Neo4jError, DriverError) as exc:
            raise self._error("query failed", exc) from None
        plan = summary.profile or summary.plan or {}
        # ArcadeDB puts its plan in one string; Neo4j returns the operator tree.
        return str(plan.get("args", {}).get("string-representation") or plan)

    def _write(self, work: Callable[[ManagedTransaction], T]) -> T:
        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_write(work)
        except (Neo4jError, DriverError) as exc:
            raise self._error("write failed", exc) from None

    # --- schema ---------------------------------------------------------------------------------

    def create_schema(self) -> None:
        for statement in SCHEMA_STATEMENTS:
            try:
                self._driver.execute_query(statement, database_=self.database)
            except ClientError as exc:
                if isinstance(exc, AuthError):
                    raise self._error("schema creation failed", exc) from None
                # A server without this DDL (ArcadeDB lacks some): record it and go on.
                self.schema_warnings.append(f"{statement}: {exc.code}")
            except (Neo4jError, DriverError) as exc:
                raise self._error("schema creation failed", exc) from None

    def clear(self) -> None:
        for label in (ENTITY, KEY_LABEL):
            def work(tx: ManagedTransaction, label: str = label) -> int:
                return tx.run(f"MATCH (n:{label}) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*)").single(strict=True)[0]

            while self._write(work):
                pass

    def missing_indexes(self) -> list[str]:
        """The lookup structures this graph lacks, each with the fix (empty when lookups are indexed)."""
        missing = [f"the index or constraint of `{w}` (the server refused it; lookups would scan)"
                   for w in self.schema_warnings if "entity_id" in w or "name_key" in w]
        if self._read(f"MATCH (n:{ENTITY}) RETURN n.id LIMIT 1") and not self._read(f"MATCH (k:{KEY_LABEL}) RETURN k.key LIMIT 1"):
            missing.append(f"name key nodes (:{KEY_LABEL}; the graph was loaded before they existed): load into it "
                           "once, e.g. `kgrag build-graph` (they are added from the nodes), or rebuild with "
                           "`kgrag build-graph --clear`")
        return missing

    def close(self) -> None:
        self._driver.close()

    # --- build marker ---------------------------------------------------------------------------

    def read_marker(self) -> BuildMarker | None:
        """The build marker, or None for a graph no kgrag build has marked (e.g. a production SPOKE)."""
        rows = self._read(f"MATCH (b:{MARKER_LABEL}) WHERE b.id = $id RETURN b.marker", {"id": "graph"})
        return BuildMarker.model_validate_json(rows[0][0]) if rows else None

    def write_marker(self, marker: BuildMarker) -> None:
        """Store ``marker`` (replacing the previous one), in its own transaction."""
        def work(tx: ManagedTransaction) -> None:
            tx.run(f"MERGE (b:{MARKER_LABEL} {{id: $id}}) SET b.marker = $marker",
                   id="graph", marker=marker.model_dump_json()).consume()

        self._write(work)

    # --- loading --------------------------------------------------------------------------------

    def load_nodes(self, nodes: Iterable[NodeRecord], batch_size: int = 5000) -> int:
        written = 0
        # Into an empty graph, only ids of earlier batches of this call can exist already.
        seen: set[str] | None = set() if self._count(f"MATCH (n:{ENTITY}) RETURN count(n)") == 0 else None
        if seen is None and not self._read(f"MATCH (k:{KEY_LABEL}) RETURN k.key LIMIT 1"):
            self._backfill_name_keys()
        for batch in chunks(nodes, batch_size):
            rows = [node_row(node) for node in dedupe_nodes(batch)]
            ask = [r["id"] for r in rows if seen is None or r["id"] in seen]
            self._write(lambda tx, rows=rows, ask=ask: self._write_nodes(tx, rows, ask))
            if seen is not None:
                seen.update(r["id"] for r in rows)
            written += len(rows)
        return written

    def _backfill_name_keys(self) -> None:
        """Add the name key nodes of a graph loaded before they existed (one transaction: all or none)."""
        keys: dict[str, list[str]] = defaultdict(list)
        try:
            with self._driver.session(database=self.database, default_access_mode="READ") as session:
                for node_id, node_keys in session.run(f"MATCH (n:{ENTITY}) RETURN n.id, n.keys"):
                    for key in node_keys or []:
                        keys[key].append(node_id)
        except (Neo4jError, DriverError) as exc:
            raise self._error("query failed", exc) from None
        rows = [{"key": key, "ids": ids} for key, ids in keys.items()]

        def work(tx: ManagedTransaction) -> None:
            for batch in chunks(rows, 5000):
                tx.run(_KEY_WRITE, rows=batch).consume()

        self._write(work)

    @staticmethod
    def _write_keys(tx: ManagedTransaction, old: dict[str, list[str]], new: dict[str, list[str]]) -> None:
        """Keep the name key nodes in step with nodes whose keys change from ``old`` to ``new``."""
        drop, add = key_changes(old, new)
        touched = unique([*drop, *add])
        if touched:
            current = {key: list(ids or []) for key, ids in (r.values() for r in tx.run(KEY_LOOKUP, keys=touched))}
            if rows := apply_key_changes(current, drop, add):
                tx.run(_KEY_WRITE, rows=rows).consume()

    @staticmethod
    def _write_nodes(tx: ManagedTransaction, rows: list[dict[str, Any]], ask: list[str]) -> None:
        existing: dict[str, str] = {}
        old_keys: dict[str, list[str]] = {}
        if ask:
            found = tx.run(f"UNWIND $ids AS x MATCH (n:{ENTITY} {{id: x}}) RETURN n.id, n.label, n.keys", ids=ask)
            for node_id, label, keys in (record.values() for record in found):
                existing[node_id], old_keys[node_id] = label, list(keys or [])
        Neo4jGraphStore._write_keys(tx, old_keys, {r["id"]: r["keys"] for r in rows})
        old = [r for r in rows if r["id"] in existing]
        if old:
            tx.run(
                f"UNWIND $rows AS row MATCH (n:{ENTITY} {{id: row.id}}) SET n.label = row.label, n.name = row.name, "
                "n.keys = row.keys, n.synonyms = row.synonyms, n.xrefs = row.xrefs, n.sources = row.sources, "
                "n.props = row.props",
                rows=old,
            ).consume()
        relabel: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in old:
            if existing[r["id"]] != r["label"]:
                relabel[(existing[r["id"]], r["label"])].append(r["id"])
        for (before, after), ids in relabel.items():
            check_identifier("label", before)
            tx.run(f"UNWIND $ids AS x MATCH (n:{ENTITY} {{id: x}}) REMOVE n:{before} SET n:{after}", ids=ids).consume()
        by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            if r["id"] not in existing:
                by_label[r["label"]].append(r)
        for label, new in by_label.items():
            check_identifier("label", label)
            tx.run(
                f"UNWIND $rows AS row CREATE (n:{ENTITY}:{label} {{id: row.id, label: row.label, name: row.name, "
                "keys: row.keys, synonyms: row.synonyms, xrefs: row.xrefs, sources: row.sources, props: row.props})",
                rows=new,
            ).consume()

    def load_edges(self, edges: Iterable[EdgeRecord], batch_size: int = 5000) -> int:
        written = 0
        # Into a graph without edges, only edges of earlier batches of this call can exist already.
        seen: set[str] | None = set() if self._count(f"MATCH (:{ENTITY})-[r]->(:{ENTITY}) RETURN count(r)") == 0 else None
        for batch in chunks(edges, batch_size):
            merged = list(merge_edges(batch).values())
            ask = [e for e in merged if seen is None or e.key in seen]
            written += self._write(lambda tx, merged=merged, ask=ask: self._write_edges(tx, merged, ask))
            if seen is not None:
                seen.update(e.key for e in merged)
        return written

    @staticmethod
    def _write_edges(tx: ManagedTransaction, edges: list[EdgeRecord], ask: list[EdgeRecord]) -> int:
        old: dict[str, tuple[list[str], str]] = {}
        if ask:
            found = tx.run(
                f"UNWIND $rows AS row MATCH (a:{ENTITY} {{id: row.s}})-[r]->(b:{ENTITY} {{id: row.t}}) "
                "WHERE type(r) = row.type RETURN row.s, row.type, row.t, r.sources, r.props",
                rows=[{"s": e.source_id, "t": e.target_id, "type": e.type} for e in ask],
            )
            old = {f"{s}|{t}|{o}": (sources, props) for s, t, o, sources, props in (rec.values() for rec in found)}
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in edges:
            by_type[e.type].append(merged_row(e, *old[e.key]) if e.key in old else edge_row(e))
        written = 0
        for edge_type, rows in by_type.items():
            check_identifier("edge type", edge_type)
            result = tx.run(
                f"UNWIND $rows AS row MATCH (a:{ENTITY} {{id: row.s}}) MATCH (b:{ENTITY} {{id: row.t}}) "
                f"MERGE (a)-[r:{edge_type}]->(b) SET r.sources = row.sources, r.props = row.props RETURN count(r)",
                rows=rows,
            )
            written += int(result.single(strict=True)[0])
        return written

    # --- lookups --------------------------------------------------------------------------------

    def get_nodes(self, ids: Sequence[str]) -> list[NodeRecord]:
        wanted = unique(list(ids))
        rows = self._read(ID_LOOKUP, {"ids": wanted}) if wanted else []
        return in_order(wanted, [node_from_row(row) for row in rows])

    def _ids_by_key(self, keys: list[str]) -> dict[str, list[str]]:
        return {key: list(ids or []) for key, ids in self._read(KEY_LOOKUP, {"keys": keys})}

    def iter_names(self, labels: Sequence[str] | None = None) -> Iterator[tuple[str, str, str, list[str]]]:
        label_filter = check_labels(labels)
        where = " WHERE n.label IN $labels" if label_filter is not None else ""
        params = {"labels": label_filter} if label_filter is not None else {}
        try:
            with self._driver.session(database=self.database, default_access_mode="READ") as session:
                result = session.run(f"MATCH (n:{ENTITY}){where} RETURN n.id, n.label, n.name, n.synonyms", params)
                for node_id, label, name, synonyms in result:
                    yield node_id, label, name, list(synonyms or [])
        except (Neo4jError, DriverError) as exc:
            raise self._error("query failed", exc) from None

    def iter_edges(self, batch_size: int = 5000, edge_types: Sequence[str] | None = None) -> Iterator[list[EdgeView]]:
        """Every edge of the graph (of ``edge_types`` only, when given), in batches of at most ``batch_size``
        (streamed; properties not read)."""
        check_batch_size(batch_size)
        types = check_edge_types(edge_types)
        where = " WHERE type(r) IN $types" if types is not None else ""
        query = (f"MATCH (a:{ENTITY})-[r]->(b:{ENTITY}){where} "
                 "RETURN a.id, a.label, a.name, type(r), b.id, b.label, b.name, r.sources")
        batch: list[EdgeView] = []
        try:
            with self._driver.session(database=self.database, default_access_mode="READ",
                                      fetch_size=batch_size) as session:
                params = {"types": types} if types is not None else {}
                for ai, al, an, edge_type, bi, bl, bn, sources in session.run(query, params):
                    batch.append(edge_view((ai, al, an), edge_type, (bi, bl, bn), sources, None))
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
        except (Neo4jError, DriverError) as exc:
            raise self._error("query failed", exc) from None
        if batch:
            yield batch

    def _fetch_neighbourhood(self, seeds: list[str], types: list[str] | None, limit: int | None) -> list[EdgeView]:
        """One query for every seed: each seed's edges, both directions (at most ``limit`` each)."""
        where = TYPE_FILTER if types is not None else ""
        edges = "es[0..$limit]" if limit is not None else "es"
        query = SEED_EDGES.format(where=where, edges=edges)
        params: dict[str, Any] = {"ids": seeds}
        if types is not None:
            params["types"] = types
        if limit is not None:
            params["limit"] = limit
        per_seed: dict[str, list[EdgeView]] = {seed: [] for seed in seeds}
        for sid, slabel, sname, items in self._read(query, params):
            seed = (sid, slabel, sname)
            for it in items:
                other = (it["oid"], it["olabel"], it["oname"])
                source, target = (seed, other) if it["out"] else (other, seed)
                per_seed[sid].append(edge_view(source, it["type"], target, it["sources"], it["props"]))
        return dedupe_views(v for seed in seeds for v in per_seed[seed])

    def _fetch_edges_between(self, a: list[str], b: list[str]) -> list[EdgeView]:
        """One query: the edges joining a node of ``a`` to a node of ``b``."""
        views = []
        for out, xi, xl, xn, t, yi, yl, yn, sources, props in self._read(PAIR_EDGES, {"a": a, "b": b}):
            x, y = (xi, xl, xn), (yi, yl, yn)
            views.append(edge_view(x, t, y, sources, props) if out else edge_view(y, t, x, sources, props))
        return dedupe_views(views)
