"""Absence as evidence, only where it is measured to be sound: how complete is the graph for a relation?

"No edge joins A and B" says a claim is false only if the graph would hold the edge were the claim true.
That is a property of the sources, so it is measured, per relation, before any absence counts:

* a relation here is a pair of node labels (Disease-Gene, Compound-Disease, ...): a true/false claim is
  supported by any edge between its entities, so its absence is judged against every edge between the
  two labels;
* each node pair that some source records is one "capture" by each source that records it
  (``EdgeView.sources``, over all edge types between the labels);
* for each two sources A and B of the relation, each with at least ``min_pairs`` pairs, Chapman's
  capture-recapture estimate of the true number of pairs is ``N = (|A|+1)(|B|+1)/(|A and B|+1) - 1``,
  and the graph's coverage is ``|all pairs| / N`` (capped at 1);
* the relation's coverage is the LOWEST over its source pairs (the conservative one); with fewer than
  two such sources it is unmeasured (None), and absence never counts for it.

Sources that copy one another (DisGeNET integrates other curated sets, Hetionet integrates DISEASES) overlap
more than independent ones would, which makes N too small and coverage too high: the estimate is an
upper bound, which is why absence is off by default (``evidence_absence_min_coverage`` unset) and why every
verdict it decides names the estimate and the sources it came from. ``kgrag relation-coverage`` prints the
table for the built graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations

from pydantic import BaseModel, Field

from kgrag.graph.base import GraphStore
from kgrag.types import LinkedEntity

MIN_PAIRS = 100  # a source with fewer pairs of a relation gives too noisy an overlap to estimate from


class SourcePair(BaseModel):
    a: str
    b: str
    pairs_a: int
    pairs_b: int
    both: int
    estimated_total: float = Field(description="Chapman's capture-recapture estimate of the relation's true pairs")


class RelationCoverage(BaseModel):
    """How complete the graph is for the edges between two labels, estimated from its sources' overlap."""

    labels: tuple[str, str] = Field(description="The two node labels, sorted")
    pairs: int = Field(description="Node pairs joined by at least one edge between these labels")
    sources: dict[str, int] = Field(description="Node pairs per source")
    estimates: list[SourcePair] = Field(default_factory=list)
    coverage: float | None = Field(default=None, description="Lowest estimate over source pairs (None: unmeasured)")

    def explain(self) -> str:
        if self.coverage is None:
            return f"{'-'.join(self.labels)}: coverage unmeasured (fewer than two sources with {MIN_PAIRS}+ pairs)"
        worst = min(self.estimates, key=lambda e: self.pairs / max(e.estimated_total, 1.0))
        return (f"{'-'.join(self.labels)} coverage {self.coverage:.2f} (capture-recapture, {worst.a} x {worst.b}: "
                f"{worst.both} of {worst.pairs_a} and {worst.pairs_b} pairs shared)")


def label_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def relation_coverage(store: GraphStore, *, min_pairs: int = MIN_PAIRS) -> dict[tuple[str, str], RelationCoverage]:
    """The coverage of every label pair in ``store`` (one pass over its edges)."""
    captured: dict[tuple[str, str], dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for batch in store.iter_edges():
        for edge in batch:
            if edge.source.id == edge.target.id:
                continue
            labels = label_pair(edge.source.label, edge.target.label)
            ends = tuple(sorted((edge.source.id, edge.target.id)))
            captured[labels][ends].update(edge.sources or ["(no source)"])  # type: ignore[index]
    return {labels: _estimate(labels, pairs, min_pairs) for labels, pairs in sorted(captured.items())}


def _estimate(labels: tuple[str, str], pairs: dict[tuple[str, str], set[str]], min_pairs: int) -> RelationCoverage:
    by_source: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for ends, sources in pairs.items():
        for source in sources:
            by_source[source].add(ends)
    usable = sorted(s for s, members in by_source.items() if len(members) >= min_pairs and s != "(no source)")
    estimates = []
    for a, b in combinations(usable, 2):
        both = len(by_source[a] & by_source[b])
        total = (len(by_source[a]) + 1) * (len(by_source[b]) + 1) / (both + 1) - 1
        estimates.append(SourcePair(a=a, b=b, pairs_a=len(by_source[a]), pairs_b=len(by_source[b]), both=both,
                                    estimated_total=total))
    coverage = min((min(1.0, len(pairs) / max(e.estimated_total, 1.0)) for e in estimates), default=None)
    return RelationCoverage(labels=labels, pairs=len(pairs), sources={s: len(m) for s, m in sorted(by_source.items())},
                            estimates=estimates, coverage=coverage)


class AbsenceRule:
    """When no edge counts against a true/false claim: each of the claim's entity pairs' relations covered at least
    ``min_coverage`` (None: never, the default). The graph's coverage is measured the first time it is needed."""

    def __init__(self, store: GraphStore | None, min_coverage: float | None) -> None:
        self.store = store
        self.min_coverage = min_coverage
        self._coverage: dict[tuple[str, str], RelationCoverage] | None = None  # measured on first need

    def coverage(self) -> dict[tuple[str, str], RelationCoverage]:
        """Each label pair's measured coverage in the graph (one pass over its edges, the first time)."""
        if self._coverage is None:
            self._coverage = relation_coverage(self.store) if self.store is not None else {}
        return self._coverage

    def against(self, pairs: Sequence[tuple[LinkedEntity, LinkedEntity]]) -> RelationCoverage | None:
        """The least-covered relation of the claim's entity pairs, if every one is covered at least
        ``min_coverage`` (absence then counts against the claim); None otherwise, or when absence is off."""
        if self.min_coverage is None or not pairs:
            return None
        coverage = self.coverage()
        found = [coverage.get(label_pair(a.label, b.label)) for a, b in pairs]
        if any(c is None or c.coverage is None or c.coverage < self.min_coverage for c in found):
            return None
        return min(found, key=lambda c: c.coverage)  # type: ignore[arg-type, return-value]
