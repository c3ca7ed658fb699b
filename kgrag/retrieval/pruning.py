"""Pruning as KG-RAG: keep the context most similar to the question, then fit it to a token budget.

Per group (a linked entity's neighbourhood): cosine similarity to the question; keep sentences at
or above ``max(percentile(similarities, prune_percentile), prune_floor)``, best first, at most
``context_volume / number of entity groups`` of them. Option-joining edges (group ``options``) come
first, in the order :func:`kgrag.retrieval.graph_context.gather_kg` ranked them, up to the whole volume; text passages (group ``text``) keep their retrieval
order, at most ``text_context_passages`` of them.

Then the budget (:func:`fit_budget`): a passage that repeats a kept passage (same text, or cosine at
least ``near_duplicate_cosine``) is dropped; with ``context_budget_tokens`` > 0 the kept items are
admitted option-joining edges first (in their order), then graph sentences and passages together by
similarity to the question, each while its line still fits the budget; the admitted items keep their
prompt order. Token counts are :func:`estimate_tokens` of each context line: a deterministic estimate
that needs no tokenizer (the generator may be a server, and the LangChain retrievers have none),
calibrated to lie above SmolLM2's count on the graph's sentences and the passages (by ~20-30 % on
average), so the prompt's real context stays within the budget.

With ``ranking=strength`` (the default) no graph sentence is embedded: :func:`prune_by_strength` orders each
entity's edges by relevance tier (:mod:`kgrag.retrieval.relevance`, decided per question and relation type) and
then by evidence strength (:mod:`kgrag.graph.strength`), and the budget lets the groups take turns (options
first, then each entity's best and the passages in rotation), so every entity of the question keeps its share.
``ranking=similarity`` is KG-RAG's per-sentence cosine, as described above.

Vectors come from the precomputed edge-vector store (:mod:`kgrag.indexes.edge_vectors`) or the Embedder's
content-hash cache, so an edge sentence is embedded once ever and pruning at query time is a matrix
product. The vectors are unit length, so every similarity is a
cosine: one that is not finite or beyond 1 + 1e-3 in magnitude comes from damaged vectors and is an
:class:`~kgrag.errors.ArtefactError` naming the embedding cache, never a score that keeps or drops evidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from kgrag.errors import ArtefactError
from kgrag.graph.strength import strength_of
from kgrag.retrieval.graph_context import Candidate
from kgrag.retrieval.relevance import ANSWERS, Asked
from kgrag.settings import Settings
from kgrag.types import Evidence


class Pruned(BaseModel):
    """One question's pruned context and what the budget did to it."""

    evidence: list[Evidence]
    dropped: int = Field(description="Candidates not kept: pruned, over the budget, or near-duplicates")
    tokens: int = Field(default=0, description="Estimated tokens of the kept context")
    budget_cut: int = Field(default=0, description="Items that passed pruning but not the token budget")
    budget_cut_tokens: int = 0
    near_duplicates: int = Field(default=0, description="Passages dropped as near-duplicates of kept ones")

    def trace(self, budget: int) -> str:
        """One trace line: what was kept and cut, in items and estimated tokens."""
        limit = f"budget {budget} tokens" if budget else "no budget"
        return (f"context: {len(self.evidence)} items, ~{self.tokens} tokens ({limit}); cut {self.budget_cut} "
                f"items (~{self.budget_cut_tokens} tokens) over the budget, {self.near_duplicates} "
                "near-duplicate passages")


def prune(question_vec: np.ndarray, candidates: Sequence[Candidate], vectors: np.ndarray,
          settings: Settings) -> tuple[list[Evidence], int]:
    """(kept evidence, with scores, in prompt order; number dropped). ``vectors[i]`` embeds ``candidates[i]``."""
    result = prune_detailed(question_vec, candidates, vectors, settings)
    return result.evidence, result.dropped


def prune_detailed(question_vec: np.ndarray, candidates: Sequence[Candidate], vectors: np.ndarray,
                   settings: Settings) -> Pruned:
    """:func:`prune` with the budget's account (:class:`Pruned`)."""
    if not candidates:
        return Pruned(evidence=[], dropped=0)
    with np.errstate(all="ignore"):  # damaged vectors: check_cosines says so, numpy need not warn
        sims = vectors @ question_vec
    check_cosines(sims, candidates, settings)
    groups, entity_groups, per_entity = _groups(candidates, settings)

    kept: list[int] = []
    if "options" in groups:
        kept.extend(groups["options"][: settings.context_volume])  # already ranked by gather_kg
    for group in entity_groups:
        idx = np.array(groups[group])
        threshold = max(float(np.percentile(sims[idx], settings.prune_percentile)), settings.prune_floor)
        passing = [int(i) for i in idx if sims[i] >= threshold]
        kept.extend(sorted(passing, key=lambda i: -sims[i])[:per_entity])
    if "text" in groups:
        kept.extend(groups["text"][: settings.text_context_passages])

    fitted = fit_budget(kept, candidates, sims, vectors, settings)
    evidence = [candidates[i].evidence.model_copy(update={"score": float(sims[i])}) for i in fitted.kept]
    return Pruned(evidence=evidence, dropped=len(candidates) - len(fitted.kept), tokens=fitted.tokens,
                  budget_cut=fitted.cut, budget_cut_tokens=fitted.cut_tokens, near_duplicates=fitted.near_duplicates)


