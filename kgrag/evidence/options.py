"""Choosing an MCQ's option from evidence, and the verdict every evidence check returns.

For each option: the graph edges joining its node(s) to the question's linked entities, the inferred support
joining them (:mod:`kgrag.evidence.inference`), the retrieved passages that mention the option together with a
question entity, and corpus co-occurrence counts (ONE ``cooccur`` call for the batch, when statistics exist).
An option's key is (question entities joined directly, joined by inference, co-occurrence, passages),
compared lexicographically: inferred support only ever ranks below direct support, so an answer that direct
edges decide is the same with inference on. The best key wins; a tie at the top names the tied options (the
LLM may choose among them); no support at all chooses nothing.

Example::

    verdict = mcq_verdict(question, entities, option_nodes, pair_index(edges), {}, evidence, {})
    verdict.choice, verdict.tied, verdict.reason
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from kgrag.evidence.inference import Inferred
from kgrag.graph.schema import EdgeView
from kgrag.retrieval.graph_context import edge_evidence
from kgrag.text import normalise
from kgrag.types import Evidence, LinkedEntity, OptionFinding, Question, SupportKind
from quco.stats.base import LOOKUP_FAILURES, CorpusStats


class OptionSupport(BaseModel):
    """What supports one option of one question."""

    option: str
    entities_joined: list[str] = Field(default_factory=list, description="Question entity ids joined by a graph edge")
    edges: list[Evidence] = Field(default_factory=list)
    entities_inferred: list[str] = Field(default_factory=list, description="Question entity ids joined only by "
                                         "inferred support (an edge of a subtype or of a class member)")
    inferred: list[Evidence] = Field(default_factory=list, description="The inferred support, each with its path")
    passages: list[str] = Field(default_factory=list, description="Ids of retrieved passages naming it with an entity")
    cooccurrence: int | None = None

    def key(self) -> tuple[int, int, int, int]:
        """Direct joins first; inferred joins only among options direct edges leave tied; then corpus, passages."""
        return (len(self.entities_joined), len(self.entities_inferred), self.cooccurrence or 0, len(self.passages))

    def finding(self) -> OptionFinding:
        """This support as the Answer records it: the joins and counts, and its evidence by id."""
        return OptionFinding(option=self.option, entities_joined=list(self.entities_joined),
                             entities_inferred=list(self.entities_inferred), cooccurrence=self.cooccurrence,
                             passages=list(self.passages), evidence=[e.id for e in self.edges + self.inferred])


class Verdict(BaseModel):
    """The evidence's decision for one question."""

    choice: str | None
    tied: list[str] = Field(default_factory=list, description="Options tied at the top (the LLM may choose among them)")
    reason: str
    supports: list[OptionSupport] = Field(default_factory=list)
    support: SupportKind | None = Field(default=None, description="What decided the choice (None: nothing did)")
    confidence: float | None = Field(default=None, description="The deciding support's confidence (direct: 1.0)")

    def deciding(self) -> list[Evidence]:
        """The evidence that decided the choice, each once, in the supports' order: the chosen option's edges and
        inferred support (a true/false claim's support names no option); [] when nothing was chosen."""
        if self.choice is None:
            return []
        found: dict[str, Evidence] = {}
        for support in self.supports:
            if support.option == self.choice or not support.option:
                for edge in support.edges + support.inferred:
                    found.setdefault(edge.id, edge)
        return list(found.values())


def mcq_needs_inference(q: Question, ents: Sequence[LinkedEntity], nodes: dict[str, list[str]],
                        index: dict[tuple[str, str], list[EdgeView]]) -> bool:
    """True where direct edges leave the MCQ tied at the top (inference can only break such a tie)."""
    joined = sorted((sum(1 for e in ents if any((e.node_id, n) in index for n in nodes.get(o, [])))
                     for o in q.options or []), reverse=True)
    return len(joined) < 2 or joined[0] == joined[1]


