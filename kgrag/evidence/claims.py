"""Claim verdicts for free-text answers: each entity pair named in a sentence, checked against graph and corpus.

:class:`~kgrag.types.ClaimVerdict` per entity pair of each sentence: ``graph`` (an edge, with its sources),
``inferred`` (an edge of a subtype, or an is-a path; with the path), ``corpus`` (co-occurrence at or above
``cooccur_threshold``), ``unsupported``, or ``unknown`` when no edge joins them and the corpus statistics
failed (the error is in ``note``). ONE ``edges_between`` call and ONE ``cooccur`` call for the whole batch.

Example::

    [verdicts] = claim_verdicts(store, stats, inference, ["..."], [[linked]], [["Psoriasis is linked to HLA-B."]])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kgrag.evidence.inference import Inference
from kgrag.graph.base import GraphStore
from kgrag.retrieval.graph_context import pair_index
from kgrag.types import ClaimVerdict, LinkedEntity
from quco.stats.base import LOOKUP_FAILURES, CorpusStats

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()]


def claim_entities(ents: Sequence[LinkedEntity]) -> list[LinkedEntity]:
    """The entities a claim is about: not an ancestor linked only because a longer mention names it."""
    return [e for e in ents if e.within is None]


def claim_verdicts(store: GraphStore | None, stats: CorpusStats | None, inference: Inference, texts: Sequence[str],
                   linked_sentences: Sequence[Sequence[Sequence[LinkedEntity]]], sentences: Sequence[Sequence[str]],
                   *, window: int = 1000, threshold: int = 1) -> list[list[ClaimVerdict]]:
    """Verdicts for every entity pair of every sentence; ONE graph query and ONE cooccur call for all."""
    jobs = []  # (answer index, sentence, head entity, tail entity)
    for i, (sents, links) in enumerate(zip(sentences, linked_sentences)):
        for sentence, linked in zip(sents, links):
            ents = claim_entities(linked)
            for k, a in enumerate(ents):
                for b in ents[k + 1:]:
                    if a.node_id != b.node_id and a.mention != b.mention:
                        jobs.append((i, sentence, a, b))
    out: list[list[ClaimVerdict]] = [[] for _ in texts]
    if not jobs:
        return out
    ids = sorted({e.node_id for _, _, a, b in jobs for e in (a, b)})
    index = pair_index(store.edges_between(ids, ids)) if store is not None else {}
    open_jobs = [(a, b) for _, _, a, b in jobs if (a.node_id, b.node_id) not in index]
    named = {e.node_id: e.label for a, b in open_jobs for e in (a, b)}
    inferred = inference.infer(named, set(named)) if open_jobs else {}
    unknown = sorted({(a.name, b.name) for a, b in open_jobs if (a.node_id, b.node_id) not in inferred})
    counts: dict[tuple[str, str], int] = {}
    stats_error: str | None = None
    if unknown and stats is not None:
        try:
            counts = dict(zip(unknown, stats.cooccur(unknown, window)))
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
        verdict = "corpus" if n is not None and n >= threshold else "unsupported"
        note = None if stats is not None else "no corpus statistics index; graph checked only"
        out[i].append(ClaimVerdict(sentence=sentence, head=a.name, tail=b.name, verdict=verdict, cooccurrence=n, note=note))
    return out
