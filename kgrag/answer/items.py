"""Entity answers as data: for a question asking for entities, its answer's entities in ranked order.

:class:`ItemRanker` turns what retrieval found into :class:`~kgrag.types.AnswerItem` lists, one per question, the same
whichever writer runs. For a free question that asks for entities (``which/what/list ...``,
:func:`kgrag.retrieval.relevance.asked`):

* **Graph**: every candidate edge of the question's entities (all of them, before the context budget) that
  answers it (relevance tier ``ANSWERS``: an asked relation to a node of an asked label) names its far end.
  An item's graph strength is its best edge's strength (:mod:`kgrag.graph.strength`: an edge's strength already
  combines its independent sources).
* **Literature**: the entities named in the retrieved passages and in a given context, linked with the same
  linker (dictionary only, ONE pass for the batch, sentence by sentence), of an asked label when the question names
  one. A retrieved passage counts only its sentences that also name one of the question's own entities (when it has
  any: a retrieved passage about another disease names other genes); a given context, chosen by the user, counts
  whole. A passage supports each entity it names with ``PASSAGE_SUPPORT`` (a given context's sentence with
  ``GIVEN_SUPPORT``); the literature strength is their noisy-OR. So a question the graph cannot answer still gets
  a ranked list.
* **Together**: ``strength = 1 - (1 - graph) (1 - literature)``. Items joined to more of the question's entities
  come first (an answer must hold for all of them), then by strength, then by first appearance. The question's
  own entities are never items. Names, labels and synonyms come from the graph (ONE node lookup for the batch).

Example::

    ranker = ItemRanker(settings, store, linker)
    [items] = ranker.rank([question], [linked], [retrieved])
    [(i.name, round(i.strength, 2), i.sources) for i in items[:3]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kgrag.answer.retriever import Linked, Retrieved
from kgrag.evidence.claims import split_sentences
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import NodeRecord
from kgrag.graph.strength import strength_of
from kgrag.retrieval.linking import EntityLinker
from kgrag.retrieval.relevance import ANSWERS, Asked
from kgrag.settings import Settings
from kgrag.types import AnswerItem, LinkedEntity, Question

PASSAGE_SUPPORT = 0.2
"""What one retrieved passage naming an entity adds (noisy-OR): three passages make 0.49, as much as one fair edge."""
GIVEN_SUPPORT = 0.3
"""What one sentence of a given context (BioASQ's snippets, an abstract) naming an entity adds."""


@dataclass
class _Draft:
    """An item while it is being gathered."""

    id: str
    name: str
    label: str
    order: int
    seeds: set[str] = field(default_factory=set)
    edge_strengths: list[float] = field(default_factory=list)
    text_supports: list[float] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    pmids: list[str] = field(default_factory=list)

    def strength(self) -> float:
        """The best edge's strength (an edge's strength already combines its independent sources; two edges of one
        item, e.g. to two seeds, restate overlapping sources), raised by the passages' noisy-OR."""
        best_edge = max(self.edge_strengths, default=0.0)
        return 1.0 - (1.0 - best_edge) * _none_of(self.text_supports)

    def origin(self) -> str:
        return "graph+text" if self.edge_strengths and self.text_supports else ("graph" if self.edge_strengths else "text")


def _none_of(supports: Sequence[float]) -> float:
    """The chance that none of independent supports holds (noisy-OR's complement)."""
    out = 1.0
    for s in supports:
        out *= 1.0 - min(1.0, max(0.0, s))
    return out


class ItemRanker:
    """Ranked entity answers for a batch, from the retrieval's candidates and passages (see the module doc)."""

    def __init__(self, settings: Settings, store: GraphStore | None, linker: EntityLinker | None) -> None:
        self.settings = settings
        self.store = store
        self.linker = linker

    def rank(self, qs: Sequence[Question], linked: Sequence[Linked], retrieved: Sequence[Retrieved]) -> list[list[AnswerItem]]:
        """Items per question: empty for a question with options or one that does not ask for entities."""
        wanted = [i for i, (q, r) in enumerate(zip(qs, retrieved))
                  if not q.options and r.asked is not None and r.asked.entity_question]
        drafts: dict[int, dict[str, _Draft]] = {i: {} for i in wanted}
        for i in wanted:
            self._from_graph(drafts[i], retrieved[i])
        self._from_text(drafts, qs, retrieved)
        top = {i: self._top(drafts[i], retrieved[i].asked) for i in wanted}  # type: ignore[arg-type]
        nodes = self._nodes({d.id for ds in top.values() for d in ds})
        out: list[list[AnswerItem]] = [[] for _ in qs]
        for i, ds in top.items():
            out[i] = [self._item(d, nodes.get(d.id)) for d in ds]
        return out

    def _from_graph(self, drafts: dict[str, _Draft], found: Retrieved) -> None:
        asked: Asked = found.asked  # type: ignore[assignment]
        for cand in found.candidates:
            edge = cand.edge
            if edge is None or cand.group in ("options", "text"):
                continue
            seed = cand.group
            if asked.relevance(edge, seed) != ANSWERS:
                continue
            far = edge.target if edge.source.id == seed else edge.source
            if far.id in asked.entity_ids:
                continue
            draft = drafts.get(far.id)
            if draft is None:
                draft = drafts[far.id] = _Draft(id=far.id, name=far.name, label=far.label, order=len(drafts))
            draft.seeds.add(seed)
            draft.edge_strengths.append(strength_of(edge))
            draft.evidence.append(edge.key)
            draft.databases.extend(s for s in edge.sources if s not in draft.databases)

    def _from_text(self, drafts: dict[int, dict[str, _Draft]], qs: Sequence[Question],
                   retrieved: Sequence[Retrieved]) -> None:
        """Entities named in each wanted question's passages and given context: ONE linking pass for the batch."""
        if self.linker is None or not drafts:
            return
        texts: list[str] = []
        owners: list[tuple[int, float, str, str | None, bool]] = []  # (question, support, evidence id, pmid, retrieved)
        for i in drafts:
            for cand in retrieved[i].candidates:
                if cand.group == "text":
                    ev = cand.evidence
                    for sentence in split_sentences(ev.text):
                        texts.append(sentence)
                        owners.append((i, PASSAGE_SUPPORT, ev.id, ev.properties.get("pmid"), True))
            for n, sentence in enumerate(split_sentences(qs[i].context or "")):
                texts.append(sentence)
                owners.append((i, GIVEN_SUPPORT, f"given:{n}", None, False))
        if not texts:
            return
        named: dict[tuple[int, str], tuple[float, str | None, dict[str, LinkedEntity]]] = {}  # per passage or sentence
        for (i, support, evidence_id, pmid, from_retrieval), entities in zip(owners, self.linker.link(texts, fallback=False)):
            subjects = retrieved[i].asked.entity_ids  # type: ignore[union-attr]
            if from_retrieval and subjects and not any(e.node_id in subjects for e in entities):
                continue  # a retrieved sentence counts only where it names the question's own entities
            kept = named.setdefault((i, evidence_id), (support, pmid, {}))[2]
            kept.update((e.node_id, e) for e in _distinct(entities) if e.node_id not in kept)
        for (i, evidence_id), (support, pmid, entities) in named.items():
            asked: Asked = retrieved[i].asked  # type: ignore[assignment]
            for entity in entities.values():
                if entity.node_id in asked.entity_ids or (asked.labels and entity.label not in asked.labels):
                    continue
                draft = drafts[i].get(entity.node_id)
                if draft is None:
                    draft = drafts[i][entity.node_id] = _Draft(id=entity.node_id, name=entity.name, label=entity.label,
                                                               order=len(drafts[i]))
                draft.text_supports.append(support)
                draft.evidence.append(evidence_id)
                if pmid and f"PMID:{pmid}" not in draft.pmids:
                    draft.pmids.append(f"PMID:{pmid}")

    def _top(self, drafts: dict[str, _Draft], asked: Asked) -> list[_Draft]:
        """The best ``answer_items`` drafts: joined to more of the question's entities (when it names several),
        then stronger, then first seen."""
        several = len(asked.entity_ids) > 1
        ranked = sorted(drafts.values(), key=lambda d: (-len(d.seeds) if several else 0, -d.strength(), d.order))
        return ranked[: self.settings.answer_items]

    def _nodes(self, ids: set[str]) -> dict[str, NodeRecord]:
        if self.store is None or not ids:
            return {}
        return {n.id: n for n in self.store.get_nodes(sorted(ids))}

    @staticmethod
    def _item(draft: _Draft, node: NodeRecord | None) -> AnswerItem:
        name = node.name if node is not None else draft.name
        label = node.label if node is not None else draft.label
        synonyms = [s for s in (node.synonyms if node is not None else []) if s != name]
        return AnswerItem(name=name, id=draft.id, label=label, synonyms=synonyms, strength=round(draft.strength(), 4),
                          evidence=list(dict.fromkeys(draft.evidence)), sources=draft.databases + draft.pmids,
                          origin=draft.origin())  # type: ignore[arg-type]


def _distinct(entities: Sequence[LinkedEntity]) -> list[LinkedEntity]:
    """One entry per node (a passage naming a gene twice supports it once)."""
    seen: set[str] = set()
    out = []
    for e in entities:
        if e.node_id not in seen and e.within is None:
            seen.add(e.node_id)
            out.append(e)
    return out
