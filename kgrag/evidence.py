"""Evidence checks: support records per option, claim verdicts, and evidence-based answer selection.

For a batch of questions with options (MCQ, true/false):

* MCQ: for each option, the graph edges joining its node(s) to the question's linked entities (ONE
  ``edges_between`` call for the batch), the retrieved passages that mention the option together with
  a question entity, and corpus co-occurrence counts (ONE ``cooccur`` call, when statistics exist).
* True/false statements are claims: the statement's linked entities are checked for an edge between
  them (the same single ``edges_between`` call); a stated identifier (``DOID:1234``) is checked
  against the linked node's id and xrefs; "not" negates the claim.

Selection modes (``settings.selection_mode``), named in every Answer:

* ``llm``: the generator's option scores alone.
* ``evidence``: support alone. MCQ: the option joined by graph edges to the most question entities,
  ties broken by corpus co-occurrence, then passages; a tie at the top or no support at all
  abstains. True/false: a supported claim is True (False when negated); a contradicted identifier is
  False (True when negated); an unsupported claim abstains (no closed-world guess).
* ``llm+evidence``: lexicographic, no fitted weights: where evidence decides, its choice; where it
  is tied, the LLM chooses among the tied options only; where it abstains, the LLM's choice. So on
  rows without evidence it is exactly ``llm``.

Free-text answers get :class:`ClaimVerdict` per entity pair of each sentence: ``graph`` (an edge,
with its sources), ``corpus`` (co-occurrence at or above ``cooccur_threshold``), ``unsupported``, or
``unknown`` when no edge joins them and the corpus statistics failed (the error is in ``note``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from kgrag.graph.base import GraphStore
from kgrag.context import edge_evidence, pair_index
from kgrag.graph.schema import EdgeView
from kgrag.text import normalise
from kgrag.types import ClaimVerdict, Evidence, LinkedEntity, Question
from quco.stats.base import LOOKUP_FAILURES, CorpusStats

NEGATION = re.compile(r"\b(not|no|never|isn't|doesn't|don't|cannot)\b", re.IGNORECASE)
IDENTIFIER = re.compile(r"\b(DOID|MONDO|UMLS|MESH|OMIM|HP|EFO):\s?([A-Z]?\d+)\b", re.IGNORECASE)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


class OptionSupport(BaseModel):
    """What supports one option of one question."""

    option: str
    entities_joined: list[str] = Field(default_factory=list, description="Question entity ids joined by a graph edge")
    edges: list[Evidence] = Field(default_factory=list)
    passages: list[str] = Field(default_factory=list, description="Ids of retrieved passages naming it with an entity")
    cooccurrence: int | None = None

    @property
    def graph_score(self) -> int:
        return len(self.entities_joined)


class Verdict(BaseModel):
    """The evidence's decision for one question."""

    choice: str | None
    tied: list[str] = Field(default_factory=list, description="Options tied at the top (the LLM may choose among them)")
    reason: str
    supports: list[OptionSupport] = Field(default_factory=list)


