"""Scores with uncertainty, paired comparisons, retrieval metrics, costs and trivial baselines.

Every interval is a seeded percentile bootstrap (default 2,000 resamples, 95%), so a report is
reproducible. An unparseable prediction (``None``) is always wrong: it counts against accuracy
and, for macro-F1, as a miss of the gold class.

Example::

    from eval.metrics import score
    s = score(golds=["True", "False"], preds=["True", None], options=[["True", "False"]] * 2)
    s.accuracy.value, s.parse_failed  # 0.5, 1
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, Field

DEFAULT_BOOT = 2000
NOT_RULE = re.compile(r"\bnot\b", re.IGNORECASE)


class Interval(BaseModel):
    """A point estimate with its bootstrap 95% interval."""

    value: float
    low: float
    high: float

    def fmt(self, percent: bool = True) -> str:
        scale, unit = (100.0, "%") if percent else (1.0, "")
        return f"{self.value * scale:.1f}{unit} [{self.low * scale:.1f}, {self.high * scale:.1f}]"


def bootstrap(values: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], float] | None = None,
              n_boot: int = DEFAULT_BOOT, seed: int = 0, level: float = 0.95) -> Interval:
    """Point estimate and percentile bootstrap interval of ``statistic`` (default: the mean) over rows.

    ``values`` may be 1-D (one number per row) or 2-D (one row per question, resampled together).
    """
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return Interval(value=float("nan"), low=float("nan"), high=float("nan"))
    stat = statistic or (lambda a: float(np.mean(a)))
    point = float(stat(data))
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(data), size=(n_boot, len(data)))
    draws = np.array([stat(data[idx]) for idx in indices]) if statistic else data[indices].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return Interval(value=point, low=float(low), high=float(high))


def class_labels(golds: Sequence[str], preds: Sequence[str | None], options: Sequence[Sequence[str]]) -> tuple[list[str], list[str | None]]:
    """Class labels for macro-F1: the option string when every row has the same options (T/F,
    yes/no/maybe), else the option's position letter (A, B, ...) as for MedQA-style MCQs."""
    fixed = len({tuple(o) for o in options}) <= 1
    if fixed:
        return list(golds), list(preds)

    def position(value: str | None, row_options: Sequence[str]) -> str | None:
        if value is None or value not in row_options:
            return None if value is None else "<not-an-option>"
        return chr(ord("A") + list(row_options).index(value))

    return ([position(g, o) or "<gold-not-an-option>" for g, o in zip(golds, options)],
            [position(p, o) for p, o in zip(preds, options)])


def macro_f1(golds: Sequence[str], preds: Sequence[str | None]) -> float:
    """Macro-F1 over the gold classes; a ``None`` prediction is a miss (false negative) of its gold."""
    classes = sorted(set(golds))
    if not classes:
        return float("nan")
    scores = []
    for cls in classes:
        tp = sum(1 for g, p in zip(golds, preds) if g == cls and p == cls)
        fp = sum(1 for g, p in zip(golds, preds) if g != cls and p == cls)
        fn = sum(1 for g, p in zip(golds, preds) if g == cls and p != cls)
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


class Score(BaseModel):
    """Accuracy and macro-F1 (with intervals) of one set of predictions, and its parse failures."""

    n: int
    correct: int
    parse_failed: int
    accuracy: Interval
    macro_f1: Interval


