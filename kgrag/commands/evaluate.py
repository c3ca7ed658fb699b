"""`kgrag eval`, `kgrag eval-report` and `kgrag anchors`: benchmark runs, reports, published anchors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from kgrag.errors import InputError

console = Console(stderr=True, soft_wrap=True)


def read_id_file(path: Path, settings: Any = None) -> set[str]:
    """Covered row ids from a file: the JSON of ``kgrag graph-coverage --json`` (its ``uncovered`` row
    positions are turned into our ids), a JSON list of ids, or one id per line ('#' comments allowed)."""
    if not path.is_file():
        raise InputError(f"covered-ids file {path} not found")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(data, list):
            return {str(x) for x in data}
        if isinstance(data, dict) and {"dataset", "uncovered"} <= set(data):
            from eval.datasets import load_dataset
            from kgrag.settings import load_settings

            loaded = load_dataset(settings or load_settings(), str(data["dataset"]))
            uncovered = {int(i) for i in data["uncovered"]}
            return {item.id for item in loaded.items if item.metadata.get("row") not in uncovered}
        raise InputError(f"{path}: expected a JSON list of ids or `kgrag graph-coverage --json` output")
    return {line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}


def _print_bioasq(summary: Any, extra: dict[str, Any]) -> None:
    from eval.bioasq import MEASURE_LABELS, MEASURES

    b = summary.bioasq
    console.print(f"  rows={b.n} (new {extra['new_rows']}, resumed {extra['already_done']})  no answer {b.no_answer} (scored 0)"
                  + (f"  items per row {b.mean_items:.1f}" if b.mean_items is not None else ""))
    console.print(f"  setting: {b.setting}")
    for m in MEASURES[b.kind]:
        v = b.measures[m]
        base = "; ".join(f"{x.name} {x.measures[m].value:.3f} [{x.measures[m].low:.3f}, {x.measures[m].high:.3f}]" for x in b.baselines)
        console.print(f"  {MEASURE_LABELS[m]:<13} {v.value:.3f} [{v.low:.3f}, {v.high:.3f}]   baseline {base}")
    for x in b.baselines:
        console.print(f"  baseline {x.name}: {x.description}")


def _print_summary(summary: Any, anchors: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    s = summary
    console.print(f"[bold]{s.dataset} / {s.config}[/bold]  model={s.model} backend={s.backend} fingerprint={s.fingerprint} "
                  f"data sha256={s.data_sha256[:12]} commit={s.git_commit[:12]}")
    if s.bioasq is not None:
        _print_bioasq(s, extra)
    else:
        console.print(f"  rows={s.score.n} (new {extra['new_rows']}, resumed {extra['already_done']})  "
                      f"accuracy {s.score.accuracy.fmt()}  macro-F1 {s.score.macro_f1.fmt()}  unparseable {s.score.parse_failed}")
    if s.covered is not None:
        console.print(f"  covered rows={s.covered.n}: accuracy {s.covered.accuracy.fmt()}")
    if s.support:
        console.print("  decided by: " + ", ".join(f"{kind} {c.rows} ({c.correct} right)" if kind != "abstained"
                                                  else f"{kind} {c.rows}" for kind, c in s.support.items()))
    for b in s.baselines:
        console.print(f"  baseline {b.name:<20} {b.accuracy.fmt()}  ({b.description})")
    for a in anchors:
        acc = f"{a['accuracy']['value'] * 100:.1f}% [{a['accuracy']['low'] * 100:.1f}, {a['accuracy']['high'] * 100:.1f}]" if a["accuracy"] else "n/a"
        console.print(f"  anchor   {a['model'] + ' ' + a['setting']:<28} {acc}  matched {a['matched']}, unparseable {a['parse_failed']}")
    r, c = s.retrieval, s.costs
    if r.context_holds_answer is not None:
        console.print(f"  context holds the answer: {100 * r.context_holds_answer:.1f}% of {r.context_holds_answer_n}")
    if r.pmid_recall:
        console.print("  gold-PMID recall@k: " + ", ".join(f"@{k} {100 * v:.1f}%" for k, v in r.pmid_recall.items()))
    console.print(f"  per question: tokens {c.tokens_mean:.0f}, retrievals {c.retrievals_mean:.2f}, latency "
                  f"{'n/a' if c.latency_ms_mean is None else f'{c.latency_ms_mean:.0f} ms'}")
    console.print(f"  run file: {extra['path']}")


def eval_command(
    dataset: str = typer.Option(..., "--dataset", help="biomixqa-tf, biomixqa-mcq, pubmedqa, pubmedqa-qonly, medqa, medmcqa, mmlu, bioasq; "
                                 "bioasq-factoid, bioasq-list, bioasq-summary, bioasq-yesno (gold snippets given), each also as "
                                 "-qonly (question only, retrieval)"),
    config: str = typer.Option(..., "--config", help="no-rag, kg, text, kg+text, gated"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    limit: Optional[int] = typer.Option(None, "--limit", min=0, help="Only the first N rows (after --seed's shuffle)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Shuffle rows with this seed before --limit."),
    out: Path = typer.Option(Path("runs"), "--out", help="Run directory: <out>/<dataset>/<config>-<fingerprint>.jsonl"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Questions per answer_batch() call."),
    covered: Optional[Path] = typer.Option(None, "--covered", help="Rows the loaded graph covers: `kgrag graph-coverage --json` output, a JSON list of ids, or one id per line."),
    pipeline: str = typer.Option("kgrag.answer.pipeline:Pipeline.from_settings", "--pipeline",
                                 help="Pipeline factory 'module:callable' taking Settings (tests use a fake)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Run (or resume) a configuration on a benchmark; print accuracy with intervals beside baselines and anchors."""
    from eval.anchors import ANCHOR_DATASETS, score_anchors
    from eval.datasets import load_dataset
    from eval.report import RunData, load_run, summarize_run
    from eval.runner import config_settings, run_eval, select_items
    from kgrag.settings import load_settings

    settings = load_settings()
    covered_ids = read_id_file(covered, settings) if covered else None
    data = load_dataset(config_settings(settings, config), dataset)
    result = run_eval(settings, dataset, config, out_dir=out, limit=limit, seed=seed, batch_size=batch_size,
                      pipeline_factory=pipeline, progress=progress, log=lambda m: console.print(f"[yellow]{m}[/yellow]"),
                      loaded=data)
    selected = {item.id for item in select_items(data.items, limit, seed)}
    run = load_run(result.path)
    rows = [r for r in run.rows if r.id in selected]
    summary = summarize_run(RunData(path=run.path, rows=rows, meta=run.meta, torn_tail=run.torn_tail), covered_ids=covered_ids)
    anchors = ([a.table_row() for a in score_anchors(settings, dataset, ids=selected, data=data)]
               if dataset in ANCHOR_DATASETS else [])
    extra = {"path": str(result.path), "new_rows": result.new_rows, "already_done": result.already_done,
             "elapsed_s": round(result.elapsed_s, 2), "load": result.load, "gate_failed_rows": result.gate_failed_rows}
    if as_json:
        typer.echo(json.dumps({"run": extra, "summary": summary.model_dump(mode="json"), "anchors": anchors}, indent=2))
    else:
        _print_summary(summary, anchors, extra)


