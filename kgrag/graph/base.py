"""The GraphStore interface. One module per backend beside this file; `open_graph_store` picks one by URI."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from kgrag.graph.rows import check_edge_types, check_labels, dedupe_views, normalise_keys, unique
from kgrag.graph.schema import BuildMarker, EdgeRecord, EdgeView, GraphSchema, NodeRecord

S = TypeVar("S", bound="GraphStoreBase")


@runtime_checkable
class GraphStore(Protocol):
    """A SPOKE-style property graph. Every method is one round-trip for the whole batch it is given.

    Contract (tests/graph/test_contract.py runs the same tests on every backend):

    - ``load_nodes``/``load_edges`` write in batches of ``batch_size`` and return how many were
      written; loading the same node id twice updates it (idempotent); an edge whose endpoint is
      missing is not written and is counted in the return value's complement (the caller reports it).
    - ``find_by_name`` matches names and synonyms case- and punctuation-insensitively (the caller
      passes keys normalised by :func:`kgrag.text.normalise`), returning every match per key.
    - ``neighbourhood`` returns the one-hop edges of the given nodes, both directions, optionally
      restricted to ``edge_types``, at most ``limit_per_node`` per seed node, in one call (one
      round-trip on a server; the embedded store runs one primary-key query per seed in-process).
    - ``edges_between`` returns the edges joining any node of ``ids_a`` to any of ``ids_b``.
    - ``remembering()``: a block of reads in which the complete one-hop neighbourhoods already fetched answer
      later ``neighbourhood`` and ``edges_between`` calls about those nodes without a query (the pipeline opens
      one per batch).
    - ``iter_edges`` streams every edge once, in batches, optionally of some edge types only
      (``kgrag build-edge-vectors`` reads them all; :class:`kgrag.graph.ontology.Ontology` the is-a edges).
    - ``get_nodes``, ``find_by_name``, ``neighbourhood`` and ``edges_between`` find their nodes
      through an index or key table, never a scan of the nodes (``missing_indexes`` says when a
      graph lacks one; the plans are checked by the contract tests).
    - All user values travel as query parameters.
    - ``read_marker``/``write_marker`` keep one :class:`BuildMarker` in the store, outside the
      graph: ``schema()`` and the lookups never count or return it (kgrag/graph/serving.py reads it).
    """

    backend: str
    location: str  # the graph's file or redacted URI, for messages
    path: Path | None  # the embedded store's file (its manifest lies beside it); None for a server's graph

    def create_schema(self) -> None: ...

    def load_nodes(self, nodes: Iterable[NodeRecord], batch_size: int = 5000) -> int: ...

    def load_edges(self, edges: Iterable[EdgeRecord], batch_size: int = 5000) -> int: ...

    def get_nodes(self, ids: Sequence[str]) -> list[NodeRecord]: ...

    def find_by_name(self, keys: Sequence[str], labels: Sequence[str] | None = None) -> dict[str, list[NodeRecord]]: ...

    def iter_names(self, labels: Sequence[str] | None = None) -> Iterable[tuple[str, str, str, list[str]]]:
        """Yield (id, label, name, synonyms) for every node (for the linking dictionary)."""
        ...

    def neighbourhood(
        self,
        node_ids: Sequence[str],
        edge_types: Sequence[str] | None = None,
        limit_per_node: int | None = None,
    ) -> list[EdgeView]: ...

    def edges_between(self, ids_a: Sequence[str], ids_b: Sequence[str]) -> list[EdgeView]: ...

    def remembering(self) -> AbstractContextManager[None]:
        """A block of reads in which fetched one-hop neighbourhoods answer later reads about their nodes."""
        ...

    def iter_edges(self, batch_size: int = 5000, edge_types: Sequence[str] | None = None) -> Iterator[list[EdgeView]]:
        """Every edge (of ``edge_types`` only, when given), streamed in batches (endpoints, type, sources; no
        properties): for whole-graph builds and the is-a hierarchy."""
        ...

    def schema(self) -> GraphSchema: ...

    def missing_indexes(self) -> list[str]:
        """The lookup indexes or key tables this graph lacks (one that predates them), each with its fix; [] when none."""
        ...

    def query_plan(self, query: str, parameters: dict[str, Any] | None = None) -> str:
        """The plan the backend reports for a read query (EXPLAIN/PROFILE), as text: for checking index use."""
        ...

    def clear(self) -> None: ...

    def read_marker(self) -> BuildMarker | None: ...

    def write_marker(self, marker: BuildMarker) -> None: ...

    def close(self) -> None: ...


class GraphStoreBase(ABC):
    """What both backends share: argument checks, name lookup through the key table, ``schema()``,
    counting and the context manager. A backend supplies the queries (:meth:`_rows`), the two
    schema queries, and the indexed lookups (:meth:`_ids_by_key`, :meth:`get_nodes`).

    Name lookup never scans the nodes: each normalised name or synonym is a key of the name key
    table (``NameKey``: key -> node ids, unique on key, indexed in both stores), so
    :meth:`find_by_name` is one indexed lookup of the keys and one of the ids, whatever the graph's size.
    """

    backend: str
    location: str
    path: Path | None = None  # the embedded store's file; None for a server's graph
    # Two queries returning (label, count) and (edge type, count) rows.
    _NODE_COUNTS: str
    _EDGE_COUNTS: str

    @abstractmethod
    def _rows(self, query: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        """Run one read query with parameters; rows as lists (GraphStoreError on failure)."""

    @abstractmethod
    def _ids_by_key(self, keys: list[str]) -> dict[str, list[str]]:
        """Normalised key -> ids of the nodes that have it as name or synonym (indexed; keys not found left out)."""

    @abstractmethod
    def get_nodes(self, ids: Sequence[str]) -> list[NodeRecord]: ...

    @abstractmethod
    def _fetch_neighbourhood(self, seeds: list[str], types: list[str] | None, limit: int | None) -> list[EdgeView]:
        """``neighbourhood`` of checked arguments (unique seeds, checked types), from the database."""

    @abstractmethod
    def _fetch_edges_between(self, a: list[str], b: list[str]) -> list[EdgeView]:
        """``edges_between`` of two non-empty lists of unique ids, from the database."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, query: str, parameters: dict[str, Any] | None = None) -> int:
        return int(self._rows(query, parameters)[0][0])

    def schema(self) -> GraphSchema:
        nodes = self._rows(self._NODE_COUNTS)
        edges = self._rows(self._EDGE_COUNTS)
        return GraphSchema(
            backend=self.backend,
            node_counts={label: int(count) for label, count in sorted(nodes)},
            edge_counts={edge_type: int(count) for edge_type, count in sorted(edges)},
        )

    # --- one-hop reads, and what a batch remembers of them -------------------------------------
    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Within the block (on this thread), each node whose whole one-hop neighbourhood was fetched (no type
        filter, fewer edges than the limit) is remembered, and later ``neighbourhood`` and ``edges_between`` calls
        about it are answered from what was fetched instead of asking the database again.

        A batch of MCQs fetches its diseases' neighbourhoods, then asks for the edges joining them to the options
        (the graph context) and again to decide the answer (the evidence checker): both are answered from the
        fetched neighbourhoods. For reads of a graph that does not change meanwhile; nested blocks share one memory,
        which ends with the outermost.
        """
        local = self.__dict__.setdefault("_remembered", threading.local())
        outer = getattr(local, "fetched", None)
        if outer is None:
            local.fetched = FetchedNeighbourhoods()
        try:
            yield
        finally:
            if outer is None:
                local.fetched = None

    def _fetched(self) -> "FetchedNeighbourhoods | None":
        """The neighbourhoods remembered in a ``remembering`` block on this thread; None outside one."""
        local = self.__dict__.get("_remembered")
        return getattr(local, "fetched", None) if local is not None else None

    def neighbourhood(self, node_ids: Sequence[str], edge_types: Sequence[str] | None = None,
                      limit_per_node: int | None = None) -> list[EdgeView]:
        """The one-hop edges of ``node_ids``, both directions (see :class:`GraphStore`)."""
        args = neighbourhood_args(node_ids, edge_types, limit_per_node)
        if args is None:
            return []
        seeds, types = args
        known = self._fetched()
        if known is None:
            return self._fetch_neighbourhood(seeds, types, limit_per_node)
        asked = [s for s in seeds if s not in known.edges]
        fetched = self._fetch_neighbourhood(asked, types, limit_per_node) if asked else []
        by_seed = known.add(fetched, asked, whole=types is None, limit=limit_per_node)
        views: list[EdgeView] = []
        wanted = set(types) if types is not None else None
        for seed in seeds:
            if seed in by_seed:
                views.extend(by_seed[seed])
            else:
                edges = [e for e in known.edges[seed] if wanted is None or e.type in wanted]
                views.extend(edges[:limit_per_node] if limit_per_node is not None else edges)
        return dedupe_views(views)

    def edges_between(self, ids_a: Sequence[str], ids_b: Sequence[str]) -> list[EdgeView]:
        """The edges joining a node of ``ids_a`` to a node of ``ids_b``, either direction."""
        a, b = unique(list(ids_a)), unique(list(ids_b))
        if not a or not b:
            return []
        known = self._fetched()
        if known is None:
            return self._fetch_edges_between(a, b)
        # an edge joins a remembered node of one side to the other side, or two nodes neither side remembers
        views = [e for side, other in ((a, b), (b, a)) for x in side if x in known.edges
                 for y in other for e in known.by_far_end[x].get(y, ())]
        rest_a, rest_b = [x for x in a if x not in known.edges], [y for y in b if y not in known.edges]
        if rest_a and rest_b:
            views.extend(self._fetch_edges_between(rest_a, rest_b))
        return dedupe_views(views)

    def find_by_name(self, keys: Sequence[str], labels: Sequence[str] | None = None) -> dict[str, list[NodeRecord]]:
        """Every node whose normalised name or synonym equals each key's normalised form (two indexed lookups)."""
        wanted = normalise_keys(keys)
        label_filter = check_labels(labels)
        lookup = unique([k for k in wanted.values() if k])
        ids_by_key = self._ids_by_key(lookup) if lookup and label_filter != [] else {}
        nodes = {n.id: n for n in self.get_nodes(unique([i for ids in ids_by_key.values() for i in ids]))}
        allowed = set(label_filter) if label_filter is not None else None
        found = {
            key: [nodes[i] for i in ids if i in nodes and (allowed is None or nodes[i].label in allowed)]
            for key, ids in ids_by_key.items()
        }
        return {key: list(found.get(norm, [])) for key, norm in wanted.items()}


