"""Merge the records of many sources into one graph before it is written.

Nodes with the same id merge: the name of the best-ranked source wins (lower ``rank`` is better;
Disease Ontology ranks first for diseases), every other name becomes a synonym, synonyms, xrefs
and sources are unioned, properties keep the first value. Edges with the same
(source, type, target) merge: ``sources`` are unioned and each source's evidence properties (which
loaders prefix with the source, e.g. ``disgenet_score``, ``gwas_pvalue``) are kept side by side;
when one source gives the same property twice, p-values keep the minimum, other numbers the
maximum, lists are unioned and text keeps the first value. Every merged edge is yielded with its
evidence strength (``strength``, ``strength_basis``: :mod:`kgrag.graph.strength`) computed from the
merged sources and properties.

Example::

    acc = GraphAccumulator()
    acc.add_node(NodeRecord(id="DOID:9008", label="Disease", name="psoriatic arthritis"), rank=0)
    acc.add_edge(EdgeRecord(source_id="DOID:9008", type="ASSOCIATES_DaG", target_id="NCBIGene:3106",
                            sources=["GWAS"], properties={"gwas_pvalue": 1e-9}))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.graph.strength import strength_properties
from kgrag.text import normalise


@dataclass(slots=True)
class _Node:
    label: str
    name: str
    rank: int
    synonyms: dict[str, None] = field(default_factory=dict)
    xrefs: dict[str, None] = field(default_factory=dict)
    sources: dict[str, None] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


def merge_property(old: Any, new: Any, key: str) -> Any:
    """Combine two values of one evidence property (see the module docstring)."""
    if isinstance(old, list) and isinstance(new, list):
        return old + [v for v in new if v not in old]
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        return min(old, new) if "pvalue" in key else max(old, new)
    return old


class GraphAccumulator:
    """In-memory merge of nodes and edges keyed by id; yields :class:`NodeRecord`/:class:`EdgeRecord`."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        self._edges: dict[tuple[str, str, str], tuple[dict[str, None], dict[str, Any]]] = {}

    def add_node(self, node: NodeRecord, rank: int = 100) -> None:
        """Add or merge one node; ``rank`` orders whose name wins (lower wins)."""
        held = self._nodes.get(node.id)
        if held is None:
            held = self._nodes[node.id] = _Node(label=node.label, name=node.name, rank=rank)
        elif rank < held.rank and node.name != held.name:
            held.synonyms[held.name] = None
            held.name, held.rank = node.name, rank
        elif node.name != held.name:
            held.synonyms[node.name] = None
        for s in node.synonyms:
            held.synonyms[s] = None
        for x in node.xrefs:
            held.xrefs[x] = None
        for s in node.sources:
            held.sources[s] = None
        for k, v in node.properties.items():
            held.properties.setdefault(k, v)

    def add_edge(self, edge: EdgeRecord) -> None:
        """Add or merge one edge (sources unioned, evidence kept per source)."""
        key = (edge.source_id, edge.type, edge.target_id)
        held = self._edges.get(key)
        if held is None:
            self._edges[key] = ({s: None for s in edge.sources}, dict(edge.properties))
            return
        sources, props = held
        for s in edge.sources:
            sources[s] = None
        for k, v in edge.properties.items():
            props[k] = merge_property(props[k], v, k) if k in props else v

    def has_node(self, node_id: str) -> bool:
        return node_id in self._nodes

    @property
    def node_count(self) -> int:
        return len(self._nodes)

    @property
    def edge_count(self) -> int:
        return len(self._edges)

    def nodes(self) -> Iterator[NodeRecord]:
        """Every merged node; synonyms that only repeat the name (after normalising) are dropped."""
        for node_id, n in self._nodes.items():
            own = normalise(n.name)
            seen = {own}
            synonyms = []
            for s in n.synonyms:
                key = normalise(s)
                if key and key not in seen:
                    seen.add(key)
                    synonyms.append(s)
            yield NodeRecord(id=node_id, label=n.label, name=n.name, synonyms=synonyms, xrefs=list(n.xrefs),
                             sources=list(n.sources), properties=n.properties)

    def edges(self, dangling: list[tuple[str, str, str]] | None = None) -> Iterator[EdgeRecord]:
        """Every merged edge whose endpoints are both nodes, with its strength; others are appended to ``dangling``."""
        for (s, t_type, t), (sources, props) in self._edges.items():
            if s not in self._nodes or t not in self._nodes:
                if dangling is not None:
                    dangling.append((s, t_type, t))
                continue
            merged = list(sources)
            yield EdgeRecord(source_id=s, type=t_type, target_id=t, sources=merged,
                             properties={**props, **strength_properties(t_type, merged, props)})

    def name_index(self, label: str) -> dict[str, str]:
        """Normalised name or synonym -> node id, for nodes of ``label``; names shared by several nodes are left out."""
        index: dict[str, str | None] = {}
        for node_id, n in self._nodes.items():
            if n.label != label:
                continue
            for text in (n.name, *n.synonyms):
                key = normalise(text)
                if key:
                    index[key] = node_id if index.get(key, node_id) == node_id else None
        return {k: v for k, v in index.items() if v is not None}

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self._nodes.values():
            counts[n.label] = counts.get(n.label, 0) + 1
        return counts

    def edge_type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (_, t_type, _) in self._edges:
            counts[t_type] = counts.get(t_type, 0) + 1
        return counts