def eval_report_command(
    runs: list[Path] = typer.Argument(..., help="Run JSONL files (one per configuration)."),
    out: Path = typer.Option(Path("reports"), "--out", help="Directory for report.json, report.md and the PNG plots."),
    covered: Optional[Path] = typer.Option(None, "--covered", help="File of row ids the loaded graph covers."),
    anchors: bool = typer.Option(True, "--anchors/--no-anchors", help="Add the KG-RAG anchors rescored on the same rows (biomixqa sets)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report JSON on stdout."),
    picture_rows: Optional[str] = typer.Option(None, "--picture-rows", help="Comma-separated row ids: draw each "
                                               "row's evidence (rows/<config>-<id>.png and .html) beside its gold "
                                               "and predicted answers, listed in report.md."),
) -> None:
    """Make a report (JSON, Markdown, PNG) from run files, with paired comparisons between them."""
    from eval.anchors import ANCHOR_DATASETS, score_anchors
    from eval.report import compare_runs, load_run, summarize_run, write_report
    from kgrag.settings import load_settings

    covered_ids = read_id_file(covered) if covered else None
    loaded = [load_run(p) for p in runs]
    summaries = [summarize_run(r, covered_ids=covered_ids) for r in loaded]
    anchor_rows: list[dict[str, Any]] = []
    if anchors:
        datasets = {s.dataset for s in summaries} & set(ANCHOR_DATASETS)
        if datasets:
            settings = load_settings()
            for name in sorted(datasets):
                ids = {row.id for r in loaded for row in r.rows if row.dataset == name}
                anchor_rows += [a.table_row() for a in score_anchors(settings, name, ids=ids)]
    row_ids = [i.strip() for i in picture_rows.split(",") if i.strip()] if picture_rows else []
    if picture_rows is not None and not row_ids:
        raise InputError("--picture-rows: give one or more row ids, separated by commas")
    files = write_report(summaries, out, compare_runs(loaded), anchor_rows, runs=loaded, picture_rows=row_ids)
    if as_json:
        typer.echo(files.json_path.read_text())
    else:
        console.print(f"wrote {files.markdown_path}, {files.json_path}, {files.accuracy_png}, {files.tokens_png}")
        for p in files.row_pictures:
            console.print(f"row {p.id} ({p.config}): gold {p.gold}, predicted {p.predicted or 'unparseable'} -> {p.png}")


def anchors_command(
    dataset: str = typer.Option(..., "--dataset", help="biomixqa-tf or biomixqa-mcq"),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON on stdout."),
) -> None:
    """Rescore the published KG-RAG answers with our parser on the development rows."""
    from eval.anchors import score_anchors
    from eval.datasets import load_dataset
    from eval.metrics import baselines_for
    from kgrag.settings import load_settings

    settings = load_settings()
    data = load_dataset(settings, dataset)
    scores = score_anchors(settings, dataset, data=data)
    items = data.items
    baselines = baselines_for(data.task, [i.question.text for i in items], [i.gold for i in items],
                              [i.question.options or [] for i in items], dataset=dataset)
    if as_json:
        typer.echo(json.dumps({"dataset": dataset, "rows": len(items), "data_sha256": data.sha256,
                               "anchors": [s.model_dump(mode="json") for s in scores],
                               "baselines": [b.model_dump(mode="json") for b in baselines]}, indent=2))
        return
    console.print(f"[bold]{dataset}[/bold]: {len(items)} dev rows, data sha256 {data.sha256[:12]}")
    for s in scores:
        acc = s.score.accuracy.fmt() if s.score else "n/a"
        console.print(f"  {s.model:<18} {s.setting:<7} accuracy {acc}  matched {s.matched}/{len(items)}, "
                      f"unparseable {s.parse_failed}, label disagreements {len(s.label_disagreements)}")
    for b in baselines:
        console.print(f"  baseline {b.name:<20} {b.accuracy.fmt()}  ({b.description})")


def register(app: typer.Typer) -> None:
    """Add `eval`, `eval-report` and `anchors` to the `kgrag` app."""
    app.command("eval")(eval_command)
    app.command("eval-report")(eval_report_command)
    app.command("anchors")(anchors_command)