class FetchedNeighbourhoods:
    """The whole one-hop neighbourhoods fetched in a ``remembering`` block: each node's edges, in the order fetched,
    and the same by the node at their far end (a loop's far end is the node itself)."""

    def __init__(self) -> None:
        self.edges: dict[str, list[EdgeView]] = {}
        self.by_far_end: dict[str, dict[str, list[EdgeView]]] = {}

    def add(self, fetched: Sequence[EdgeView], seeds: Sequence[str], *, whole: bool, limit: int | None
            ) -> dict[str, list[EdgeView]]:
        """Each seed's edges among ``fetched`` (an edge joining two seeds is in both lists); those of a ``whole``
        fetch (no type filter) with fewer edges than ``limit`` (the limit did not cut them) are remembered."""
        by_seed: dict[str, list[EdgeView]] = {s: [] for s in seeds}
        far: dict[str, dict[str, list[EdgeView]]] = {s: {} for s in seeds}
        for edge in fetched:
            source, target = edge.source.id, edge.target.id
            if source in by_seed:
                by_seed[source].append(edge)
                far[source].setdefault(target, []).append(edge)
            if target != source and target in by_seed:
                by_seed[target].append(edge)
                far[target].setdefault(source, []).append(edge)
        if whole:
            for seed, edges in by_seed.items():
                if limit is None or len(edges) < limit:
                    self.edges[seed], self.by_far_end[seed] = edges, far[seed]
        return by_seed


