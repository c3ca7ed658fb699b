"""Reports from run files: JSON, Markdown tables and PNG plots, each naming the exact configuration.

``summarize_run`` scores one run file (accuracy and macro-F1 with intervals, unparseable count,
baselines on the same rows, retrieval metrics, costs, and accuracy on covered rows when a set of
covered ids is given). ``write_report`` writes ``report.json``, ``report.md``, ``accuracy.png``
(accuracy with 95% intervals per configuration, baselines as dashed lines) and
``tokens_vs_accuracy.png``; ``picture_rows`` adds a picture of chosen rows' evidence (``rows/*.png`` and
``*.html``, drawn from the subgraph each row keeps) beside their gold and predicted answers. Every report
names model, backend, settings fingerprint, data checksum (SHA-256 of the dataset file) and git commit (of
the run, and of the report).

Example::

    from eval.report import load_run, summarize_run, write_report
    summary = summarize_run(load_run("runs/biomixqa-tf/kg-0123456789ab.jsonl"))
    write_report([summary], out_dir="reports/tf")
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from eval import bioasq
from eval.bioasq import BioasqScore
from eval.datasets import get_spec
from eval.metrics import (
    DEFAULT_BOOT,
    Baseline,
    CostSummary,
    Interval,
    PairedComparison,
    Score,
    baselines_for,
    cost_summary,
    bootstrap,
    paired_compare,
    pmid_recall_at_k,
    score,
)
from eval.runner import RunError, RunInputError, RunRow, git_commit, meta_path_for, read_run
from kgrag.errors import KgragError
from kgrag.explain.picture import write_picture

RECALL_KS = (1, 5, 10)


class RunData(BaseModel):
    """A run file's rows and its sidecar metadata."""

    path: str
    rows: list[RunRow]
    meta: dict[str, Any] = Field(default_factory=dict)
    torn_tail: str | None = None


class RetrievalSummary(BaseModel):
    """Retrieval metrics over the rows where they apply (n says how many)."""

    context_holds_answer: float | None = None
    context_holds_answer_n: int = 0
    pmid_recall: dict[str, float] = Field(default_factory=dict, description="k -> mean gold-PMID recall@k")
    pmid_recall_n: int = 0


class SupportCount(BaseModel):
    """Rows one kind of support decided, and how many of them were right."""

    rows: int = 0
    correct: int = 0


def support_breakdown(rows: list[RunRow]) -> dict[str, SupportCount]:
    """What decided each row: the evidence's support kind (direct, ontology, class, corpus, passage, identifier, absence),
    ``llm`` where the LLM chose, ``abstained`` where nothing did; ``unrecorded`` for rows written before runs kept it.
    Direct and inferred are never pooled."""
    out: dict[str, SupportCount] = {}
    for r in rows:
        if r.abstained or r.parsed is None:
            kind = "abstained"
        elif "support" not in r.model_fields_set:
            kind = "unrecorded"
        else:
            kind = r.support or "llm"
        count = out.setdefault(kind, SupportCount())
        count.rows += 1
        count.correct += int(r.correct)
    return dict(sorted(out.items()))


class RunSummary(BaseModel):
    """Everything a report says about one run."""

    path: str
    dataset: str
    config: str
    fingerprint: str
    model: str
    backend: str
    selection_mode: str = "llm"
    gate_mode: str = "unknown"
    data_sha256: str
    git_commit: str
    pipeline_factory: str
    score: Score
    parse_methods: dict[str, int]
    baselines: list[Baseline]
    retrieval: RetrievalSummary
    costs: CostSummary
    covered: Score | None = None
    covered_ids_given: int | None = None
    support: dict[str, SupportCount] = Field(default_factory=dict, description="What decided the rows (see support_breakdown)")
    bioasq: BioasqScore | None = Field(default=None, description="BioASQ factoid/list/summary runs: the official measures "
                                       "with intervals and baselines (``score`` then counts factoid strict hits, "
                                       "list F1 = 1, and no-answer rows as parse_failed)")
    torn_tail: str | None = None

    def headline(self) -> tuple[str, Interval]:
        """The number a plot shows for the run: accuracy, or the BioASQ type's primary measure."""
        if self.bioasq is not None and self.bioasq.measures:
            return bioasq.MEASURE_LABELS[self.bioasq.primary], self.bioasq.measures[self.bioasq.primary]
        return "accuracy", self.score.accuracy


