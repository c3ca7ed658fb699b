"""The GraphStore interface. One module per backend beside this file; `open_graph_store` picks one by URI."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from kgrag.graph.schema import BuildMarker, EdgeRecord, EdgeView, GraphSchema, NodeRecord


@runtime_checkable
class GraphStore(Protocol):
    """A SPOKE-style property graph. Every method is one round-trip for the whole batch it is given.

    Contract (tests/test_graph_contract.py runs the same tests on every backend):

    - ``load_nodes``/``load_edges`` write in batches of ``batch_size`` and return how many were
      written; loading the same node id twice updates it (idempotent); an edge whose endpoint is
      missing is not written and is counted in the return value's complement (the caller reports it).
    - ``find_by_name`` matches names and synonyms case- and punctuation-insensitively (the caller
      passes keys normalised by :func:`kgrag.text.normalise`), returning every match per key.
    - ``neighbourhood`` returns the one-hop edges of the given nodes, both directions, optionally
      restricted to ``edge_types``, at most ``limit_per_node`` per seed node, in one query.
    - ``edges_between`` returns the edges joining any node of ``ids_a`` to any of ``ids_b``.
    - ``iter_edges`` streams every edge once, in batches (``kgrag build-edge-vectors`` reads it).
    - All user values travel as query parameters.
    - ``read_marker``/``write_marker`` keep one :class:`BuildMarker` in the store, outside the
      graph: ``schema()`` and the lookups never count or return it (kgrag/graph/serving.py reads it).
    """

    backend: str
    location: str  # the graph's file or redacted URI, for messages

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

    def iter_edges(self, batch_size: int = 5000) -> Iterator[list[EdgeView]]:
        """Every edge, streamed in batches (endpoints, type, sources; no properties): for whole-graph builds."""
        ...

    def schema(self) -> GraphSchema: ...

    def clear(self) -> None: ...

    def read_marker(self) -> BuildMarker | None: ...

    def write_marker(self, marker: BuildMarker) -> None: ...

    def close(self) -> None: ...
