"""The evidence checker: one object the answer path asks to decide options and to check claims.

It holds the settings' evidence knobs and runs each check batched over the graph store and the corpus
statistics; each job is its own module:

* :mod:`kgrag.evidence.options` (MCQ): the option joined by graph edges to the most question entities, ties
  broken by inferred support, corpus co-occurrence, then passages; and the :class:`Verdict` every check returns;
* :mod:`kgrag.evidence.true_false`: a statement's entities joined by an edge, a stated identifier checked
  against the linked node, absence where it is measured to count; "not" negates;
* :mod:`kgrag.evidence.inference`: support through a stand-in (a subtype of a named disease, a member of a
  named pharmacologic class), each with its path and its own confidence;
* :mod:`kgrag.evidence.claims`: the entity pairs of a free-text answer's sentences, each with a verdict.

Selection modes (``settings.selection_mode``), named in every Answer:

* ``llm``: the generator's option scores alone.
* ``evidence``: support alone. MCQ: the best-supported option; a tie at the top or no support at all
  abstains. True/false: a supported claim is True (False when negated); a contradicted identifier is
  False (True when negated); an unsupported claim abstains (no closed-world guess).
* ``llm+evidence``: lexicographic, no fitted weights: where evidence decides, its choice; where it
  is tied, the LLM chooses among the tied options only; where it abstains, the LLM's choice. So on
  rows without evidence it is exactly ``llm``.

Support is direct or inferred, and every verdict says which (``Verdict.support``, ``Evidence.support``):
``direct``, ``ontology``, ``class``, and for MCQ tie-breakers ``corpus`` and ``passage``; ``identifier``;
``absence`` (off by default, :mod:`kgrag.evidence.absence`). Inferred support is asked for only where direct
edges leave a question open (a true/false claim no edge joins, an MCQ tied at the top), so it never outranks
them: an answer that direct edges decide is the same with inference on.

Example::

    checker = EvidenceChecker(store, stats=None, isa_depth=2)
    [verdict] = checker.decide([question], [entities], [option_nodes], [evidence])
    verdict.choice, verdict.support, verdict.reason
"""

from __future__ import annotations

from collections.abc import Sequence

from kgrag.evidence.absence import AbsenceRule
from kgrag.evidence.claims import claim_entities, claim_verdicts
from kgrag.evidence.inference import Inference
from kgrag.graph.ontology import Ontology
from kgrag.evidence.options import Verdict, mcq_needs_inference, mcq_verdict, option_cooccurrence
from kgrag.evidence.true_false import identifier_nodes, tf_needs_inference, true_false_verdict
from kgrag.graph.base import GraphStore
from kgrag.retrieval.graph_context import pair_index
from kgrag.settings import Settings
from kgrag.types import ClaimVerdict, Evidence, LinkedEntity, Question
from quco.stats.base import CorpusStats


class EvidenceChecker:
    """Batched verdicts over a graph store, optional corpus statistics and retrieved passages."""

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
        self.inference = Inference(store, ontology or Ontology(store, isa_depth),  # given: one is-a hierarchy, shared
                                   step_confidence=isa_step_confidence, inherited_sources=inherited_sources,
                                   class_support=class_support, class_confidence=class_confidence)
        self.absence = AbsenceRule(store, absence_min_coverage)

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

    def decide(self, qs: Sequence[Question], entities: Sequence[Sequence[LinkedEntity]],
               option_nodes: Sequence[dict[str, list[str]]], evidence: Sequence[Sequence[Evidence]]) -> list[Verdict]:
        """One verdict per question (questions without options get an abstaining verdict): ONE ``edges_between``
        call for the batch's direct edges, inference for the questions they leave open, ONE ``cooccur`` call."""
        claim_ents = [claim_entities(ents) for ents in entities]
        ids_a = sorted({e.node_id for ents in claim_ents for e in ents})
        ids_b = sorted({n for opts in option_nodes for ids in opts.values() for n in ids} | set(ids_a))
        edges = self.store.edges_between(ids_a, ids_b) if self.store is not None and ids_a else []
        index = pair_index(edges)
        # inference only where direct edges leave the question open (it can never outrank them)
        open_qs = [i for i, q in enumerate(qs)
                   if (q.task == "true_false" and tf_needs_inference(q, claim_ents[i], index))
                   or (q.task == "mcq" and q.options and mcq_needs_inference(q, claim_ents[i], option_nodes[i], index))]
        named = {e.node_id: e.label for i in open_qs for e in claim_ents[i]}
        targets = set(named) | {n for i in open_qs for ids in option_nodes[i].values() for n in ids}
        inferred = self.inference.infer(named, targets) if named else {}
        tf_nodes = identifier_nodes(self.store, qs, claim_ents)
        cooc, stats_error = option_cooccurrence(self.stats, self.window, qs, claim_ents)
        verdicts = []
        for i, q in enumerate(qs):
            if q.task == "true_false":
                verdicts.append(true_false_verdict(q, claim_ents[i], index, inferred, tf_nodes, self.absence))
            elif q.task == "mcq" and q.options:
                verdict = mcq_verdict(q, claim_ents[i], option_nodes[i], index, inferred, evidence[i], cooc.get(i, {}))
                if stats_error:
                    verdict.reason += f" (corpus co-occurrence unavailable: {stats_error})"
                verdicts.append(verdict)
            else:
                verdicts.append(Verdict(choice=None, reason=f"no evidence check for task {q.task!r}"))
        return verdicts

    def claims(self, texts: Sequence[str], linked_sentences: Sequence[Sequence[Sequence[LinkedEntity]]],
               sentences: Sequence[Sequence[str]]) -> list[list[ClaimVerdict]]:
        """Verdicts for every entity pair of every sentence (:func:`kgrag.evidence.claims.claim_verdicts`)."""
        return claim_verdicts(self.store, self.stats, self.inference, texts, linked_sentences, sentences,
                              window=self.window, threshold=self.threshold)