class Comparison(BaseModel):
    """Paired comparison of two runs (B minus A) on the rows both have."""

    dataset: str
    config_a: str
    config_b: str
    measure: str = Field(default="accuracy", description="What is compared per row: accuracy, or a BioASQ type's primary "
                         "measure (MRR, F1, ROUGE-2 recall)")
    only_in_a: int
    only_in_b: int
    result: PairedComparison


def load_run(path: Path | str) -> RunData:
    """Read a run JSONL (a torn last line is ignored and noted) and its ``.meta.json`` if present."""
    path = Path(path)
    if not path.is_file():
        raise RunInputError(f"run file {path} not found")
    run = read_run(path)
    if run.duplicates:
        raise RunError(f"{path}: ids written more than once {run.duplicates[:10]}")
    meta_file = meta_path_for(path)
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return RunData(path=str(path), rows=run.rows, meta=meta, torn_tail=run.torn_tail)


def _retrieval(rows: list[RunRow]) -> RetrievalSummary:
    holds = [r.context_holds_answer for r in rows if r.context_holds_answer is not None]
    with_pmids = [r for r in rows if r.metadata.get("gold_pmids")]
    recall: dict[str, float] = {}
    if with_pmids:
        for k in RECALL_KS:
            # Only retrieved evidence counts: a given context (PubMedQA's abstract) is not a retrieval.
            values = [pmid_recall_at_k(r.metadata["gold_pmids"], [e.sources for e in r.evidence if e.kind != "given"], k)
                      for r in with_pmids]
            recall[str(k)] = float(np.mean([v for v in values if v is not None]))
    return RetrievalSummary(
        context_holds_answer=float(np.mean(holds)) if holds else None, context_holds_answer_n=len(holds),
        pmid_recall=recall, pmid_recall_n=len(with_pmids),
    )


def _score_rows(rows: list[RunRow], n_boot: int, seed: int) -> Score:
    return score([r.gold for r in rows], [r.parsed for r in rows], [r.options for r in rows], n_boot=n_boot, seed=seed)


def summarize_run(run: RunData, covered_ids: set[str] | None = None, n_boot: int = DEFAULT_BOOT, seed: int = 0) -> RunSummary:
    """Score one run, with baselines on the same rows; ``covered_ids`` adds accuracy on those rows."""
    rows = run.rows
    if not rows:
        raise RunError(f"{run.path}: no rows to report")
    first = rows[0]
    meta = run.meta
    try:
        task = get_spec(first.dataset).task
    except KgragError as exc:  # an unknown dataset name in a hand-made file
        raise RunError(str(exc)) from exc
    covered = None
    if covered_ids is not None:
        kept = [r for r in rows if r.id in covered_ids]
        covered = _score_rows(kept, n_boot, seed) if kept else None
    kind = first.metadata.get("bioasq_type")
    free = kind in bioasq.MEASURES
    if free:
        correct = [float(r.correct) for r in rows]
        nan = Interval(value=float("nan"), low=float("nan"), high=float("nan"))
        row_score = Score(n=len(rows), correct=int(sum(correct)), parse_failed=sum(r.parse_failed for r in rows),
                          accuracy=bootstrap(correct, n_boot=n_boot, seed=seed), macro_f1=nan)
    return RunSummary(
        path=run.path, dataset=first.dataset, config=first.config, fingerprint=first.fingerprint,
        model=str(meta.get("model", "unknown")), backend=str(meta.get("backend", "unknown")),
        selection_mode=str(meta.get("settings", {}).get("selection_mode", "llm")),
        gate_mode=str(meta.get("settings", {}).get("gate_mode", "unknown")),
        data_sha256=str(meta.get("data_sha256", "unknown")),
        git_commit=",".join(sorted({r.git_commit for r in rows if r.git_commit})) or str(meta.get("git_commit", "unknown")),
        pipeline_factory=str(meta.get("pipeline_factory", "unknown")),
        score=row_score if free else _score_rows(rows, n_boot, seed),
        parse_methods=dict(Counter(r.parse_method for r in rows)),
        baselines=[] if free else baselines_for(task, [r.question for r in rows], [r.gold for r in rows], [r.options for r in rows],
                                                dataset=first.dataset, n_boot=n_boot, seed=seed),
        bioasq=bioasq.bioasq_score(kind, first.dataset, rows, n_boot=n_boot, seed=seed) if free else None,
        retrieval=_retrieval(rows), costs=cost_summary([r.usage for r in rows], [r.timings_ms for r in rows],
                                                           [r.batch_ms / r.batch_size if r.batch_ms is not None else None for r in rows]),
        covered=covered, covered_ids_given=len(covered_ids) if covered_ids is not None else None,
        support={} if free else support_breakdown(rows), torn_tail=run.torn_tail,
    )


