"""True/false statements as claims: the statement's linked entities joined by an edge, or a stated identifier.

* a stated identifier (``DOID:1234``) is checked against the linked node's id and xrefs: a match is True, a
  mismatch False;
* otherwise a graph edge joining two of the statement's entities (named by different mentions) makes it True;
  failing that, inferred support (:mod:`kgrag.evidence.inference`) does, at its own confidence;
* a claim no edge supports is False only where absence counts (:class:`kgrag.evidence.absence.AbsenceRule`,
  off by default); otherwise the verdict chooses nothing (no closed-world guess);
* "not" (and its kin) in the statement swaps True and False.

Example::

    verdict = true_false_verdict(question, entities, pair_index(edges), {}, {}, AbsenceRule(store, None))
    verdict.choice, verdict.support, verdict.reason
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kgrag.evidence.absence import AbsenceRule
from kgrag.evidence.inference import Inferred
from kgrag.evidence.options import OptionSupport, Verdict
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import EdgeView
from kgrag.retrieval.graph_context import edge_evidence
from kgrag.types import LinkedEntity, Question

NEGATION = re.compile(r"\b(not|no|never|isn't|doesn't|don't|cannot)\b", re.IGNORECASE)
IDENTIFIER = re.compile(r"\b(DOID|MONDO|UMLS|MESH|OMIM|HP|EFO):\s?([A-Z]?\d+)\b", re.IGNORECASE)


def tf_needs_inference(q: Question, ents: Sequence[LinkedEntity], index: dict[tuple[str, str], list[EdgeView]]) -> bool:
    """True where no stated identifier and no direct edge decides the statement (inference may then support it)."""
    return not IDENTIFIER.search(q.text) and not any(
        (a.node_id, b.node_id) in index for k, a in enumerate(ents) for b in ents[k + 1:]
        if a.node_id != b.node_id and a.mention != b.mention)


def identifier_nodes(store: GraphStore | None, qs: Sequence[Question],
                     entities: Sequence[Sequence[LinkedEntity]]) -> dict[str, Any]:
    """Linked nodes of statements that state an identifier (for their xrefs), in ONE lookup."""
    wanted = sorted({e.node_id for q, ents in zip(qs, entities) if q.task == "true_false" and IDENTIFIER.search(q.text)
                     for e in ents})
    if not wanted or store is None:
        return {}
    return {n.id: n for n in store.get_nodes(wanted)}


def true_false_verdict(q: Question, ents: Sequence[LinkedEntity], index: dict[tuple[str, str], list[EdgeView]],
                       inferred: dict[tuple[str, str], list[Inferred]], nodes: dict[str, Any],
                       absence: AbsenceRule) -> Verdict:
    """The verdict on one true/false statement; ``nodes``: the linked nodes of a statement that states an
    identifier (:func:`identifier_nodes`)."""
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
    absent = absence.against(pairs)
    if absent is not None:
        return Verdict(choice=no, reason=f"no graph edge joins the statement's entities, directly or by inference, "
                       f"and the graph is measured complete enough for them: {absent.explain()}{neg}",
                       support="absence", confidence=absent.coverage)
    return Verdict(choice=None, reason="no graph edge joins the statement's entities, directly or by inference; "
                   "unsupported (abstain)")
