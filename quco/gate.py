"""The uncertainty gate of QuCo-RAG: decide from corpus counts when to retrieve.

Stage 1 (before generation): the question's entities are looked up; the *minimum* frequency per
billion corpus tokens is compared with ``settings.entity_freq_threshold_per_billion``; an entity
rarer than that means the model has seen too little of it, so retrieve.

Stage 2 (after each generated sentence): the entity pairs of the sentence are looked up; a pair
that co-occurs fewer than ``settings.cooccur_threshold`` times within ``settings.cooccur_window``
tokens in one document is likely a hallucinated relation, so retrieve with that pair and
regenerate the sentence.

The functions ``stage1``/``stage2`` are pure; :class:`Gate` runs them in batches over a
:class:`quco.stats.CorpusStats`. A failed lookup is never read as "no risk": the decision is
``failed=True`` with the error as reason, and ``settings.stats_failure_policy`` decides whether it
retrieves ("retrieve", the default), not ("skip"), or stops with a :class:`~quco.stats.StatsError`
("error"). The first failure of a gate (a run) is said on stderr. Every decision carries its counts.

Example::

    gate = Gate.from_settings(settings)          # = Gate(open_corpus_stats(settings), settings)
    [d1] = gate.check_questions([["metformin", "type 2 diabetes"]])
    [s1] = gate.check_sentences([[("metformin", "Takayasu arteritis")]])
    d1.retrieve, s1.decision.retrieve, s1.flagged_pairs
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from kgrag.settings import Settings, redact
from kgrag.types import GateDecision
from quco.stats import open_corpus_stats
from quco.stats.base import LOOKUP_FAILURES, CorpusStats, StatsError

Pair = tuple[str, str]


def pair_key(head: str, tail: str) -> str:
    """The key of a pair's count in ``GateDecision.counts``: ``"cooccur:head|tail"``."""
    return f"cooccur:{head}|{tail}"


def entity_pairs(entities: Sequence[str]) -> list[Pair]:
    """Every unordered pair of distinct entities, in order of first mention.

    ``entity_pairs(["metformin", "diabetes", "Metformin"])`` is ``[("metformin", "diabetes")]``.
    """
    seen: dict[str, str] = {}
    for name in entities:
        seen.setdefault(name.strip().lower(), name.strip())
    return list(combinations(seen.values(), 2))


def failed_decision(stage: int, error: BaseException | str, settings: Settings, counts: dict | None = None) -> GateDecision:
    """A decision for a lookup that failed, following ``settings.stats_failure_policy``."""
    retrieve = settings.stats_failure_policy == "retrieve"
    action = "retrieving" if retrieve else "not retrieving (policy skip)"
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return GateDecision(stage=stage, retrieve=retrieve, failed=True, counts=counts or {},
                        reason=f"statistics lookup failed ({message}); {action} "
                               f"(stats_failure_policy={settings.stats_failure_policy})")


def stage1(entity_counts: Mapping[str, int], total_tokens: int, settings: Settings) -> GateDecision:
    """Pre-generation decision: retrieve when the rarest entity is below the per-billion threshold.

    Example::

        stage1({"metformin": 83, "takayasu": 2}, 842_164, load_settings(entity_freq_threshold_per_billion=5e3))
        # retrieve=True: takayasu is 2375 per billion < 5000
    """
    threshold = settings.entity_freq_threshold_per_billion
    counts: dict[str, float | int | None] = {"total_tokens": total_tokens, "threshold_per_billion": threshold}
    if not entity_counts:
        return GateDecision(stage=1, retrieve=False, counts=counts, reason="no entities linked in the question; nothing to check")
    if total_tokens <= 0:
        return failed_decision(1, f"corpus size is {total_tokens} tokens", settings, counts)
    per_billion = {name: n * 1e9 / total_tokens for name, n in entity_counts.items()}
    for name, n in entity_counts.items():
        counts[f"count:{name}"] = int(n)
    rarest = min(per_billion, key=per_billion.__getitem__)
    counts["min_per_billion"] = per_billion[rarest]
    if per_billion[rarest] < threshold:
        reason = (f"rarest entity {rarest!r}: {entity_counts[rarest]} occurrences = {per_billion[rarest]:.1f} per billion "
                  f"< threshold {threshold:g}; retrieve")
        return GateDecision(stage=1, retrieve=True, counts=counts, reason=reason)
    reason = f"every entity at least {per_billion[rarest]:.1f} per billion (rarest {rarest!r}) >= {threshold:g}; no retrieval"
    return GateDecision(stage=1, retrieve=False, counts=counts, reason=reason)