def compare_runs(runs: list[RunData], n_boot: int = DEFAULT_BOOT, seed: int = 0) -> list[Comparison]:
    """Paired comparisons of every two runs on the same dataset, on the ids both answered."""
    out: list[Comparison] = []
    for a, b in itertools.combinations(runs, 2):
        if not a.rows or not b.rows or a.rows[0].dataset != b.rows[0].dataset:
            continue
        by_a = {r.id: r for r in a.rows}
        by_b = {r.id: r for r in b.rows}
        common = sorted(set(by_a) & set(by_b))
        if not common:
            continue
        kind = a.rows[0].metadata.get("bioasq_type")
        if kind in bioasq.MEASURES:
            measure = bioasq.PRIMARY[kind]
            result = paired_compare([by_a[i].scores.get(measure, 0.0) for i in common], [by_b[i].scores.get(measure, 0.0) for i in common],
                                    n_boot=n_boot, seed=seed)
        else:
            measure = "accuracy"
            result = paired_compare([by_a[i].correct for i in common], [by_b[i].correct for i in common], n_boot=n_boot, seed=seed)
        out.append(Comparison(dataset=a.rows[0].dataset, config_a=a.rows[0].config, config_b=b.rows[0].config, measure=measure,
                              only_in_a=len(set(by_a) - set(by_b)), only_in_b=len(set(by_b) - set(by_a)), result=result))
    return out


# --- writing ----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _short_commits(commits: str) -> str:
    """'abc...+dirty,def...' -> 'abc123456789+dirty, def123456789' (rows may span commits after a resume)."""
    return ", ".join(c[:12] + ("+dirty" if c.endswith("+dirty") else "") for c in commits.split(","))


def _fmt3(value: Interval) -> str:
    """BioASQ's scale: 0.643 [0.601, 0.688]."""
    return f"{value.value:.3f} [{value.low:.3f}, {value.high:.3f}]"


def bioasq_markdown(runs: list[RunSummary]) -> list[str]:
    """The BioASQ section: every official measure with its interval, the baseline on the same rows beside it, the
    no-answer count and what the system was given (the question-only setting retrieves from an index that holds
    BioASQ's snippets)."""
    if not runs:
        return []
    lines = ["", "## BioASQ measures", "",
             "Official BioASQ Task B measures (docs/bioasq.md): factoid strict/lenient accuracy and MRR over the first "
             "five items; list mean precision, recall and F1 per question; summary ROUGE-2 and ROUGE-SU4 (rouge-metric, "
             "ROUGE-1.5.5's measures). A row with no answer scores 0 and is counted, never dropped. "
             "Setting: `bioasq-<type>` gives the gold snippets (phase B); `bioasq-<type>-qonly` gives the question only "
             "(phase A+) and retrieves from our text index, which holds BioASQ's snippets.", "",
             "| dataset | config | setting | n | no answer | measure | score [95% CI] | baseline on the same rows [95% CI] |",
             "|---|---|---|---|---|---|---|---|"]
    for s in runs:
        b = s.bioasq
        assert b is not None
        setting = "question only, index holds BioASQ snippets" if s.dataset.endswith("-qonly") else "gold snippets given"
        for m in bioasq.MEASURES[b.kind]:
            base = "; ".join(f"{x.name}: {_fmt3(x.measures[m])}" for x in b.baselines if m in x.measures) or "n/a"
            mark = " (primary)" if m == b.primary else ""
            lines.append(f"| {s.dataset} | {s.config} | {setting} | {b.n} | {b.no_answer} | {bioasq.MEASURE_LABELS[m]}{mark} | "
                         f"{_fmt3(b.measures[m]) if m in b.measures else 'n/a'} | {base} |")
    described = {(x.name, x.description) for s in runs for x in (s.bioasq.baselines if s.bioasq else [])}
    lines += ["", "Baselines: " + "; ".join(f"**{name}**: {description}" for name, description in sorted(described)) +
              ". The empty answer scores 0 on every measure."]
    return lines


