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

Support is direct or inferred, and every verdict says which (``Verdict.support``, ``Evidence.support``):

* ``direct``: an edge joins the named entities.
* ``ontology``: an edge joins a subtype of a named disease (an is-a descendant within
  ``evidence_isa_depth`` steps, is-a edges other than the supporting one) to the other entity: an
  association of forms of breast carcinoma supports one of breast carcinoma. For a disease pair, an is-a
  path between them supports it too. A parent's edge supports a claim about a subtype only where its
  source is in ``evidence_inherited_sources`` (empty by default: no source here says its associations
  hold for subtypes). Each such support names its path (the edge, then the is-a steps) and has its own
  confidence, ``evidence_isa_step_confidence`` to the power of the steps.
* ``class``: an edge joins a member of a named pharmacologic class (``INCLUDES_PCiC``) to the other
  entity (confidence ``evidence_class_confidence``).
* MCQ tie-breakers: ``corpus`` (co-occurrence counts), ``passage`` (retrieved passages).
* ``absence`` (off by default): a true/false claim no edge supports is false where the graph's measured
  coverage of the edges between its entities' labels is at least ``evidence_absence_min_coverage``
  (:mod:`kgrag.evidence.absence`); the verdict names the estimate and its sources.

Inferred support only ever ranks below direct support: an MCQ option's key is (question entities joined
directly, joined by inference, co-occurrence, passages), and a true/false claim is checked for inferred
support only where no direct edge joins its entities. So an answer that direct edges decide is the same
with inference on. Batched: is-a walks in memory (:class:`kgrag.evidence.ontology.Ontology` reads the graph's is-a
edges once per process) and one class-member query for the batch, then ONE ``edges_between`` call for all
inferred candidates.