def neighbourhood_args(
    node_ids: Sequence[str], edge_types: Sequence[str] | None, limit_per_node: int | None
) -> tuple[list[str], list[str] | None] | None:
    """Checked arguments of ``neighbourhood``: (unique seeds, edge types), or None when the answer is empty."""
    types = check_edge_types(edge_types)
    if limit_per_node is not None and limit_per_node < 0:
        raise ValueError(f"limit_per_node must be >= 0, got {limit_per_node}")
    seeds = unique(list(node_ids))
    if not seeds or types == [] or limit_per_node == 0:
        return None
    return seeds, types


def check_batch_size(batch_size: int) -> int:
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    return batch_size


def key_changes(old: dict[str, list[str]], new: dict[str, list[str]]) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Name-key edits for nodes whose keys go from ``old[id]`` to ``new[id]``: (key -> ids to drop, key -> ids to add)."""
    drop: dict[str, set[str]] = {}
    add: dict[str, list[str]] = {}
    for node_id, keys in old.items():
        kept = set(new.get(node_id, []))
        for key in keys:
            if key not in kept:
                drop.setdefault(key, set()).add(node_id)
    for node_id, keys in new.items():
        had = set(old.get(node_id, []))
        for key in keys:  # in the node's order: stored id lists come out the same on every run
            if key not in had:
                add.setdefault(key, []).append(node_id)
    return drop, add


def apply_key_changes(current: dict[str, list[str]], drop: dict[str, set[str]], add: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The key-table rows to write: each touched key's ids after dropping and adding (``current`` = stored ids)."""
    rows = []
    for key in unique([*drop, *add]):
        before = current.get(key, [])
        after = unique([i for i in before if i not in drop.get(key, set())] + add.get(key, []))
        if after != before:
            rows.append({"key": key, "ids": after})
    return rows