def _groups(candidates: Sequence[Candidate], settings: Settings) -> tuple[dict[str, list[int]], list[str], int]:
    """Candidate indices by group; the entity groups (not ``options``, not ``text``); each one's share of
    ``context_volume``."""
    groups: dict[str, list[int]] = {}
    for i, cand in enumerate(candidates):
        groups.setdefault(cand.group, []).append(i)
    entity_groups = [g for g in groups if g not in ("options", "text")]
    return groups, entity_groups, max(1, settings.context_volume // max(1, len(entity_groups)))


def prune_by_strength(candidates: Sequence[Candidate], asked: Asked, vectors: np.ndarray,
                      settings: Settings) -> Pruned:
    """Relevance x strength: per entity group, edges by (tier, strength), at most ``context_volume / groups``;
    option-joining edges first as ranked; passages in retrieval order. ``vectors`` need only the passages' rows
    (near-duplicates); graph rows may be zero. Each kept edge scores ``tier + strength`` (0-4)."""
    if not candidates:
        return Pruned(evidence=[], dropped=0)
    groups, entity_groups, per_entity = _groups(candidates, settings)
    scores = np.zeros(len(candidates), dtype=np.float64)
    ranked: dict[str, list[int]] = {}
    if "options" in groups:
        ranked["options"] = groups["options"][: settings.context_volume]
        for i in ranked["options"]:
            edge = candidates[i].edge
            scores[i] = ANSWERS + 1 + (strength_of(edge) if edge is not None else 0.0)
    for group in entity_groups:
        for i in groups[group]:
            edge = candidates[i].edge
            scores[i] = (asked.relevance(edge, group) + strength_of(edge)) if edge is not None else 0.0
        ranked[group] = sorted(groups[group], key=lambda i: -scores[i])[:per_entity]
    if "text" in groups:
        ranked["text"] = groups["text"][: settings.text_context_passages]
        for i in ranked["text"]:
            scores[i] = candidates[i].evidence.score
    fitted = fit_budget_in_turns(ranked, candidates, vectors, settings)
    evidence = [candidates[i].evidence.model_copy(update={"score": float(scores[i])}) for i in fitted.kept]
    return Pruned(evidence=evidence, dropped=len(candidates) - len(fitted.kept), tokens=fitted.tokens,
                  budget_cut=fitted.cut, budget_cut_tokens=fitted.cut_tokens, near_duplicates=fitted.near_duplicates)


# -- the token budget -------------------------------------------------------------------------------------------

_PIECES = re.compile(r"[a-z]+|[A-Z][a-z]+|[A-Z]+|[0-9]|[^\sA-Za-z0-9]")
LETTERS_PER_TOKEN = 4  # a lower-case or capitalised word: one token per 4 letters, rounded up
CAPITALS_PER_TOKEN = 2  # an all-capitals run (gene symbols, acronyms): one token per 2 letters


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` as the BPE tokenizer of an open LLM counts them, estimated without loading one.

    Each digit and punctuation mark is a token; a lower-case or capitalised word ``ceil(len / 4)``
    tokens; an all-capitals run (gene symbols) ``ceil(len / 2)``. Measured against SmolLM2's tokenizer on
    2,600 sentences of the public graph and 400 PubMedQA passages: on average 19 % (sentences) and 29 %
    (passages) above it; 5 % of single sentences fall below it, by at most 11 %, so a whole context
    within the estimated budget is within it in real tokens too.
    """
    total = 0
    for piece in _PIECES.findall(text):
        if piece[0].isalpha():
            total += math.ceil(len(piece) / (CAPITALS_PER_TOKEN if piece.isupper() else LETTERS_PER_TOKEN))
        else:
            total += 1
    return total


def context_line(evidence: Evidence) -> str:
    """The line :func:`kgrag.answer.prompts.render_context` writes for one item of evidence."""
    if evidence.kind == "text":
        return f"[PMID {', '.join(evidence.sources) or '?'}] {evidence.text}"
    return evidence.text


class Fitted(BaseModel):
    kept: list[int]
    tokens: int = 0
    cut: int = 0
    cut_tokens: int = 0
    near_duplicates: int = 0


def without_near_duplicates(kept: Sequence[int], candidates: Sequence[Candidate], vectors: np.ndarray,
                            settings: Settings) -> tuple[list[int], int]:
    """``kept`` less each passage whose text repeats a kept passage's, or whose vector's cosine with one is at least
    ``near_duplicate_cosine``; and how many were dropped."""
    unique: list[int] = []
    seen_texts: set[str] = set()
    passage_rows: list[int] = []
    duplicates = 0
    for i in kept:
        cand = candidates[i]
        if cand.group == "text":
            text = " ".join(cand.text.split()).lower()
            similar = bool(passage_rows) and float(np.max(vectors[passage_rows] @ vectors[i])) >= \
                settings.near_duplicate_cosine
            if text in seen_texts or similar:
                duplicates += 1
                continue
            seen_texts.add(text)
            passage_rows.append(i)
        unique.append(i)
    return unique, duplicates


def fit_budget(kept: Sequence[int], candidates: Sequence[Candidate], sims: np.ndarray, vectors: np.ndarray,
               settings: Settings) -> Fitted:
    """The items of ``kept`` (candidate indices in prompt order) that survive de-duplication and the token budget.

    Passages: near-duplicates dropped (:func:`without_near_duplicates`). Budget (``context_budget_tokens`` > 0):
    option-joining edges are admitted first in their order, then the other items by similarity to the question; an
    item is admitted when its line (plus its newline) still fits, else cut (a shorter one after it may still fit).
    """
    unique, duplicates = without_near_duplicates(kept, candidates, vectors, settings)
    first = [i for i in unique if candidates[i].group == "options"]
    rest = sorted((i for i in unique if candidates[i].group != "options"), key=lambda i: -float(sims[i]))
    return _admit(unique, first + rest, candidates, settings, duplicates)


def fit_budget_in_turns(ranked: dict[str, list[int]], candidates: Sequence[Candidate], vectors: np.ndarray,
                        settings: Settings) -> Fitted:
    """The budget for ``ranking=strength``: option-joining edges first, then the groups take turns (each entity's
    next best edge, the next passage), so a small group's few edges are admitted beside a large one's best."""
    kept = [i for items in ranked.values() for i in items]
    unique, duplicates = without_near_duplicates(kept, candidates, vectors, settings)
    alive = set(unique)
    queues = [[i for i in items if i in alive] for group, items in ranked.items() if group != "options"]
    turns: list[int] = [i for i in ranked.get("options", []) if i in alive]
    for position in range(max((len(q) for q in queues), default=0)):
        turns.extend(q[position] for q in queues if position < len(q))
    return _admit(unique, turns, candidates, settings, duplicates)


def _admit(unique: Sequence[int], order: Sequence[int], candidates: Sequence[Candidate], settings: Settings,
           duplicates: int) -> Fitted:
    """Admit ``order``'s items while each line fits ``context_budget_tokens`` (0: all); keep ``unique``'s order."""
    costs = {i: estimate_tokens(context_line(candidates[i].evidence)) + 1 for i in unique}
    budget = settings.context_budget_tokens
    if budget <= 0:
        return Fitted(kept=list(unique), tokens=sum(costs.values()), near_duplicates=duplicates)
    admitted: set[int] = set()
    used = cut_tokens = 0
    for i in order:
        if used + costs[i] <= budget:
            admitted.add(i)
            used += costs[i]
        else:
            cut_tokens += costs[i]
    in_order = [i for i in unique if i in admitted]
    return Fitted(kept=in_order, tokens=used, cut=len(unique) - len(in_order), cut_tokens=cut_tokens,
                  near_duplicates=duplicates)


COSINE_TOLERANCE = 1e-3


def check_cosines(sims: np.ndarray, candidates: Sequence[Candidate], settings: Settings) -> None:
    """Raise :class:`ArtefactError` when a similarity of unit vectors is not a cosine (NaN, inf, |s| > 1 + 1e-3)."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(sims) | (np.abs(sims) > 1.0 + COSINE_TOLERANCE)
    if not bad.any():
        return
    i = int(np.argmax(bad))
    cache = settings.home / "embeddings"
    raise ArtefactError(
        f"similarity {float(sims[i])!r} of {int(bad.sum())} of {len(sims)} candidates (first: "
        f"{candidates[i].text[:80]!r}) is not a cosine: the question's or the candidates' vectors are "
        f"damaged (embedding cache {cache}). Delete the damaged shard files there (or the folder); "
        "the vectors are computed again on the next run")