Free-text answers get :class:`ClaimVerdict` per entity pair of each sentence: ``graph`` (an edge,
with its sources), ``inferred`` (an edge of a subtype, or an is-a path; with the path), ``corpus``
(co-occurrence at or above ``cooccur_threshold``), ``unsupported``, or ``unknown`` when no edge joins
them and the corpus statistics failed (the error is in ``note``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from kgrag.evidence.absence import RelationCoverage, label_pair, relation_coverage
from kgrag.graph.base import GraphStore
from kgrag.retrieval.graph_context import edge_evidence, pair_index
from kgrag.graph.schema import EdgeView, edge_sentence
from kgrag.evidence.ontology import ISA, IsaPath, Ontology
from kgrag.settings import Settings
from kgrag.text import normalise
from kgrag.types import ClaimVerdict, Evidence, LinkedEntity, OptionFinding, Question, SupportKind
from quco.stats.base import LOOKUP_FAILURES, CorpusStats

CLASS_MEMBER = "INCLUDES_PCiC"

NEGATION = re.compile(r"\b(not|no|never|isn't|doesn't|don't|cannot)\b", re.IGNORECASE)
IDENTIFIER = re.compile(r"\b(DOID|MONDO|UMLS|MESH|OMIM|HP|EFO):\s?([A-Z]?\d+)\b", re.IGNORECASE)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


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


def _claim_entities(ents: Sequence[LinkedEntity]) -> list[LinkedEntity]:
    """The entities a claim is about: not an ancestor linked only because a longer mention names it."""
    return [e for e in ents if e.within is None]


class EvidenceChecker:
    """Batched support and verdicts over a graph store, optional corpus statistics and retrieved passages.

    Example::

        checker = EvidenceChecker(store, stats=None, isa_depth=2)
        [verdict] = checker.decide([question], [entities], [option_nodes], [evidence])
        verdict.choice, verdict.support, verdict.reason
    """

    def __init__(self, store: GraphStore | None, stats: CorpusStats | None = None, *, cooccur_window: int = 1000,
                 cooccur_threshold: int = 1, isa_depth: int = 2, isa_step_confidence: float = 0.8,
                 inherited_sources: Sequence[str] = (), class_support: bool = True,
                 class_confidence: float = 0.7, absence_min_coverage: float | None = None,
                 ontology: Ontology | None = None) -> None:
        if ontology is not None and ontology.depth != isa_depth:
            raise ValueError(f"the ontology walks {ontology.depth} is-a steps but isa_depth is {isa_depth}")
        self.store = store
        self.stats = stats
        self.window = cooccur_window
        self.threshold = cooccur_threshold
        self.ontology = ontology or Ontology(store, isa_depth)  # given: one is-a hierarchy in memory, shared
        self.step_confidence = isa_step_confidence
        self.inherited_sources = set(inherited_sources)
        self.class_support = class_support
        self.class_confidence = class_confidence
        self.absence_min_coverage = absence_min_coverage
        self._coverage: dict[tuple[str, str], RelationCoverage] | None = None  # measured on first need

    @classmethod
    def from_settings(cls, store: GraphStore | None, stats: CorpusStats | None, settings: Settings, *,
                      ontology: Ontology | None = None) -> "EvidenceChecker":
        """The checker the settings describe (``cooccur_*``, ``evidence_*``); ``ontology``: one to share (the
        linker's: the is-a hierarchy is then read into memory once)."""
        return cls(store, stats, cooccur_window=settings.cooccur_window, cooccur_threshold=settings.cooccur_threshold,
                   isa_depth=settings.evidence_isa_depth, isa_step_confidence=settings.evidence_isa_step_confidence,
                   inherited_sources=settings.evidence_inherited_sources, class_support=settings.evidence_class_support,
                   class_confidence=settings.evidence_class_confidence,
                   absence_min_coverage=settings.evidence_absence_min_coverage, ontology=ontology)

    def coverage(self) -> dict[tuple[str, str], RelationCoverage]:
        """Each label pair's measured coverage in the graph (one pass over its edges, the first time)."""
        if self._coverage is None:
            self._coverage = relation_coverage(self.store) if self.store is not None else {}
        return self._coverage

    # -- inference -----------------------------------------------------------------------------
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

    # -- options -------------------------------------------------------------------------------
    def decide(self, qs: Sequence[Question], entities: Sequence[Sequence[LinkedEntity]],
               option_nodes: Sequence[dict[str, list[str]]], evidence: Sequence[Sequence[Evidence]]) -> list[Verdict]:
        """One verdict per question (questions without options get an abstaining verdict)."""
        claim_ents = [_claim_entities(ents) for ents in entities]
        ids_a = sorted({e.node_id for ents in claim_ents for e in ents})
        ids_b = sorted({n for opts in option_nodes for ids in opts.values() for n in ids} | set(ids_a))
        edges = self.store.edges_between(ids_a, ids_b) if self.store is not None and ids_a else []
        index = pair_index(edges)
        # inference only where direct edges leave the question open (it can never outrank them)
        open_qs = [i for i, q in enumerate(qs) if self._needs_inference(q, claim_ents[i], option_nodes[i], index)]
        named = {e.node_id: e.label for i in open_qs for e in claim_ents[i]}
        targets = set(named) | {n for i in open_qs for ids in option_nodes[i].values() for n in ids}
        inferred = self.infer(named, targets) if named else {}
        tf_nodes = self._identifier_nodes(qs, claim_ents)
        cooc, stats_error = self._option_cooccurrence(qs, claim_ents)
        verdicts = []
        for i, q in enumerate(qs):
            if q.task == "true_false":
                verdicts.append(self._true_false(q, claim_ents[i], index, inferred, tf_nodes))
            elif q.task == "mcq" and q.options:
                verdict = self._mcq(q, claim_ents[i], option_nodes[i], index, inferred, evidence[i], cooc.get(i, {}))
                if stats_error:
                    verdict.reason += f" (corpus co-occurrence unavailable: {stats_error})"
                verdicts.append(verdict)
            else:
                verdicts.append(Verdict(choice=None, reason=f"no evidence check for task {q.task!r}"))
        return verdicts

    @staticmethod
    def _needs_inference(q: Question, ents: Sequence[LinkedEntity], nodes: dict[str, list[str]],
                         index: dict[tuple[str, str], list[EdgeView]]) -> bool:
        """True where direct edges do not decide: a true/false claim no edge joins, an MCQ tied at the top."""
        if q.task == "true_false":
            return not IDENTIFIER.search(q.text) and not any(
                (a.node_id, b.node_id) in index for k, a in enumerate(ents) for b in ents[k + 1:]
                if a.node_id != b.node_id and a.mention != b.mention)
        if q.task == "mcq" and q.options:
            joined = sorted((sum(1 for e in ents if any((e.node_id, n) in index for n in nodes.get(o, [])))
                             for o in q.options), reverse=True)
            return len(joined) < 2 or joined[0] == joined[1]
        return False

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

    def _identifier_nodes(self, qs, entities) -> dict[str, Any]:
        """Linked nodes of statements that state an identifier (for their xrefs), in ONE lookup."""
        wanted = sorted({e.node_id for q, ents in zip(qs, entities) if q.task == "true_false" and IDENTIFIER.search(q.text)
                         for e in ents})
        if not wanted or self.store is None:
            return {}
        return {n.id: n for n in self.store.get_nodes(wanted)}

    def _true_false(self, q: Question, ents: Sequence[LinkedEntity], index, inferred: dict[tuple[str, str], list[Inferred]],
                    nodes: dict[str, Any]) -> Verdict:
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
                return Verdict(choice=yes, reason=f"identifier {claimed} matches the linked node ({names})",
                               support="identifier", confidence=1.0)
            return Verdict(choice=no, reason=f"identifier {claimed} contradicts the linked node ({names})",
                           support="identifier", confidence=1.0)
        pairs = [(a, b) for k, a in enumerate(ents) for b in ents[k + 1:]
                 if a.node_id != b.node_id and a.mention != b.mention]  # one mention's nodes are not a claim
        neg = " (statement negated)" if negated else ""
        edges = [edge for a, b in pairs for edge in index.get((a.node_id, b.node_id), [])]
        if edges:
            support = OptionSupport(option=yes, entities_joined=sorted({e.node_id for e in ents}),
                                    edges=[edge_evidence(e, decided=True) for e in edges])
            return Verdict(choice=yes, reason=f"graph edge {edges[0].key} supports the claim{neg}", supports=[support],
                           support="direct", confidence=1.0)
        found = sorted((item for a, b in pairs for item in inferred.get((a.node_id, b.node_id), [])),
                       key=lambda x: -x.confidence)
        if found:
            support = OptionSupport(option=yes, entities_inferred=sorted({x.named for x in found}),
                                    inferred=[x.evidence(None) for x in found])
            best = found[0]
            return Verdict(choice=yes, reason=f"inferred: {best.explain()} supports the claim{neg}", supports=[support],
                           support=best.kind, confidence=best.confidence)
        if len(ents) < 2:
            return Verdict(choice=None, reason=f"{len(ents)} entity linked; a claim needs two")
        absent = self._absence(pairs)
        if absent is not None:
            return Verdict(choice=no, reason=f"no graph edge joins the statement's entities, directly or by inference, "
                           f"and the graph is measured complete enough for them: {absent.explain()}{neg}",
                           support="absence", confidence=absent.coverage)
        return Verdict(choice=None, reason="no graph edge joins the statement's entities, directly or by inference; "
                       "unsupported (abstain)")

    def _absence(self, pairs: Sequence[tuple[LinkedEntity, LinkedEntity]]) -> RelationCoverage | None:
        """The least-covered relation of the claim's entity pairs, if every one is covered at least
        ``absence_min_coverage`` (absence then counts against the claim); None otherwise, or when absence is off."""
        if self.absence_min_coverage is None or not pairs:
            return None
        coverage = self.coverage()
        found = [coverage.get(label_pair(a.label, b.label)) for a, b in pairs]
        if any(c is None or c.coverage is None or c.coverage < self.absence_min_coverage for c in found):
            return None
        return min(found, key=lambda c: c.coverage)  # type: ignore[arg-type, return-value]

    # -- free-text claims ----------------------------------------------------------------------
    def claims(self, texts: Sequence[str], linked_sentences: Sequence[Sequence[Sequence[LinkedEntity]]],
               sentences: Sequence[Sequence[str]]) -> list[list[ClaimVerdict]]:
        """Verdicts for every entity pair of every sentence; ONE graph query and ONE cooccur call for all."""
        jobs = []  # (answer index, sentence, head entity, tail entity)
        for i, (sents, links) in enumerate(zip(sentences, linked_sentences)):
            for sentence, linked in zip(sents, links):
                ents = _claim_entities(linked)
                for k, a in enumerate(ents):
                    for b in ents[k + 1:]:
                        if a.node_id != b.node_id and a.mention != b.mention:
                            jobs.append((i, sentence, a, b))
        out: list[list[ClaimVerdict]] = [[] for _ in texts]
        if not jobs:
            return out
        ids = sorted({e.node_id for _, _, a, b in jobs for e in (a, b)})
        index = pair_index(self.store.edges_between(ids, ids)) if self.store is not None else {}
        open_jobs = [(a, b) for _, _, a, b in jobs if (a.node_id, b.node_id) not in index]
        named = {e.node_id: e.label for a, b in open_jobs for e in (a, b)}
        inferred = self.infer(named, set(named)) if open_jobs else {}
        unknown = sorted({(a.name, b.name) for a, b in open_jobs if (a.node_id, b.node_id) not in inferred})
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
                                           sources=sorted({s for e in edges for s in e.sources}),
                                           path=[edges[0].key], confidence=1.0))
                continue
            found = inferred.get((a.node_id, b.node_id))
            if found:
                best = found[0]
                out[i].append(ClaimVerdict(sentence=sentence, head=a.name, tail=b.name, verdict="inferred",
                                           sources=sorted({s for x in found for s in x.evidence(None).sources}),
                                           path=best.path, confidence=best.confidence, note=best.explain()))
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
