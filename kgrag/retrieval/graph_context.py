"""Graph context: the linked nodes' one-hop neighbourhood as KG-RAG sentences with provenance.

For a whole batch: ONE ``neighbourhood`` query for every linked node of every question, and ONE
``edges_between`` query joining every question's entities to its options' nodes. Each candidate
keeps its edge key, sources and evidence properties.
"""

from __future__ import annotations

from collections.abc import Sequence

from kgrag.graph.base import GraphStore
from kgrag.graph.schema import EdgeView, edge_sentence
from kgrag.graph.strength import strength_of
from kgrag.settings import Settings
from kgrag.types import Evidence, LinkedEntity


class Candidate:
    """Evidence before pruning: its sentence, the group it is pruned in (a linked entity's id, 'options' or 'text'),
    and the :class:`Evidence` it becomes, built only when asked for.

    A batch of MCQs gathers ~600 graph candidates per question and pruning keeps ~20, so an edge's Evidence
    (sources, properties, option) is built from its :class:`EdgeView` on first access of :attr:`evidence`,
    i.e. for the kept ones. Give either ``evidence`` (text passages, tests) or ``edge`` (and ``option``).
    """

    __slots__ = ("group", "text", "_evidence", "_edge", "_option")

    def __init__(self, *, group: str, evidence: Evidence | None = None, edge: EdgeView | None = None,
                 option: str | None = None) -> None:
        if (evidence is None) == (edge is None):
            raise ValueError("a Candidate needs exactly one of evidence and edge")
        self.group = group
        self.text = evidence.text if evidence is not None else edge_sentence(edge)  # type: ignore[arg-type]
        self._evidence = evidence
        self._edge = edge
        self._option = option

    @property
    def evidence(self) -> Evidence:
        """The candidate as evidence (score 0.0 until pruning sets its cosine)."""
        if self._evidence is None:
            self._evidence = edge_evidence(self._edge, self._option, text=self.text)  # type: ignore[arg-type]
        return self._evidence

    @property
    def edge(self) -> EdgeView | None:
        """The graph edge this candidate verbalises (None for a passage)."""
        return self._edge

    def __repr__(self) -> str:
        return f"Candidate(group={self.group!r}, text={self.text!r})"


def edge_evidence(edge: EdgeView, option: str | None = None, *, decided: bool = False,
                  text: str | None = None) -> Evidence:
    """The edge as evidence: its KG-RAG sentence, key, sources and properties; the one definition for the
    graph context and the evidence checker.

    A candidate (``decided=False``) scores 0.0 (pruning sets its cosine to the question). An edge the evidence
    checker found deciding an answer scores 1.0 and is marked direct support (its path is itself, confidence 1.0).
    Built without re-validation (``model_construct``): every field comes from an already validated
    :class:`EdgeView`. ``text``: the edge's sentence when the caller already has it.
    """
    # every field given: model_construct fills a missing default_factory field through pydantic's signature check
    # of the factory, 0.6 ms per call here (93% of a 64-question batch's graph fetch, measured with cProfile)
    support: dict[str, object] = ({"support": "direct", "path": [edge.key], "confidence": 1.0} if decided
                                  else {"support": None, "path": [], "confidence": None})
    return Evidence.model_construct(kind="kg", text=text or edge_sentence(edge), score=1.0 if decided else 0.0,
                                    id=edge.key, sources=list(edge.sources), properties=dict(edge.properties), option=option,
                                    strength=strength_of(edge), **support)


def pair_index(edges: Sequence[EdgeView]) -> dict[tuple[str, str], list[EdgeView]]:
    """Edges by the (node id, node id) pair they join, in both directions."""
    index: dict[tuple[str, str], list[EdgeView]] = {}
    for edge in edges:
        index.setdefault((edge.source.id, edge.target.id), []).append(edge)
        index.setdefault((edge.target.id, edge.source.id), []).append(edge)
    return index


def _candidate(edge: EdgeView, group: str, option: str | None = None) -> Candidate:
    return Candidate(group=group, edge=edge, option=option)


def gather_kg(store: GraphStore, entities: Sequence[Sequence[LinkedEntity]], options: Sequence[dict[str, list[str]]],
              settings: Settings) -> list[list[Candidate]]:
    """Candidates per question: option-joining edges first (group 'options'), then each entity's neighbourhood.

    Option edges are ordered by how many of the question's entities their option joins (an MCQ answer
    must be linked to both diseases), so the decisive evidence leads the context.

    ``options[i]`` maps an option string of question i to the node ids it links to. Entities linked only as
    nested ancestors (``LinkedEntity.within``) are reported with the answer but fetch no neighbourhood.
    """
    # a nested ancestor (``within``) is not a seed: its neighbourhood is a broad parent's (thousands of edges, measured
    # 30x the fetch and pruning time on the MCQ set), and the more specific disease named around it is fetched
    seeds = sorted({e.node_id for ents in entities for e in ents if e.within is None})
    edges = store.neighbourhood(seeds, settings.edge_types, settings.neighbourhood_limit) if seeds else []
    by_node: dict[str, list[EdgeView]] = {}
    for edge in edges:
        by_node.setdefault(edge.source.id, []).append(edge)
        if edge.target.id != edge.source.id:
            by_node.setdefault(edge.target.id, []).append(edge)

    option_ids = sorted({nid for opts in options for ids in opts.values() for nid in ids})
    joining = store.edges_between(seeds, option_ids) if seeds and option_ids and settings.option_edges_first else []
    joining_by_pair = pair_index(joining)

    out: list[list[Candidate]] = []
    for ents, opts in zip(entities, options):
        candidates: list[Candidate] = []
        seen: set[str] = set()
        per_option: list[tuple[int, list[Candidate]]] = []
        for option, nodes in opts.items():
            joined_entities: set[str] = set()
            option_cands: list[Candidate] = []
            for entity in ents:
                for node in nodes:
                    for edge in joining_by_pair.get((entity.node_id, node), []):
                        if entity.within is None:  # a nested ancestor is context, not one more entity the option joins
                            joined_entities.add(entity.node_id)
                        if edge.key not in seen:
                            seen.add(edge.key)
                            option_cands.append(_candidate(edge, "options", option))
            per_option.append((len(joined_entities), option_cands))
        # an option joined to more of the question's entities ranks first (stable: ties keep option order)
        for _, option_cands in sorted(per_option, key=lambda item: -item[0]):
            candidates.extend(option_cands)
        for entity in ents:
            for edge in by_node.get(entity.node_id, []) if entity.within is None else []:
                if edge.key not in seen:
                    seen.add(edge.key)
                    candidates.append(_candidate(edge, entity.node_id))
        out.append(candidates)
    return out