def option_cooccurrence(stats: CorpusStats | None, window: int, qs: Sequence[Question],
                        entities: Sequence[Sequence[LinkedEntity]]) -> tuple[dict[int, dict[str, int]], str | None]:
    """Per question, option -> summed co-occurrence with the question's entities; and the lookup's error, if any."""
    if stats is None:
        return {}, None
    pairs = {(i, o, e.name) for i, q in enumerate(qs) if q.task == "mcq" for o in q.options or [] for e in entities[i]}
    unique = sorted({(o, name) for _, o, name in pairs})
    try:
        counts = dict(zip(unique, stats.cooccur(unique, window))) if unique else {}
    except LOOKUP_FAILURES as exc:  # a tie-breaker only; the failure is reported in each verdict
        return {}, f"{type(exc).__name__}: {exc}"
    out: dict[int, dict[str, int]] = {}
    for i, o, name in pairs:
        out.setdefault(i, {})
        out[i][o] = out[i].get(o, 0) + int(counts.get((o, name), 0))
    return out, None


def mcq_verdict(q: Question, ents: Sequence[LinkedEntity], nodes: dict[str, list[str]],
                index: dict[tuple[str, str], list[EdgeView]], inferred: dict[tuple[str, str], list[Inferred]],
                evidence: Sequence[Evidence], cooc: dict[str, int]) -> Verdict:
    supports = []
    passages = [e for e in evidence if e.kind == "text"]
    for option in q.options or []:
        support = OptionSupport(option=option, cooccurrence=cooc.get(option) if cooc else None)
        for entity in ents:
            for node in nodes.get(option, []):
                found = index.get((entity.node_id, node), [])
                if found and entity.node_id not in support.entities_joined:
                    support.entities_joined.append(entity.node_id)
                support.edges.extend(edge_evidence(edge, option, decided=True) for edge in found
                                     if edge.key not in {x.id for x in support.edges})
        for entity in ents:
            if entity.node_id in support.entities_joined:
                continue
            for node in nodes.get(option, []):
                for item in inferred.get((entity.node_id, node), []):
                    if item.named != entity.node_id:
                        continue  # the option's own subtype joined to the entity says nothing of the option
                    if entity.node_id not in support.entities_inferred:
                        support.entities_inferred.append(entity.node_id)
                    if item.path[0] not in {x.path[0] for x in support.inferred}:
                        support.inferred.append(item.evidence(option))
        opt_norm = f" {normalise(option)} "
        for passage in passages:
            text = f" {normalise(passage.text)} "
            if opt_norm in text and any(f" {normalise(e.name)} " in text for e in ents):
                support.passages.append(passage.id)
        supports.append(support)

    best = max(s.key() for s in supports)
    if best == (0, 0, 0, 0):
        return Verdict(choice=None, reason="no option is supported by the graph, the corpus or a passage",
                       supports=supports)
    top = [s for s in supports if s.key() == best]
    detail = (f"{best[0]} question entities joined by graph edges, {best[1]} more by inferred support, "
              f"co-occurrence {best[2]}, {best[3]} passages")
    if len(top) > 1:
        names = ", ".join(s.option for s in top)
        return Verdict(choice=None, tied=[s.option for s in top], reason=f"tie between {names} ({detail} each)",
                       supports=supports)
    winner = top[0]
    runner_up = max((s.key() for s in supports if s is not winner), default=(0, 0, 0, 0))
    decisive = next(k for k in range(4) if best[k] != runner_up[k])
    kind: SupportKind
    confidence: float | None = 1.0
    if decisive == 0:
        kind = "direct"
    elif decisive == 1:
        best_inferred = max(winner.inferred, key=lambda e: e.confidence or 0.0)
        kind = best_inferred.support or "ontology"  # type: ignore[assignment]
        confidence = best_inferred.confidence
    else:
        kind, confidence = ("corpus" if decisive == 2 else "passage"), None
    return Verdict(choice=winner.option, reason=f"{winner.option}: {detail} (decided by {kind} support)",
                   supports=supports, support=kind, confidence=confidence)
