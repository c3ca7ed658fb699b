"""Evidence strength of an edge, in [0, 1], from what its sources record (docs/evidence_strength.md).

Computed once when the graph is built (``properties["strength"]``); :func:`strength_of` reads it, or computes it
for an edge of a graph built elsewhere (a user's SPOKE dump), so a question pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kgrag.graph.schema import EdgeView

STRENGTH_KEY = "strength"


def edge_strength(edge_type: str, sources: Sequence[str], properties: Mapping[str, Any]) -> float:
    """Strength of one edge in [0, 1]: more independent sources and stronger recorded evidence score higher."""
    independent = len({s.lower() for s in sources})
    return round(1.0 - 0.5 ** max(1, independent), 4)


def strength_of(edge: EdgeView) -> float:
    """The stored strength of ``edge``, or the one :func:`edge_strength` computes from its sources and properties."""
    stored = edge.properties.get(STRENGTH_KEY)
    if isinstance(stored, (int, float)) and 0.0 <= float(stored) <= 1.0:
        return float(stored)
    return edge_strength(edge.type, edge.sources, edge.properties)