def stage2(pairs: Sequence[Pair], cooccurrences: Sequence[int], settings: Settings) -> GateDecision:
    """Post-sentence decision: retrieve when some entity pair co-occurs below the threshold.

    Example::

        stage2([("metformin", "diabetes"), ("metformin", "takayasu")], [23, 0], load_settings())
        # retrieve=True: ("metformin", "takayasu") co-occurs 0 times < 1
    """
    if len(pairs) != len(cooccurrences):
        raise ValueError(f"{len(pairs)} pairs but {len(cooccurrences)} co-occurrence counts")
    threshold, window = settings.cooccur_threshold, settings.cooccur_window
    counts: dict[str, float | int | None] = {"threshold": threshold, "window": window}
    for (head, tail), n in zip(pairs, cooccurrences):
        counts[pair_key(head, tail)] = int(n)
    if not pairs:
        return GateDecision(stage=2, retrieve=False, counts=counts, reason="no entity pairs in the sentence; nothing to check")
    flagged = [(h, t, n) for (h, t), n in zip(pairs, cooccurrences) if n < threshold]
    if flagged:
        listed = ", ".join(f"{h!r}+{t!r} ({n})" for h, t, n in flagged)
        reason = f"pairs co-occurring fewer than {threshold} times within {window} tokens: {listed}; retrieve and regenerate"
        return GateDecision(stage=2, retrieve=True, counts=counts, reason=reason)
    return GateDecision(stage=2, retrieve=False, counts=counts,
                        reason=f"all {len(pairs)} pairs co-occur at least {threshold} times within {window} tokens")


@dataclass
class SentenceCheck:
    """Stage 2 for one sentence: the decision and the pairs to retrieve with (empty if none)."""

    decision: GateDecision
    flagged_pairs: list[Pair] = field(default_factory=list)


class Gate:
    """Both stages over a :class:`CorpusStats`, for a batch of questions or sentences at once.

    One ``count`` call per batch of questions, one ``cooccur`` call per batch of sentences; a failed
    call gives every item of the batch a ``failed`` decision handled by the failure policy.
    """

    def __init__(self, stats: CorpusStats, settings: Settings) -> None:
        self.stats, self.settings = stats, settings
        self.failures = 0  # lookups that failed; the first one is said on stderr

    def _failed(self, exc: BaseException) -> None:
        """A failed lookup: raise under ``stats_failure_policy=error``; else say so on stderr once per gate (run)."""
        where = getattr(self.stats, "description", type(self.stats).__name__)
        policy = self.settings.stats_failure_policy
        self.failures += 1
        if policy == "error":
            raise StatsError(f"the gate's statistics ({where}) failed: {type(exc).__name__}: {exc}; "
                             "KGRAG_STATS_FAILURE_POLICY=error stops here (retrieve or skip answer without counts)") from None
        if self.failures == 1:
            action = "retrieves for every question" if policy == "retrieve" else "does not retrieve"
            print(redact(f"warning: the gate's statistics ({where}) failed ({type(exc).__name__}: {exc}); until they "
                         f"answer, the gate decides nothing and {action} (KGRAG_STATS_FAILURE_POLICY={policy}; set it to "
                         "error to stop instead). Each answer's gate decision says failed=true.", self.settings),
                  file=sys.stderr)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Gate":
        """The gate over the backend of ``settings.stats_uri`` (raises :class:`quco.stats.StatsError`)."""
        return cls(open_corpus_stats(settings), settings)

    def check_questions(self, entities: Sequence[Sequence[str]]) -> list[GateDecision]:
        """Stage 1 for each question, given the names of its linked entities."""
        unique = list(dict.fromkeys(name for names in entities for name in names))
        try:
            found = dict(zip(unique, self.stats.count(unique))) if unique else {}
            total = self.stats.total_tokens
        except LOOKUP_FAILURES as exc:  # a failed lookup is recorded, never "no risk"; a bug in a backend is raised
            self._failed(exc)
            return [failed_decision(1, exc, self.settings, {f"count:{n}": None for n in names}) for names in entities]
        return [stage1({n: found[n] for n in names}, total, self.settings) for names in entities]

    def check_sentences(self, sentence_pairs: Sequence[Sequence[Pair]]) -> list[SentenceCheck]:
        """Stage 2 for each generated sentence, given its entity pairs (see :func:`entity_pairs`)."""
        unique = list(dict.fromkeys(tuple(p) for pairs in sentence_pairs for p in pairs))
        try:
            found = dict(zip(unique, self.stats.cooccur(unique, self.settings.cooccur_window))) if unique else {}
        except LOOKUP_FAILURES as exc:
            self._failed(exc)
            decisions = [failed_decision(2, exc, self.settings, {pair_key(*p): None for p in pairs}) for pairs in sentence_pairs]
            return [SentenceCheck(d, [tuple(p) for p in pairs] if d.retrieve else [])
                    for d, pairs in zip(decisions, sentence_pairs)]
        checks = []
        for pairs in sentence_pairs:
            pairs = [tuple(p) for p in pairs]
            values = [found[p] for p in pairs]
            decision = stage2(pairs, values, self.settings)
            flagged = [p for p, n in zip(pairs, values) if n < self.settings.cooccur_threshold]
            checks.append(SentenceCheck(decision, flagged))
        return checks
