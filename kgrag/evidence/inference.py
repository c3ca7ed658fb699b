"""Inferred support: a pair of named nodes joined through a stand-in for one of them.

* ``ontology``: an edge joins a subtype of a named disease (an is-a descendant within ``evidence_isa_depth``
  steps, is-a edges other than the supporting one) to the other entity: an association of forms of breast
  carcinoma supports one of breast carcinoma. For a disease pair, an is-a path between them supports it too.
  A parent's edge supports a claim about a subtype only where its source is in ``evidence_inherited_sources``
  (empty by default: no source here says its associations hold for subtypes). Each such support names its
  path (the edge, then the is-a steps) and has its own confidence, ``evidence_isa_step_confidence`` to the
  power of the steps.
* ``class``: an edge joins a member of a named pharmacologic class (``INCLUDES_PCiC``) to the other entity
  (confidence ``evidence_class_confidence``).

Batched: is-a walks in memory (:class:`kgrag.graph.ontology.Ontology` reads the graph's is-a edges once per
process), one class-member query, then ONE ``edges_between`` call for all inferred candidates.

Example::

    inference = Inference(store, Ontology(store, 2))
    found = inference.infer({"DOID:1": "Disease"}, {"DOID:1", "NCBIGene:7507"})
    found[("DOID:1", "NCBIGene:7507")][0].explain()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from kgrag.graph.ontology import ISA, IsaPath, Ontology
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import EdgeView, edge_sentence
from kgrag.types import Evidence

CLASS_MEMBER = "INCLUDES_PCiC"


class Inferred(BaseModel):
    """Support for a pair of named nodes that rests on a stand-in: a subtype, an ancestor, a class member."""

    kind: Literal["ontology", "class"]
    named: str = Field(description="The named node the stand-in speaks for")
    via: str = Field(description="The stand-in node (the named node itself for an is-a path between the pair)")
    edge: EdgeView | None = Field(default=None, description="The supporting edge (None: the is-a path is the support)")
    isa: IsaPath | None = None
    member: EdgeView | None = Field(default=None, description="class: the class-membership edge")
    confidence: float

    @property
    def path(self) -> list[str]:
        steps = [self.edge.key] if self.edge is not None else []
        if self.isa is not None:
            steps += self.isa.steps
        if self.member is not None:
            steps.append(self.member.key)
        return steps

    def explain(self) -> str:
        if self.kind == "class" and self.member is not None and self.edge is not None:
            return (f"{self.edge.key}: {self.member.target.name} is a member of the class {self.member.source.name} "
                    f"(class support, confidence {self.confidence:.2f})")
        assert self.isa is not None
        relation = f"{self.isa.describe()} ({self.isa.depth} is-a step{'s' if self.isa.depth != 1 else ''})"
        head = f"{self.edge.key} via " if self.edge is not None else "is-a path "
        return f"{head}{relation} (ontology support, confidence {self.confidence:.2f})"

    def evidence(self, option: str | None) -> Evidence:
        if self.edge is not None:
            text = f"{edge_sentence(self.edge)} Inferred: {self.explain()}."
            sources, props, key = list(self.edge.sources), dict(self.edge.properties), self.edge.key
        else:
            assert self.isa is not None
            text = f"Disease {self.isa.describe()}. Inferred: {self.explain()}."
            sources = sorted({s for e in self.isa.edges for s in e.sources})
            props, key = {}, "|".join(self.path)
        return Evidence(kind="kg", text=text, score=1.0, id=key, sources=sources, properties=props, option=option,
                        support=self.kind, path=self.path, confidence=self.confidence)


class Inference:
    """Inferred support over a graph store: subtypes (and, with ``inherited_sources``, ancestors) of named
    diseases, and members of named pharmacologic classes."""

    def __init__(self, store: GraphStore | None, ontology: Ontology, *, step_confidence: float = 0.8,
                 inherited_sources: Sequence[str] = (), class_support: bool = True,
                 class_confidence: float = 0.7) -> None:
        self.store = store
        self.ontology = ontology
        self.step_confidence = step_confidence
        self.inherited_sources = set(inherited_sources)
        self.class_support = class_support
        self.class_confidence = class_confidence

    def infer(self, named: dict[str, str], targets: set[str]) -> dict[tuple[str, str], list[Inferred]]:
        """(named id, target id) -> inferred support, both ways round, best first.

        ``named``: node id -> label of the entities a text names (diseases get subtypes, and ancestors when
        ``inherited_sources`` is set; pharmacologic classes get members); ``targets``: the nodes a claim may join
        them to. Is-a walks in memory, one membership query and ONE ``edges_between`` call."""
        out: dict[tuple[str, str], list[Inferred]] = {}
        if self.store is None or not named:
            return out
        diseases = sorted(n for n, label in named.items() if label == "Disease")
        classes = sorted(n for n, label in named.items() if label == "PharmacologicClass") if self.class_support else []
        standins: dict[str, list[Inferred]] = {}  # stand-in node -> templates (edge filled in below)
        down = self.ontology.descendants(diseases) if diseases else {}
        for seed, paths in down.items():
            for node, isa in paths.items():
                conf = self.step_confidence ** isa.depth
                standins.setdefault(node, []).append(Inferred(kind="ontology", named=seed, via=node, isa=isa, confidence=conf))
                if node in named and node in targets:  # an is-a path between two named diseases supports the pair
                    self._add(out, Inferred(kind="ontology", named=seed, via=seed, isa=isa, confidence=conf), node)
        if self.inherited_sources and diseases:
            for seed, paths in self.ontology.ancestors(diseases).items():
                for node, isa in paths.items():
                    standins.setdefault(node, []).append(Inferred(kind="ontology", named=seed, via=node, isa=isa,
                                                                  confidence=self.step_confidence ** isa.depth))
        if classes:
            for edge in self.store.neighbourhood(classes, edge_types=[CLASS_MEMBER]):
                if edge.source.id in named and edge.type == CLASS_MEMBER:
                    standins.setdefault(edge.target.id, []).append(Inferred(
                        kind="class", named=edge.source.id, via=edge.target.id, member=edge,
                        confidence=self.class_confidence))
        if not standins or not targets:
            return out
        for edge in self.store.edges_between(sorted(standins), sorted(targets)):
            if edge.type in (ISA, CLASS_MEMBER):
                continue  # a step of a path, not an association
            for via, other in ((edge.source.id, edge.target.id), (edge.target.id, edge.source.id)):
                if other not in targets:
                    continue
                for template in standins.get(via, []):
                    if other == template.named or other == via:
                        continue
                    upward = template.isa is not None and template.isa.subtype == template.named
                    if upward and not self.inherited_sources.intersection(edge.sources):
                        continue  # a parent's edge speaks for a subtype only where its source says so
                    self._add(out, template.model_copy(update={"edge": edge}), other)
        for found in out.values():
            found.sort(key=lambda x: -x.confidence)
        return out

    @staticmethod
    def _add(out: dict[tuple[str, str], list[Inferred]], item: Inferred, other: str) -> None:
        keys = {(x.path[0] if x.path else "", x.named) for x in out.get((item.named, other), [])}
        if (item.path[0] if item.path else "", item.named) in keys:
            return
        out.setdefault((item.named, other), []).append(item)
        out.setdefault((other, item.named), []).append(item)