def markdown(summaries: list[RunSummary], comparisons: list[Comparison], anchors: list[dict[str, Any]] | None = None,
             report_commit: str = "unknown") -> str:
    """The Markdown report: provenance, scores, baselines, retrieval/costs, comparisons, anchors."""
    lines = [f"# Evaluation report", "", f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')} at git commit "
             f"`{report_commit}`. Intervals are seeded bootstrap 95% intervals; unparseable answers count as wrong.", ""]
    lines += ["## Runs", "", "| dataset | config | selection | gate | model | backend | settings fingerprint | data sha256 | "
              "git commit (run) | pipeline |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.dataset} | {s.config} | {s.selection_mode} | {s.gate_mode} | {s.model} | {s.backend} | "
                     f"`{s.fingerprint}` | `{s.data_sha256[:16]}` | "
                     f"`{_short_commits(s.git_commit)}` | `{s.pipeline_factory}` |")
    option_runs = [s for s in summaries if s.bioasq is None]
    if option_runs:
        lines += ["", "## Scores", "", "| dataset | config | n | accuracy [95% CI] | macro-F1 [95% CI] | unparseable | covered rows: n, accuracy |",
                  "|---|---|---|---|---|---|---|"]
    for s in option_runs:
        cov = "n/a" if s.covered_ids_given is None else (f"{s.covered.n}, {s.covered.accuracy.fmt()}" if s.covered else "0")
        lines.append(f"| {s.dataset} | {s.config} | {s.score.n} | {s.score.accuracy.fmt()} | {s.score.macro_f1.fmt()} | "
                     f"{s.score.parse_failed} | {cov} |")
    if any(s.support for s in summaries):
        lines += ["", "## What decided the answers", "",
                  "Direct: a graph edge joins the named entities; ontology / class: inferred through is-a subtypes or "
                  "class members (marked, with their own confidence); corpus, passage: tie-breakers; identifier: a "
                  "stated id checked; absence: no edge where the graph is measured complete for the relation (opt-in); "
                  "llm: the LLM chose; abstained: nothing did.", "",
                  "| dataset | config | support | rows | right | accuracy |", "|---|---|---|---|---|---|"]
        for s in summaries:
            for kind, count in s.support.items():
                acc = _pct(count.correct / count.rows) if count.rows and kind != "abstained" else "n/a"
                lines.append(f"| {s.dataset} | {s.config} | {kind} | {count.rows} | {count.correct} | {acc} |")
    if option_runs:
        lines += ["", "## Baselines on the same rows", "", "| dataset | config (rows) | baseline | accuracy [95% CI] | what |", "|---|---|---|---|---|"]
    shown: dict[tuple[str, int, str, str, str], list[str]] = {}
    for s in option_runs:  # identical baselines (same rows) are listed once, with every config they serve
        for b in s.baselines:
            shown.setdefault((s.dataset, s.score.n, b.name, b.accuracy.fmt(), b.description), []).append(s.config)
    for (dataset, n, name, acc, description), configs in shown.items():
        lines.append(f"| {dataset} | {', '.join(configs)} ({n}) | {name} | {acc} | {description} |")
    lines += bioasq_markdown([s for s in summaries if s.bioasq is not None])
    lines += ["", "## Retrieval and costs per question", "",
              "| dataset | config | context holds answer (n) | gold-PMID R@1/5/10 (n) | tokens mean | retrievals mean | LLM calls mean | latency ms mean |",
              "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        r = s.retrieval
        recall = "/".join(_pct(r.pmid_recall.get(str(k))) for k in RECALL_KS) if r.pmid_recall else "n/a"
        lines.append(f"| {s.dataset} | {s.config} | {_pct(r.context_holds_answer)} ({r.context_holds_answer_n}) | {recall} ({r.pmid_recall_n}) | "
                     f"{_num(s.costs.tokens_mean)} | {_num(s.costs.retrievals_mean, 2)} | {_num(s.costs.llm_calls_mean, 2)} | "
                     f"{_num(s.costs.latency_ms_mean, 1)} |")
    if comparisons:
        lines += ["", "## Paired comparisons (B - A, same rows)", "",
                  "Measure: accuracy, or a BioASQ type's primary measure per row (then 'only A right' counts rows where A "
                  "scores higher, and the McNemar p is the exact sign test on those rows).", "",
                  "| dataset | A | B | measure | n | A | B | B - A [95% CI] | only A right | only B right | McNemar p | bootstrap p |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in comparisons:
            r = c.result
            lines.append(f"| {c.dataset} | {c.config_a} | {c.config_b} | {c.measure} | {r.n} | {_pct(r.accuracy_a)} | {_pct(r.accuracy_b)} | "
                         f"{r.difference.fmt()} | {r.only_a_correct} | {r.only_b_correct} | {r.mcnemar_p:.3g} | {r.bootstrap_p:.3g} |")
    if anchors:
        lines += ["", "## Published KG-RAG anchors rescored on the same rows", "",
                  "| dataset | model | setting | rows matched | unparseable | accuracy [95% CI] |", "|---|---|---|---|---|---|"]
        for a in anchors:
            acc = Interval.model_validate(a["accuracy"]).fmt() if a.get("accuracy") else "n/a"
            lines.append(f"| {a['dataset']} | {a['model']} | {a['setting']} | {a['matched']} | {a['parse_failed']} | {acc} |")
    problems = [s for s in summaries if s.torn_tail]
    if problems:
        lines += ["", "Note: a torn last line was ignored in: " + ", ".join(s.path for s in problems)]
    return "\n".join(lines) + "\n"


def _bioasq_panel_rows(summaries: list[RunSummary], dataset: str) -> int:
    runs = [s for s in summaries if s.dataset == dataset and s.bioasq is not None]
    return sum(len(bioasq.MEASURES[s.bioasq.kind]) for s in runs) + (len(bioasq.MEASURES[runs[0].bioasq.kind]) if runs else 0)  # type: ignore[union-attr]


def _plot_bioasq_panel(ax: Any, dataset: str, runs: list[RunSummary]) -> None:
    """One BioASQ panel: every measure of every run (blue) and of the baseline on the first run's rows (grey)."""
    labels: list[str] = []
    values: list[Interval] = []
    kinds: list[str] = []
    for s in runs:
        b = s.bioasq
        assert b is not None
        for m in bioasq.MEASURES[b.kind]:
            labels.append(f"{s.config}: {bioasq.MEASURE_LABELS[m]} ({s.model}), n={b.n}, no answer {b.no_answer}")
            values.append(b.measures[m])
            kinds.append("run")
    first = runs[0].bioasq
    assert first is not None
    for base in first.baselines:
        for m in bioasq.MEASURES[first.kind]:
            labels.append(f"baseline {base.name}: {bioasq.MEASURE_LABELS[m]}, n={first.n}")
            values.append(base.measures[m])
            kinds.append("baseline")
    for i, (v, kind) in enumerate(zip(values, kinds)):
        ax.errorbar(v.value, i, xerr=[[v.value - v.low], [v.high - v.value]], fmt="o" if kind == "run" else "s",
                    color="tab:blue" if kind == "run" else "tab:gray", capsize=4)
        ax.annotate(f"{v.value:.3f}", (v.value, i), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlim(-0.01, 1.01)
    ax.set_xlabel("BioASQ measure (0-1), 95% bootstrap interval; grey: trivial baseline on the same rows")
    setting = "question only; the index holds BioASQ's snippets" if dataset.endswith("-qonly") else "gold snippets given"
    ax.set_title(f"{dataset} ({setting}); settings fingerprint(s) {', '.join(sorted({s.fingerprint for s in runs}))}", fontsize=9)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def plot_accuracy(summaries: list[RunSummary], path: Path, anchors: list[dict[str, Any]] | None = None) -> Path:
    """Accuracy with 95% intervals per configuration (one panel per dataset), baselines dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({s.dataset for s in summaries})
    rows_per_panel = [_bioasq_panel_rows(summaries, d) or
                      len([s for s in summaries if s.dataset == d]) + len([a for a in anchors or [] if a["dataset"] == d])
                      for d in datasets]
    heights = [1.2 + 0.6 * max(3, n) for n in rows_per_panel]
    fig, axes = plt.subplots(len(datasets), 1, figsize=(8, sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, dataset in zip(axes[:, 0], datasets):
        runs = [s for s in summaries if s.dataset == dataset]
        if runs[0].bioasq is not None:
            _plot_bioasq_panel(ax, dataset, runs)
            continue
        labels = [f"{s.config}, select {s.selection_mode} ({s.model}, {s.backend}), n={s.score.n}" for s in runs]
        values = [s.score.accuracy for s in runs]
        kinds = ["run"] * len(runs)
        for a in anchors or []:
            if a["dataset"] == dataset and a.get("accuracy"):
                labels.append(f"anchor: {a['model']} {a['setting']}, n={a['matched']}")
                values.append(Interval.model_validate(a["accuracy"]))
                kinds.append("anchor")
        y = np.arange(len(labels))
        for i, (v, kind) in enumerate(zip(values, kinds)):
            ax.errorbar(100 * v.value, i, xerr=[[100 * (v.value - v.low)], [100 * (v.high - v.value)]], fmt="o" if kind == "run" else "s",
                        color="tab:blue" if kind == "run" else "tab:gray", capsize=4)
            ax.annotate(f"{100 * v.value:.1f}%", (100 * v.value, i), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
        seen: set[str] = set()
        for j, b in enumerate(runs[0].baselines if runs else []):
            if b.name in seen:
                continue
            seen.add(b.name)
            ax.axvline(100 * b.accuracy.value, linestyle="--", color=colors[(j + 1) % len(colors)],
                       label=f"{b.name} {100 * b.accuracy.value:.1f}%")
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        ax.set_xlim(-1, 101)  # points at 0% or 100% stay visible
        ax.set_xlabel("accuracy (%), 95% bootstrap interval")
        ax.set_title(f"{dataset}; settings fingerprint(s) {', '.join(sorted({s.fingerprint for s in runs}))}", fontsize=9)
        ax.invert_yaxis()  # runs on top, anchors below
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title=f"trivial baselines\non the rows of {runs[0].config}" if len({r.score.n for r in runs}) > 1 else "trivial baselines\non the same rows",
                  title_fontsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_tokens(summaries: list[RunSummary], path: Path) -> Path:
    """Mean tokens per question (x) against accuracy with its interval (y), one point per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = itertools.cycle("osD^vP*X")
    colors = itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for dataset in sorted({s.dataset for s in summaries}):
        marker, color = next(markers), next(colors)
        points: dict[tuple[float, float, float, float], list[str]] = {}
        for s in (s for s in summaries if s.dataset == dataset):
            measure, v = s.headline()
            name = s.config if s.selection_mode == "llm" else f"{s.config}, select {s.selection_mode}"
            points.setdefault((round(s.costs.tokens_mean, 3), v.value, v.low, v.high), []).append(
                name if measure == "accuracy" else f"{name} ({measure})")
        for (x, value, low, high), configs in points.items():
            ax.errorbar(x, 100 * value, yerr=[[100 * (value - low)], [100 * (high - value)]], fmt=marker, color=color, capsize=4,
                        label=f"{dataset}: {', '.join(configs)}")
    ax.set_xlabel("mean tokens per question (prompt + completion)")
    ax.set_ylabel("accuracy, or a BioASQ set's primary measure (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.set_xlim(left=0, right=max(1.0, max(s.costs.tokens_mean for s in summaries if s.costs.tokens_mean == s.costs.tokens_mean) * 1.35))
    ax.set_title("Tokens versus accuracy; models: " + ", ".join(sorted({s.model for s in summaries})), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="dataset: configuration(s)", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


class RowPicture(BaseModel):
    """The picture of one row's evidence, beside its gold and predicted answers."""

    id: str
    dataset: str
    config: str
    question: str
    gold: str
    predicted: str | None = Field(description="The option the answer was parsed to (None: unparseable)")
    correct: bool
    png: Path
    html: Path


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def row_subgraph(row: RunRow, path: str = "") -> Any:
    """The row's stored evidence subgraph, marked with its parsed answer and its gold answer.

    Rows written before run files kept subgraphs have none: :class:`RunError` says to run the rows again."""
    from kgrag.explain.subgraph import EvidenceSubgraph

    if row.subgraph is None:
        raise RunError(f"row {row.id!r} of {path or 'the run'} has no stored evidence subgraph (the run was written "
                       "before rows kept one); run it again into a new --out directory to draw its rows")
    return EvidenceSubgraph.model_validate(row.subgraph).marked(choice=row.parsed, gold=row.gold)


def write_row_pictures(runs: list[RunData], ids: list[str], out_dir: Path | str) -> list[RowPicture]:
    """For each chosen row id and each run that has it: ``rows/<config>-<id>.png`` (and ``.html`` with hover
    details) drawing the row's evidence, titled with the configuration, the gold and the predicted answer.

    An id no run has is a :class:`RunInputError` (exit 2) naming it."""
    out = Path(out_dir) / "rows"
    pictures: list[RowPicture] = []
    known = {row.id for run in runs for row in run.rows}
    missing = [i for i in ids if i not in known]
    if missing:
        raise RunInputError(f"--picture-rows: no run has row(s) {', '.join(missing)} (ids look like "
                            f"{', '.join(sorted(known)[:3])})")
    for row_id in ids:
        for run in runs:
            row = next((r for r in run.rows if r.id == row_id), None)
            if row is None:
                continue
            graph = row_subgraph(row, run.path)
            title = f"{row.dataset} / {row.config} — row {row.id}: gold {row.gold}, predicted {row.parsed or 'unparseable'}"
            stem = out / f"{_safe_name(row.config)}-{_safe_name(row.id)}"
            png = write_picture(graph, stem.with_suffix(".png"), title=title)
            page = write_picture(graph, stem.with_suffix(".html"), title=title)
            pictures.append(RowPicture(id=row.id, dataset=row.dataset, config=row.config, question=row.question,
                                       gold=row.gold, predicted=row.parsed, correct=row.correct, png=png, html=page))
    return pictures


def pictures_markdown(pictures: list[RowPicture], out_dir: Path) -> str:
    """A Markdown section: one table row per picture, the gold and predicted answers beside it."""
    lines = ["", "## Rows drawn", "", "Each picture shows the row's evidence: question entities, options (chosen "
             "green or red, gold ringed), the edges that decided; the HTML file has hover details.", "",
             "| row | config | question | gold | predicted | correct | evidence |", "|---|---|---|---|---|---|---|"]
    for p in pictures:
        rel_png, rel_html = p.png.relative_to(out_dir).as_posix(), p.html.relative_to(out_dir).as_posix()
        question = p.question.replace("|", "\\|")
        question = question if len(question) <= 120 else question[:119] + "…"
        lines.append(f"| {p.id} | {p.config} | {question} | {p.gold} | {p.predicted or 'unparseable'} | "
                     f"{'yes' if p.correct else 'no'} | ![{p.id}]({rel_png}) ([hover]({rel_html})) |")
    return "\n".join(lines) + "\n"


class ReportFiles(BaseModel):
    json_path: Path
    markdown_path: Path
    accuracy_png: Path
    tokens_png: Path
    row_pictures: list[RowPicture] = Field(default_factory=list)


def write_report(summaries: list[RunSummary], out_dir: Path | str, comparisons: list[Comparison] | None = None,
                 anchors: list[dict[str, Any]] | None = None, runs: list[RunData] | None = None,
                 picture_rows: list[str] | None = None) -> ReportFiles:
    """Write report.json, report.md, accuracy.png and tokens_vs_accuracy.png into ``out_dir``; with
    ``picture_rows`` (row ids) and the ``runs`` they come from, also a picture of each row's evidence
    (rows/*.png and *.html), listed in report.md beside the gold and predicted answers."""
    if not summaries:
        raise RunError("nothing to report: no run summaries")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    comparisons = comparisons or []
    pictures = write_row_pictures(runs or [], list(picture_rows), out) if picture_rows else []
    payload = {"report_git_commit": commit, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "runs": [s.model_dump(mode="json") for s in summaries], "comparisons": [c.model_dump(mode="json") for c in comparisons],
               "anchors": anchors or [], "row_pictures": [p.model_dump(mode="json") for p in pictures]}
    files = ReportFiles(json_path=out / "report.json", markdown_path=out / "report.md", accuracy_png=out / "accuracy.png",
                        tokens_png=out / "tokens_vs_accuracy.png", row_pictures=pictures)
    files.json_path.write_text(json.dumps(payload, indent=2))
    text = markdown(summaries, comparisons, anchors, commit)
    files.markdown_path.write_text(text + (pictures_markdown(pictures, out) if pictures else ""))
    plot_accuracy(summaries, files.accuracy_png, anchors)
    plot_tokens(summaries, files.tokens_png)
    return files
