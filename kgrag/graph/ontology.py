"""Is-a paths between diseases, for ontology-aware evidence and linking.

The graph stores the disease hierarchy as ``ISA_DiD`` edges from a subtype to its parent (Disease
Ontology and MONDO ``subClassOf``). :class:`Ontology` reads them all once, on its first walk (ONE
``iter_edges`` scan: 40,923 edges on the public graph, ~0.7 s, kept as ids), and then walks them in
memory a bounded number of steps: no query per question. Is-a edges written to the store after that
first walk are not seen (a serving graph is read-only; a rebuild is opened anew). Each node's shortest
path is kept (the is-a edges, from the subtype up to the ancestor; ties go to the first found, nodes
taken in id order). The linker and the evidence checker share one (the pipeline hands the linker's to
the checker).

Example::

    ontology = Ontology(store, depth=2)
    paths = ontology.descendants(["DOID:8893"])          # psoriasis
    paths["DOID:8893"]["DOID:9008"].steps                # ['DOID:9008|ISA_DiD|DOID:8893']
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from kgrag.graph.base import GraphStore
from kgrag.graph.rows import view_between
from kgrag.graph.schema import EdgeView, NodeRef

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
        # subtype -> its parents, parent -> its subtypes (ids, each list sorted); None until first needed
        self._up: dict[str, list[str]] | None = None
        self._down: dict[str, list[str]] = {}
        self._nodes: dict[str, NodeRef] = {}  # every node of an is-a edge, once
        self._sources: dict[tuple[str, str], tuple[str, ...]] = {}  # (subtype, parent) -> the edge's sources
        self._views: dict[tuple[str, str], EdgeView] = {}  # the edges of paths found so far

    def _neighbours(self, *, down: bool) -> dict[str, list[str]]:
        """Each node's is-a neighbours a walk goes to (subtypes going down, parents going up), read from the store
        once: one scan of its is-a edges, kept as ids (an EdgeView is made only for an edge on a path found)."""
        if self._up is None:
            assert self.store is not None
            up: dict[str, list[str]] = {}
            below: dict[str, list[str]] = {}
            for batch in self.store.iter_edges(edge_types=[ISA]):
                for edge in batch:
                    child, parent = edge.source.id, edge.target.id
                    self._nodes.setdefault(child, edge.source)
                    self._nodes.setdefault(parent, edge.target)
                    self._sources[(child, parent)] = tuple(edge.sources)
                    up.setdefault(child, []).append(parent)
                    below.setdefault(parent, []).append(child)
            for ids in (*up.values(), *below.values()):
                ids.sort()
            self._up, self._down = up, below
        return self._down if down else self._up

    def _view(self, child: str, parent: str) -> EdgeView:
        """The is-a edge from ``child`` up to ``parent`` as an EdgeView (made once)."""
        view = self._views.get((child, parent))
        if view is None:
            view = view_between(self._nodes[child], ISA, self._nodes[parent], self._sources[(child, parent)], None)
            self._views[(child, parent)] = view
        return view

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
        leaving = self._neighbours(down=down)
        # frontier: node -> the seeds that reached it, with the steps so far
        frontier: dict[str, list[tuple[str, list[EdgeView]]]] = {s: [(s, [])] for s in seeds}
        for _ in range(self.depth):
            if not frontier:
                break
            nxt: dict[str, list[tuple[str, list[EdgeView]]]] = {}
            for here in sorted(frontier):
                for there in leaving.get(here, []):
                    if here == there:
                        continue
                    for seed, steps in frontier[here]:
                        if there == seed or there in found[seed]:
                            continue  # reached already by a path as short or shorter (levels go in order)
                        path = [self._view(there, here), *steps] if down else [*steps, self._view(here, there)]
                        found[seed][there] = IsaPath(subtype=there if down else seed,
                                                     ancestor=seed if down else there, edges=path)
                        nxt.setdefault(there, []).append((seed, path))
            frontier = nxt
        return found