class EvidenceChecker:
    """Batched support and verdicts over a graph store, optional corpus statistics and retrieved passages.

    Example::

        checker = EvidenceChecker(store, stats=None)
        [verdict] = checker.decide([question], [entities], [option_nodes], [evidence])
        verdict.choice, verdict.reason
    """

    def __init__(self, store: GraphStore | None, stats: CorpusStats | None = None, *, cooccur_window: int = 1000,
                 cooccur_threshold: int = 1) -> None:
        self.store = store
        self.stats = stats
        self.window = cooccur_window
        self.threshold = cooccur_threshold

    # -- options -------------------------------------------------------------------------------
    def decide(self, qs: Sequence[Question], entities: Sequence[Sequence[LinkedEntity]],
               option_nodes: Sequence[dict[str, list[str]]], evidence: Sequence[Sequence[Evidence]]) -> list[Verdict]:
        """One verdict per question (questions without options get an abstaining verdict)."""
        ids_a = sorted({e.node_id for ents in entities for e in ents})
        ids_b = sorted({n for opts in option_nodes for ids in opts.values() for n in ids} | set(ids_a))
        edges = self.store.edges_between(ids_a, ids_b) if self.store is not None and ids_a else []
        index = pair_index(edges)
        tf_nodes = self._identifier_nodes(qs, entities)
        cooc, stats_error = self._option_cooccurrence(qs, entities)
        verdicts = []
        for i, q in enumerate(qs):
            if q.task == "true_false":
                verdicts.append(self._true_false(q, entities[i], index, tf_nodes))
            elif q.task == "mcq" and q.options:
                verdict = self._mcq(q, entities[i], option_nodes[i], index, evidence[i], cooc.get(i, {}))
                if stats_error:
                    verdict.reason += f" (corpus co-occurrence unavailable: {stats_error})"
                verdicts.append(verdict)
            else:
                verdicts.append(Verdict(choice=None, reason=f"no evidence check for task {q.task!r}"))
        return verdicts

    def _option_cooccurrence(self, qs, entities) -> tuple[dict[int, dict[str, int]], str | None]:
        """Per question, option -> summed co-occurrence with the question's entities; and the lookup's error, if any."""
        if self.stats is None:
            return {}, None
        pairs = {(i, o, e.name) for i, q in enumerate(qs) if q.task == "mcq" for o in q.options or [] for e in entities[i]}
        unique = sorted({(o, name) for _, o, name in pairs})
        try:
            counts = dict(zip(unique, self.stats.cooccur(unique, self.window))) if unique else {}
        except LOOKUP_FAILURES as exc:  # a tie-breaker only; the failure is reported in each verdict
            return {}, f"{type(exc).__name__}: {exc}"
        out: dict[int, dict[str, int]] = {}
        for i, o, name in pairs:
            out.setdefault(i, {})
            out[i][o] = out[i].get(o, 0) + int(counts.get((o, name), 0))
        return out, None

    def _mcq(self, q: Question, ents: Sequence[LinkedEntity], nodes: dict[str, list[str]],
             index: dict[tuple[str, str], list[EdgeView]], evidence: Sequence[Evidence], cooc: dict[str, int]) -> Verdict:
        supports = []
        passages = [e for e in evidence if e.kind == "text"]
        for option in q.options or []:
            support = OptionSupport(option=option, cooccurrence=cooc.get(option) if cooc else None)
            for entity in ents:
                for node in nodes.get(option, []):
                    found = index.get((entity.node_id, node), [])
                    if found and entity.node_id not in support.entities_joined:
                        support.entities_joined.append(entity.node_id)
                    support.edges.extend(edge_evidence(edge, option, score=1.0) for edge in found
                                         if edge.key not in {x.id for x in support.edges})
            opt_norm = f" {normalise(option)} "
            for passage in passages:
                text = f" {normalise(passage.text)} "
                if opt_norm in text and any(f" {normalise(e.name)} " in text for e in ents):
                    support.passages.append(passage.id)
            supports.append(support)

        def key(s: OptionSupport) -> tuple[int, int, int]:
            return (s.graph_score, s.cooccurrence or 0, len(s.passages))

        best = max(key(s) for s in supports)
        if best == (0, 0, 0):
            return Verdict(choice=None, reason="no option is supported by the graph, the corpus or a passage",
                           supports=supports)
        top = [s.option for s in supports if key(s) == best]
        detail = f"{best[0]} question entities joined by graph edges, co-occurrence {best[1]}, {best[2]} passages"
        if len(top) == 1:
            return Verdict(choice=top[0], reason=f"{top[0]}: {detail}", supports=supports)
        return Verdict(choice=None, tied=top, reason=f"tie between {', '.join(top)} ({detail} each)", supports=supports)

    def _identifier_nodes(self, qs, entities) -> dict[str, Any]:
        """Linked nodes of statements that state an identifier (for their xrefs), in ONE lookup."""
        wanted = sorted({e.node_id for q, ents in zip(qs, entities) if q.task == "true_false" and IDENTIFIER.search(q.text)
                         for e in ents})
        if not wanted or self.store is None:
            return {}
        return {n.id: n for n in self.store.get_nodes(wanted)}

    def _true_false(self, q: Question, ents: Sequence[LinkedEntity], index, nodes: dict[str, Any]) -> Verdict:
        negated = bool(NEGATION.search(q.text))
        yes, no = ("False", "True") if negated else ("True", "False")
        stated = IDENTIFIER.search(q.text)
        if stated:
            claimed = f"{stated.group(1).upper()}:{stated.group(2)}"
            linked = [e for e in ents if e.label == "Disease"] or list(ents)
            if not linked:
                return Verdict(choice=None, reason=f"states {claimed} but no entity was linked")
            ids = set()
            for e in linked:
                ids.add(e.node_id.upper())
                node = nodes.get(e.node_id)
                ids.update(x.upper() for x in (node.xrefs if node else []))
            names = ", ".join(f"{e.name} = {e.node_id}" for e in linked)
            if claimed.upper() in ids:
                return Verdict(choice=yes, reason=f"identifier {claimed} matches the linked node ({names})")
            return Verdict(choice=no, reason=f"identifier {claimed} contradicts the linked node ({names})")
        pairs = [(a, b) for k, a in enumerate(ents) for b in ents[k + 1:]
                 if a.node_id != b.node_id and a.mention != b.mention]  # one mention's nodes are not a claim
        edges = [edge for a, b in pairs for edge in index.get((a.node_id, b.node_id), [])]
        if edges:
            support = OptionSupport(option=yes, entities_joined=sorted({e.node_id for e in ents}),
                                    edges=[edge_evidence(e, score=1.0) for e in edges])
            neg = " (statement negated)" if negated else ""
            return Verdict(choice=yes, reason=f"graph edge {edges[0].key} supports the claim{neg}", supports=[support])
        if len(ents) < 2:
            return Verdict(choice=None, reason=f"{len(ents)} entity linked; a claim needs two")
        return Verdict(choice=None, reason="no graph edge joins the statement's entities; unsupported (abstain)")

    # -- free-text claims ----------------------------------------------------------------------
    def claims(self, texts: Sequence[str], linked_sentences: Sequence[Sequence[Sequence[LinkedEntity]]],
               sentences: Sequence[Sequence[str]]) -> list[list[ClaimVerdict]]:
        """Verdicts for every entity pair of every sentence; ONE graph query and ONE cooccur call for all."""
        jobs = []  # (answer index, sentence, head entity, tail entity)
        for i, (sents, links) in enumerate(zip(sentences, linked_sentences)):
            for sentence, ents in zip(sents, links):
                for k, a in enumerate(ents):
                    for b in ents[k + 1:]:
                        if a.node_id != b.node_id and a.mention != b.mention:
                            jobs.append((i, sentence, a, b))
        out: list[list[ClaimVerdict]] = [[] for _ in texts]
        if not jobs:
            return out
        ids = sorted({e.node_id for _, _, a, b in jobs for e in (a, b)})
        index = pair_index(self.store.edges_between(ids, ids)) if self.store is not None else {}
        unknown = sorted({(a.name, b.name) for _, _, a, b in jobs if (a.node_id, b.node_id) not in index})
        counts: dict[tuple[str, str], int] = {}
        stats_error: str | None = None
        if unknown and self.stats is not None:
            try:
                counts = dict(zip(unknown, self.stats.cooccur(unknown, self.window)))
            except LOOKUP_FAILURES as exc:  # recorded in each verdict below as "unknown"
                stats_error = f"corpus statistics failed: {type(exc).__name__}: {exc}"
        for i, sentence, a, b in jobs:
            edges = index.get((a.node_id, b.node_id), [])
            if edges:
                out[i].append(ClaimVerdict(sentence=sentence, head=a.name, tail=b.name, verdict="graph",
                                           sources=sorted({s for e in edges for s in e.sources})))
                continue
            n = counts.get((a.name, b.name))
            if stats_error:
                out[i].append(ClaimVerdict(sentence=sentence, head=a.name, tail=b.name, verdict="unknown", note=stats_error))
                continue
            verdict = "corpus" if n is not None and n >= self.threshold else "unsupported"
            note = None if self.stats is not None else "no corpus statistics index; graph checked only"
            out[i].append(ClaimVerdict(sentence=sentence, head=a.name, tail=b.name, verdict=verdict, cooccurrence=n, note=note))
        return out


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()]
