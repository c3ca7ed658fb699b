"""Is-a paths between diseases, for ontology-aware evidence and linking.

The graph stores the disease hierarchy as ``ISA_DiD`` edges from a subtype to its parent (Disease
Ontology and MONDO ``subClassOf``). :class:`Ontology` walks them a bounded number of steps, batched:
ONE ``neighbourhood`` query per is-a level for every seed of the batch (``depth`` queries in all), and
remembers each node's shortest path (the keys of the is-a edges, from the subtype up to the ancestor).

Example::

    ontology = Ontology(store, depth=2)
    paths = ontology.descendants(["DOID:8893"])          # psoriasis
    paths["DOID:8893"]["DOID:9008"].steps                # ['DOID:9008|ISA_DiD|DOID:8893']
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from kgrag.graph.base import GraphStore
from kgrag.graph.schema import EdgeView

ISA = "ISA_DiD"


class IsaPath(BaseModel):
    """A chain of is-a edges from ``subtype`` up to ``ancestor`` (``steps`` in that order, as edge keys)."""

    subtype: str
    ancestor: str
    edges: list[EdgeView] = Field(default_factory=list, description="The is-a edges, the subtype's first")

    @property
    def steps(self) -> list[str]:
        """The edges' keys (child|ISA_DiD|parent), the subtype's first."""
        return [e.key for e in self.edges]

    @property
    def depth(self) -> int:
        return len(self.edges)

    def describe(self) -> str:
        """'A is a B is a C' in the nodes' names."""
        if not self.edges:
            return self.subtype
        return " is a ".join([self.edges[0].source.name] + [e.target.name for e in self.edges])


class Ontology:
    """Bounded is-a walks over a graph store; ``depth=0`` finds nothing (and queries nothing)."""

    def __init__(self, store: GraphStore | None, depth: int) -> None:
        if depth < 0:
            raise ValueError(f"is-a depth must be >= 0, got {depth}")
        self.store = store
        self.depth = depth

    def descendants(self, ids: Sequence[str]) -> dict[str, dict[str, IsaPath]]:
        """Per seed, its is-a descendants within ``depth`` steps (the seed itself excluded) -> shortest path."""
        return self._walk(ids, down=True)

    def ancestors(self, ids: Sequence[str]) -> dict[str, dict[str, IsaPath]]:
        """Per seed, its is-a ancestors within ``depth`` steps (the seed itself excluded) -> shortest path."""
        return self._walk(ids, down=False)

    def _walk(self, ids: Sequence[str], *, down: bool) -> dict[str, dict[str, IsaPath]]:
        seeds = list(dict.fromkeys(ids))
        found: dict[str, dict[str, IsaPath]] = {s: {} for s in seeds}
        if self.store is None or self.depth == 0 or not seeds:
            return found
        # frontier: node -> the seeds that reached it, with the steps so far
        frontier: dict[str, list[tuple[str, list[EdgeView]]]] = {s: [(s, [])] for s in seeds}
        for _ in range(self.depth):
            if not frontier:
                break
            edges = self.store.neighbourhood(sorted(frontier), edge_types=[ISA])
            nxt: dict[str, list[tuple[str, list[EdgeView]]]] = {}
            for edge in edges:
                # going down, the frontier node is the parent (target); going up, the subtype (source)
                here, there = (edge.target.id, edge.source.id) if down else (edge.source.id, edge.target.id)
                if here not in frontier or here == there:
                    continue
                for seed, steps in frontier[here]:
                    if there == seed or there in found[seed]:
                        continue  # reached already by a path as short or shorter (levels go in order)
                    path = [edge, *steps] if down else [*steps, edge]
                    found[seed][there] = IsaPath(subtype=there if down else seed, ancestor=seed if down else there,
                                                 edges=path)
                    nxt.setdefault(there, []).append((seed, path))
            frontier = nxt
        return found
