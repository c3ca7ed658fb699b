"""Pruning as KG-RAG: keep the context most similar to the question.

Per group (a linked entity's neighbourhood): cosine similarity to the question; keep sentences at
or above ``max(percentile(similarities, prune_percentile), prune_floor)``, best first, at most
``context_volume / number of entity groups`` of them. Option-joining edges (group ``options``) come
first, in the order :func:`kgrag.context.gather_kg` ranked them, up to the whole volume; text passages (group ``text``) keep their retrieval
order, at most ``text_context_passages`` of them.

Vectors come from the Embedder's content-hash cache, so an edge sentence is embedded once ever and
pruning at query time is a matrix product. The vectors are unit length, so every similarity is a
cosine: one that is not finite or beyond 1 + 1e-3 in magnitude comes from damaged vectors and is an
:class:`~kgrag.errors.ArtefactError` naming the embedding cache, never a score that keeps or drops evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgrag.context import Candidate
from kgrag.errors import ArtefactError
from kgrag.settings import Settings
from kgrag.types import Evidence


def prune(question_vec: np.ndarray, candidates: Sequence[Candidate], vectors: np.ndarray,
          settings: Settings) -> tuple[list[Evidence], int]:
    """(kept evidence, with scores, in prompt order; number dropped). ``vectors[i]`` embeds ``candidates[i]``."""
    if not candidates:
        return [], 0
    with np.errstate(all="ignore"):  # damaged vectors: check_cosines says so, numpy need not warn
        sims = vectors @ question_vec
    check_cosines(sims, candidates, settings)
    groups: dict[str, list[int]] = {}
    for i, cand in enumerate(candidates):
        groups.setdefault(cand.group, []).append(i)
    entity_groups = [g for g in groups if g not in ("options", "text")]
    per_entity = max(1, settings.context_volume // max(1, len(entity_groups)))

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

    evidence = []
    for i in kept:
        ev = candidates[i].evidence.model_copy(update={"score": float(sims[i])})
        evidence.append(ev)
    return evidence, len(candidates) - len(kept)


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
        f"{candidates[i].evidence.text[:80]!r}) is not a cosine: the question's or the candidates' vectors are "
        f"damaged (embedding cache {cache}). Delete the damaged shard files there (or the folder); "
        "the vectors are computed again on the next run")