def score(golds: Sequence[str], preds: Sequence[str | None], options: Sequence[Sequence[str]],
          n_boot: int = DEFAULT_BOOT, seed: int = 0) -> Score:
    """Score predictions against golds (``None`` = unparseable = wrong), with bootstrap intervals."""
    if not (len(golds) == len(preds) == len(options)):
        raise ValueError(f"golds, preds and options differ in length: {len(golds)}, {len(preds)}, {len(options)}")
    correct = np.array([p is not None and p == g for g, p in zip(golds, preds)], dtype=float)
    gold_labels, pred_labels = class_labels(golds, preds, options)
    classes = sorted(set(gold_labels))
    code = {c: i for i, c in enumerate(classes)}
    g_codes = np.array([code[g] for g in gold_labels], dtype=int)
    p_codes = np.array([code.get(p, -1) if p is not None else -1 for p in pred_labels], dtype=int)
    index = np.arange(len(golds))

    def f1_of(rows: np.ndarray) -> float:
        g, p = g_codes[rows.astype(int)], p_codes[rows.astype(int)]
        k = len(classes)
        tp = np.bincount(g[g == p], minlength=k)
        gold_n = np.bincount(g, minlength=k)
        pred_n = np.bincount(p[p >= 0], minlength=k)
        present = gold_n > 0
        denom = gold_n + pred_n
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
        return float(f1[present].mean()) if present.any() else float("nan")

    return Score(
        n=len(golds),
        correct=int(correct.sum()),
        parse_failed=sum(1 for p in preds if p is None),
        accuracy=bootstrap(correct, n_boot=n_boot, seed=seed),
        macro_f1=bootstrap(index, f1_of, n_boot=max(200, n_boot // 4), seed=seed),
    )


# --- paired comparison ------------------------------------------------------------------------


class PairedComparison(BaseModel):
    """Run B minus run A on the rows both answered."""

    n: int
    accuracy_a: float
    accuracy_b: float
    difference: Interval = Field(description="accuracy B - A with a paired bootstrap interval")
    only_a_correct: int
    only_b_correct: int
    mcnemar_p: float = Field(description="exact two-sided McNemar (binomial on the discordant pairs)")
    bootstrap_p: float = Field(description="two-sided paired-bootstrap p of no difference")


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def paired_compare(correct_a: Sequence[bool] | Sequence[float], correct_b: Sequence[bool] | Sequence[float], n_boot: int = DEFAULT_BOOT,
                   seed: int = 0) -> PairedComparison:
    """Compare two runs on the same rows (aligned lists of per-row correctness, or of a per-row score in [0, 1] such
    as BioASQ's reciprocal rank or F1: then ``only_a_correct`` counts rows where A scores higher, and the McNemar p
    is the exact sign test on those discordant rows)."""
    if len(correct_a) != len(correct_b):
        raise ValueError(f"paired comparison needs aligned rows: {len(correct_a)} vs {len(correct_b)}")
    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    diff = bootstrap(b - a, n_boot=n_boot, seed=seed)
    rng = np.random.default_rng(seed)
    if len(a):
        draws = (b - a)[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1)
        p_boot = min(1.0, 2.0 * min(float(np.mean(draws <= 0)), float(np.mean(draws >= 0))))
    else:
        p_boot = 1.0
    only_a = int(np.sum(a > b))
    only_b = int(np.sum(b > a))
    return PairedComparison(
        n=len(a), accuracy_a=float(a.mean()) if len(a) else float("nan"), accuracy_b=float(b.mean()) if len(b) else float("nan"),
        difference=diff, only_a_correct=only_a, only_b_correct=only_b, mcnemar_p=mcnemar_exact(only_a, only_b), bootstrap_p=p_boot,
    )


# --- retrieval --------------------------------------------------------------------------------

_LABELS = {"true", "false", "yes", "no", "maybe"}


def context_holds_answer(gold: str, evidence_texts: Sequence[str]) -> bool | None:
    """Whether the gold option appears (whole word, any case) in the evidence; None for label golds
    (True/False, yes/no/maybe), for which the question does not apply."""
    if gold.strip().lower() in _LABELS:
        return None
    pattern = re.compile(r"(?<![\w-])" + re.escape(gold.strip()) + r"(?![\w-])", re.IGNORECASE)
    return any(pattern.search(text) for text in evidence_texts)


def pmid_of(source: str) -> str | None:
    """The PMID in a provenance string ("PMID:123", "pubmed:123", "123", ".../pubmed/123"), if any."""
    match = re.search(r"(?:pmid|pubmed)[:/ _-]*(\d+)", source, re.IGNORECASE) or re.fullmatch(r"\s*(\d{4,9})\s*", source)
    return match.group(1) if match else None


def pmid_recall_at_k(gold_pmids: Sequence[str], ranked_sources: Sequence[Sequence[str]], k: int) -> float | None:
    """Fraction of gold PMIDs among the PMIDs of the top-k evidence items (in rank order); None if
    the row has no gold PMIDs."""
    gold = {str(p) for p in gold_pmids}
    if not gold:
        return None
    found = {pmid for sources in ranked_sources[:k] for s in sources if (pmid := pmid_of(s))}
    return len(gold & found) / len(gold)


# --- costs ------------------------------------------------------------------------------------


class CostSummary(BaseModel):
    """Mean and median per question of tokens, retrievals, LLM calls and latency (ms; batch wall
    time / batch size when the runner measured it, so batching shows up as lower latency)."""

    n: int
    tokens_mean: float
    tokens_median: float
    prompt_tokens_mean: float
    completion_tokens_mean: float
    retrievals_mean: float
    llm_calls_mean: float
    latency_ms_mean: float | None
    latency_ms_median: float | None


def latency_ms(timings: dict[str, float]) -> float | None:
    """A question's latency: its ``total`` timing if present, else the sum of its stage timings."""
    if not timings:
        return None
    return float(timings["total"]) if "total" in timings else float(sum(timings.values()))


def cost_summary(usages: Sequence[dict[str, int]], timings: Sequence[dict[str, float]],
                 amortized_ms: Sequence[float | None] | None = None) -> CostSummary:
    """Per-question costs from rows' ``usage``; latency is the runner-measured wall time of each row's
    batch divided by its size (``amortized_ms``) where known, else the row's ``timings_ms``."""
    def col(key: str) -> np.ndarray:
        return np.array([float(u.get(key, 0) or 0) for u in usages]) if usages else np.zeros(0)

    tokens = col("prompt_tokens") + col("completion_tokens")
    amortized = list(amortized_ms) if amortized_ms is not None else [None] * len(timings)
    lat = np.array([v for t, a in zip(timings, amortized) if (v := a if a is not None else latency_ms(t)) is not None])

    def mean(a: np.ndarray) -> float:
        return float(a.mean()) if len(a) else float("nan")

    return CostSummary(
        n=len(usages), tokens_mean=mean(tokens), tokens_median=float(np.median(tokens)) if len(tokens) else float("nan"),
        prompt_tokens_mean=mean(col("prompt_tokens")), completion_tokens_mean=mean(col("completion_tokens")),
        retrievals_mean=mean(col("retrievals")), llm_calls_mean=mean(col("llm_calls")),
        latency_ms_mean=mean(lat) if len(lat) else None, latency_ms_median=float(np.median(lat)) if len(lat) else None,
    )


# --- baselines --------------------------------------------------------------------------------


class Baseline(BaseModel):
    """A trivial predictor's accuracy on the same rows, with what it is."""

    name: str
    description: str
    accuracy: Interval


def majority_class(golds: Sequence[str], n_boot: int = DEFAULT_BOOT, seed: int = 0) -> Baseline:
    """Always answer the most frequent gold of the scored rows."""
    top, _ = Counter(golds).most_common(1)[0]
    correct = [g == top for g in golds]
    return Baseline(name="majority", description=f"always {top!r} (most frequent gold on these rows)",
                    accuracy=bootstrap(correct, n_boot=n_boot, seed=seed))


def majority_position(golds: Sequence[str], options: Sequence[Sequence[str]], n_boot: int = DEFAULT_BOOT, seed: int = 0) -> Baseline:
    """Always answer the option at the position (A, B, ...) that is most often gold on the scored rows."""
    positions = [list(o).index(g) if g in o else -1 for g, o in zip(golds, options)]
    counts = Counter(p for p in positions if p >= 0)
    top = counts.most_common(1)[0][0] if counts else 0
    correct = [p == top for p in positions]
    return Baseline(name="majority-position", description=f"always option {chr(ord('A') + top)} (most frequent gold position on these rows)",
                    accuracy=bootstrap(correct, n_boot=n_boot, seed=seed))


def not_rule(texts: Sequence[str], golds: Sequence[str], n_boot: int = DEFAULT_BOOT, seed: int = 0) -> Baseline:
    """KG-RAG true/false trap: a statement containing the word 'not' is False, else True."""
    preds = ["False" if NOT_RULE.search(t) else "True" for t in texts]
    correct = [p == g for p, g in zip(preds, golds)]
    return Baseline(name="not-rule", description="contains the word 'not' => False, else True",
                    accuracy=bootstrap(correct, n_boot=n_boot, seed=seed))


def frequent_answer_prior(golds: Sequence[str], options: Sequence[Sequence[str]], n_boot: int = DEFAULT_BOOT, seed: int = 0) -> Baseline:
    """Per row, pick the option that is most often the gold answer *on the rows being scored*
    (ties: first listed). It peeks at the golds of these rows, so it is an upper-bound prior."""
    freq = Counter(golds)
    correct = [max(opts, key=lambda o: (freq.get(o, 0), -list(opts).index(o))) == g for g, opts in zip(golds, options)]
    return Baseline(name="frequent-answer", description="the option most often gold on these same rows (computed on the scored rows)",
                    accuracy=bootstrap(correct, n_boot=n_boot, seed=seed))


def frequent_answer_loo(golds: Sequence[str], options: Sequence[Sequence[str]], n_boot: int = DEFAULT_BOOT, seed: int = 0) -> Baseline:
    """As :func:`frequent_answer_prior`, but each row's own gold is left out of the counts
    (leave-one-out), so a row cannot vote for itself."""
    freq = Counter(golds)
    correct = []
    for g, opts in zip(golds, options):
        counts = {o: freq.get(o, 0) - (1 if o == g else 0) for o in opts}
        correct.append(max(opts, key=lambda o: (counts[o], -list(opts).index(o))) == g)
    return Baseline(name="frequent-answer-loo", description="the option most often gold on the other scored rows (leave-one-out)",
                    accuracy=bootstrap(correct, n_boot=n_boot, seed=seed))


def uniform_random(golds: Sequence[str], options: Sequence[Sequence[str]]) -> Baseline:
    """Expected accuracy of a uniform random choice among each row's distinct options (exact)."""
    values = [(1.0 / len(set(o)) if g in o else 0.0) for g, o in zip(golds, options)]
    mean = float(np.mean(values)) if values else float("nan")
    return Baseline(name="random", description="uniform random option (expectation)", accuracy=Interval(value=mean, low=mean, high=mean))


def baselines_for(task: str, texts: Sequence[str], golds: Sequence[str], options: Sequence[Sequence[str]], dataset: str = "",
                  n_boot: int = DEFAULT_BOOT, seed: int = 0) -> list[Baseline]:
    """The trivial baselines that belong beside a score on these rows: majority class (fixed options)
    or majority position (per-row options); the 'not' rule on the KG-RAG true/false set; the
    most-frequent-answer prior (in-sample and leave-one-out) on the KG-RAG MCQs; uniform random."""
    if not golds:
        return []
    fixed = len({tuple(o) for o in options}) <= 1
    out = [majority_class(golds, n_boot, seed) if fixed else majority_position(golds, options, n_boot, seed)]
    if task == "true_false" and dataset.startswith("biomixqa"):
        out.append(not_rule(texts, golds, n_boot, seed))
    if not fixed and dataset.startswith("biomixqa"):  # gene answers recur across rows; MIRAGE option texts do not
        out.append(frequent_answer_prior(golds, options, n_boot, seed))
        out.append(frequent_answer_loo(golds, options, n_boot, seed))
    out.append(uniform_random(golds, options))
    return out
