"""Reports: JSON, Markdown and PNG from real run files, naming the configuration; paired comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.report import compare_runs, load_run, summarize_run, write_report
from eval.runner import RunError, run_eval
from kgrag.settings import load_settings
from tests.kgrag_env import use_kgrag_env

FAKE = "tests.fixtures.eval.fake_pipeline:make_pipeline"


@pytest.fixture()
def two_runs(fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_kgrag_env(monkeypatch)
    settings = load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "eval" / "data")
    paths = [run_eval(settings, "biomixqa-tf", config, out_dir=tmp_path / "runs", pipeline_factory=FAKE, progress=False,
                      log=lambda m: None).path for config in ("no-rag", "kg")]
    return settings, paths


def test_summary_scores_baselines_costs_and_covered_rows(two_runs):
    _, (no_rag, kg) = two_runs
    summary = summarize_run(load_run(kg), covered_ids={"tf-0", "tf-1", "tf-7"}, n_boot=300)
    # fake with retrieval: the not-rule on 8 rows, except tf-7 and tf-17 unparseable; tf-4 (DOID, gold False) wrong.
    assert (summary.score.n, summary.score.correct, summary.score.parse_failed) == (8, 5, 2)
    assert summary.covered is not None and (summary.covered.n, summary.covered.correct) == (3, 2)
    names = {b.name: b for b in summary.baselines}
    assert names["not-rule"].accuracy.value == pytest.approx(7 / 8)
    assert names["majority"].accuracy.value == pytest.approx(5 / 8)
    assert summary.costs.tokens_mean == 512 and summary.costs.retrievals_mean == 1
    assert summary.model == "smollm2" and summary.backend == "transformers" and len(summary.data_sha256) == 64
    assert summary.git_commit != "" and summary.fingerprint in kg.name


def test_compare_runs_pairs_same_rows(two_runs):
    _, paths = two_runs
    comparisons = compare_runs([load_run(p) for p in paths], n_boot=300)
    assert len(comparisons) == 1
    c = comparisons[0]
    assert (c.config_a, c.config_b, c.result.n, c.only_in_a, c.only_in_b) == ("no-rag", "kg", 8, 0, 0)
    # no-rag answers True always: right on tf-1, tf-8, tf-10 (tf-7, tf-17 unparseable); kg adds tf-0, tf-2.
    assert (c.result.only_a_correct, c.result.only_b_correct) == (0, 2)


def test_write_report_files_name_the_configuration(two_runs, tmp_path):
    _, paths = two_runs
    runs = [load_run(p) for p in paths]
    summaries = [summarize_run(r, n_boot=300) for r in runs]
    anchors = [{"dataset": "biomixqa-tf", "model": "GPT-4", "setting": "prompt", "matched": 6, "parse_failed": 1,
                "accuracy": {"value": 0.66, "low": 0.3, "high": 1.0}}]
    files = write_report(summaries, tmp_path / "report", compare_runs(runs, n_boot=300), anchors)
    for png in (files.accuracy_png, files.tokens_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    md = files.markdown_path.read_text()
    for s in summaries:
        assert s.fingerprint in md and s.data_sha256[:16] in md
    assert "not-rule" in md and "McNemar" in md and "GPT-4" in md and "smollm2" in md
    payload = json.loads(files.json_path.read_text())
    assert payload["report_git_commit"] and len(payload["runs"]) == 2 and payload["anchors"] == anchors


def test_empty_and_missing_runs_are_errors(tmp_path):
    with pytest.raises(RunError, match="not found"):
        load_run(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(RunError, match="no rows"):
        summarize_run(load_run(tmp_path / "empty.jsonl"))


def test_report_with_two_datasets_has_one_panel_each(two_runs, tmp_path):
    from PIL import Image

    settings, (_, kg) = two_runs
    mcq = run_eval(settings, "biomixqa-mcq", "kg", out_dir=tmp_path / "runs", pipeline_factory=FAKE, progress=False, log=lambda m: None).path
    summaries = [summarize_run(load_run(p), n_boot=200) for p in (kg, mcq)]
    files = write_report(summaries, tmp_path / "two")
    single = write_report(summaries[:1], tmp_path / "one")
    assert Image.open(files.accuracy_png).height > Image.open(single.accuracy_png).height
    assert "biomixqa-mcq" in files.markdown_path.read_text() and "frequent-answer" in files.markdown_path.read_text()


def test_support_breakdown_keeps_direct_and_inferred_apart(two_runs, tmp_path):
    from eval.report import support_breakdown

    _, (_, kg) = two_runs
    run = load_run(kg)
    rows = run.rows
    # what the pipeline recorded: direct on two rows, ontology on one (wrong), class on one; the rest the LLM's
    marked = [rows[0].model_copy(update={"support": "direct", "correct": True}),
              rows[1].model_copy(update={"support": "direct", "correct": False}),
              rows[2].model_copy(update={"support": "ontology", "correct": False}),
              rows[3].model_copy(update={"support": "class", "correct": True}),
              rows[4].model_copy(update={"support": None, "abstained": True, "parsed": None, "correct": False})]
    counts = support_breakdown(marked + rows[5:])
    assert (counts["direct"].rows, counts["direct"].correct) == (2, 1)
    assert (counts["ontology"].rows, counts["ontology"].correct) == (1, 0)
    assert (counts["class"].rows, counts["class"].correct) == (1, 1)
    assert counts["abstained"].rows == 1 + sum(1 for r in rows[5:] if r.parsed is None)
    assert sum(c.rows for c in counts.values()) == len(rows)
    answered = next(r for r in rows[5:] if r.parsed is not None)
    old = type(answered).model_validate({k: v for k, v in answered.model_dump().items() if k != "support"})
    assert list(support_breakdown([old])) == ["unrecorded"]  # a row written before runs kept what decided it
    summary = summarize_run(run.model_copy(update={"rows": marked + rows[5:]}), n_boot=100)
    md = write_report([summary], tmp_path / "r").markdown_path.read_text()
    assert "## What decided the answers" in md and "| biomixqa-tf | kg | ontology | 1 | 0 | 0.0% |" in md
