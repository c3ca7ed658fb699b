"""Row helpers shared by the graph store backends: batching, de-duplication, encoding, decoding.

Both backends keep a fixed schema: ``properties`` travel as one JSON string (``props``), names as
a list of normalised keys (``keys``) so name lookup is an exact match on normalised text. Empty
strings in lists (synonyms, xrefs, sources) are not stored.

Example::

    from kgrag.graph.rows import node_row
    from kgrag.graph.schema import NodeRecord
    node_row(NodeRecord(id="DOID:9008", label="Disease", name="Psoriasis", synonyms=["psoriasis vulgaris"]))["keys"]
    # ['psoriasis', 'psoriasis vulgaris']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from kgrag.graph.schema import EdgeRecord, EdgeView, NodeRecord, NodeRef, check_identifier
from kgrag.text import normalise

T = TypeVar("T")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Split ``items`` into lists of at most ``size`` (``size`` must be positive)."""
    if size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {size}")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def name_keys(name: str, synonyms: Sequence[str]) -> list[str]:
    """Normalised name and synonyms, without empties or repeats, in order."""
    keys: dict[str, None] = {}
    for text in (name, *synonyms):
        key = normalise(text)
        if key:
            keys[key] = None
    return list(keys)


def normalise_keys(keys: Sequence[str]) -> dict[str, str]:
    """Map each caller key to its normalised form (normalising twice changes nothing)."""
    return {key: normalise(key) for key in keys}


def check_labels(labels: Sequence[str] | None) -> list[str] | None:
    """Validate an optional label filter (labels are schema identifiers)."""
    if labels is None:
        return None
    return [check_identifier("label", label) for label in labels]


def check_edge_types(edge_types: Sequence[str] | None) -> list[str] | None:
    """Validate an optional edge-type filter (edge types are schema identifiers)."""
    if edge_types is None:
        return None
    return [check_identifier("edge type", edge_type) for edge_type in edge_types]


def encode_props(properties: dict[str, Any], what: str) -> str:
    """Properties as a JSON string; a value JSON cannot hold is an error naming the record."""
    try:
        return json.dumps(properties, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: properties are not JSON-serialisable ({exc})") from None


def decode_props(text: str | None) -> dict[str, Any]:
    """Stored properties (a JSON object) as a dict; half the public graph's edges have none ("{}": no parse)."""
    return json.loads(text) if text and text != "{}" else {}


def dedupe_nodes(nodes: Iterable[NodeRecord]) -> list[NodeRecord]:
    """One record per id; a later record for the same id replaces an earlier one."""
    by_id: dict[str, NodeRecord] = {}
    for node in nodes:
        by_id.pop(node.id, None)
        by_id[node.id] = node
    return list(by_id.values())


def non_empty(values: Sequence[str]) -> list[str]:
    """A stored list: empty strings carry nothing and are not stored (on every backend)."""
    return [value for value in values if value]


def node_row(node: NodeRecord) -> dict[str, Any]:
    """The stored form of a node (every backend writes these fields)."""
    return {
        "id": node.id,
        "label": node.label,
        "name": node.name,
        "keys": name_keys(node.name, node.synonyms),
        "synonyms": non_empty(node.synonyms),
        "xrefs": non_empty(node.xrefs),
        "sources": non_empty(node.sources),
        "props": encode_props(node.properties, f"node {node.id!r}"),
    }


NODE_FIELDS = ("id", "label", "name", "synonyms", "xrefs", "sources", "props")


def node_from_row(row: Sequence[Any]) -> NodeRecord:
    """Decode a node returned as the columns of :data:`NODE_FIELDS`, in that order."""
    node_id, label, name, synonyms, xrefs, sources, props = row
    return NodeRecord(
        id=node_id,
        label=label,
        name=name,
        synonyms=list(synonyms or []),
        xrefs=list(xrefs or []),
        sources=list(sources or []),
        properties=decode_props(props),
    )


def merge_sources(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """Union of two provenance lists, in first-seen order."""
    return list(dict.fromkeys([*old, *new]))


def merge_edges(edges: Iterable[EdgeRecord]) -> dict[str, EdgeRecord]:
    """One record per (source, type, target): sources united, properties updated (later wins)."""
    merged: dict[str, EdgeRecord] = {}
    for edge in edges:
        seen = merged.get(edge.key)
        if seen is None:
            merged[edge.key] = edge
        else:
            merged[edge.key] = EdgeRecord(
                source_id=edge.source_id,
                type=edge.type,
                target_id=edge.target_id,
                sources=merge_sources(seen.sources, edge.sources),
                properties={**seen.properties, **edge.properties},
            )
    return merged


def edge_row(edge: EdgeRecord) -> dict[str, Any]:
    """The stored form of an edge (endpoints by id)."""
    return {
        "s": edge.source_id,
        "t": edge.target_id,
        "type": edge.type,
        "sources": non_empty(edge.sources),
        "props": encode_props(edge.properties, f"edge {edge.key!r}"),
    }


def merged_row(edge: EdgeRecord, old_sources: Sequence[str] | None, old_props: str | None) -> dict[str, Any]:
    """The row that updates an existing edge with a newly loaded duplicate."""
    return edge_row(
        EdgeRecord(
            source_id=edge.source_id,
            type=edge.type,
            target_id=edge.target_id,
            sources=merge_sources(old_sources or [], edge.sources),
            properties={**decode_props(old_props), **edge.properties},
        )
    )


def edge_view(
    source: tuple[str, str, str],
    edge_type: str,
    target: tuple[str, str, str],
    sources: Sequence[str] | None,
    props: str | None,
) -> EdgeView:
    """Build an :class:`EdgeView` from (id, label, name) endpoints in the edge's true direction."""
    return view_between(NodeRef(id=source[0], label=source[1], name=source[2]), edge_type,
                        NodeRef(id=target[0], label=target[1], name=target[2]), sources, props)


def view_between(source: NodeRef, edge_type: str, target: NodeRef, sources: Sequence[str] | None,
                 props: str | None) -> EdgeView:
    """The :class:`EdgeView` of an edge from ``source`` to ``target``: its key, sources and decoded properties."""
    return EdgeView(key=f"{source.id}|{edge_type}|{target.id}", type=edge_type, source=source, target=target,
                    sources=list(sources or []), properties=decode_props(props))


def directed_views(node: NodeRef, rows: Iterable[Sequence[Any]]) -> list[EdgeView]:
    """Edges of ``node`` from rows ``(outgoing, type, sources, props, other id, other label, other name)``."""
    views = []
    for out, edge_type, sources, props, oid, olabel, oname in rows:
        other = NodeRef(id=oid, label=olabel, name=oname)
        source, target = (node, other) if out else (other, node)
        views.append(view_between(source, edge_type, target, sources, props))
    return views


def unique(values: Sequence[str]) -> list[str]:
    """Values without repeats, in order."""
    return list(dict.fromkeys(values))


def in_order(ids: Sequence[str], nodes: Iterable[NodeRecord]) -> list[NodeRecord]:
    """Nodes in the order of ``ids`` (ids not found are left out)."""
    by_id = {node.id: node for node in nodes}
    return [by_id[i] for i in ids if i in by_id]


def dedupe_views(views: Iterable[EdgeView]) -> list[EdgeView]:
    """Edges without repeats (an edge joining two seeds is found from both), in order."""
    seen: dict[str, EdgeView] = {}
    for view in views:
        seen.setdefault(view.key, view)
    return list(seen.values())
