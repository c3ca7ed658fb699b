"""`kgrag eval`, `kgrag eval-report` and `kgrag anchors` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrag.cli import app
from tests.kgrag_env import use_kgrag_env

FAKE = "tests.fixtures.eval.fake_pipeline:make_pipeline"


@pytest.fixture()
def env(fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_kgrag_env(monkeypatch, sources=fixtures_dir / "eval" / "data", home=tmp_path / "home")
    return tmp_path


def test_eval_json_has_scores_baselines_and_anchors_on_same_rows(env):
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--dataset", "biomixqa-tf", "--config", "kg", "--json", "--limit", "4", "--seed", "0",
                                 "--out", str(env / "runs"), "--pipeline", FAKE, "--no-progress"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["score"]["n"] == 4
    assert {b["name"] for b in out["summary"]["baselines"]} == {"majority", "not-rule", "random"}
    [anchor] = out["anchors"]
    assert out["summary"]["covered"] is None
    assert anchor["model"] == "GPT-4" and anchor["matched"] + anchor["missing"] == 4


def test_eval_report_and_anchors_commands(env):
    runner = CliRunner()
    for config in ("no-rag", "gated"):
        r = runner.invoke(app, ["eval", "--dataset", "biomixqa-mcq", "--config", config, "--out", str(env / "runs"),
                                "--pipeline", FAKE, "--no-progress"])
        assert r.exit_code == 0, r.output
    runs = sorted((env / "runs" / "biomixqa-mcq").glob("*.jsonl"))
    assert len(runs) == 2
    r = runner.invoke(app, ["eval-report", *map(str, runs), "--out", str(env / "report")])
    assert r.exit_code == 0, r.output
    assert (env / "report" / "accuracy.png").is_file() and "frequent-answer" in (env / "report" / "report.md").read_text()
    r = runner.invoke(app, ["anchors", "--dataset", "biomixqa-mcq", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["anchors"][0]["matched"] == 3


def test_bad_names_are_clear_errors(env):
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "--dataset", "nope", "--config", "kg", "--pipeline", FAKE])
    assert r.exit_code == 2 and "unknown dataset 'nope'" in r.output
    r = runner.invoke(app, ["eval", "--dataset", "biomixqa-tf", "--config", "rag", "--pipeline", FAKE])
    assert r.exit_code == 2 and "unknown configuration 'rag'" in r.output
    r = runner.invoke(app, ["anchors", "--dataset", "pubmedqa"])
    assert r.exit_code == 2 and "anchors exist only" in r.output


def test_eval_covered_ids_file(env):
    ids = env / "covered.txt"
    ids.write_text("# rows the graph covers\ntf-0\ntf-2\n\ntf-1\n")
    r = CliRunner().invoke(app, ["eval", "--dataset", "biomixqa-tf", "--config", "kg", "--json", "--out", str(env / "runs"),
                                 "--pipeline", FAKE, "--no-progress", "--covered", str(ids)])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)["summary"]
    assert summary["covered_ids_given"] == 3 and summary["covered"]["n"] == 3 and summary["covered"]["correct"] == 3
    r = CliRunner().invoke(app, ["eval", "--dataset", "biomixqa-tf", "--config", "kg", "--pipeline", FAKE, "--covered", str(env / "no.txt")])
    assert r.exit_code == 2 and "no.txt not found" in r.output


def test_covered_from_graph_coverage_json(env):
    # `kgrag graph-coverage --json` names uncovered rows by position in the CSV; fixture positions 0..9.
    report = env / "coverage.json"
    report.write_text(json.dumps({"dataset": "biomixqa-tf", "rows": 10, "covered": 7, "uncovered": [0, 3, 9], "unparsed": []}))
    r = CliRunner().invoke(app, ["eval", "--dataset", "biomixqa-tf", "--config", "kg", "--json", "--out", str(env / "runs"),
                                 "--pipeline", FAKE, "--no-progress", "--covered", str(report)])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)["summary"]
    # 8 loaded rows; positions 0 (tf-0), 3 (tf-4) and 9 (tf-17) uncovered -> 5 covered
    assert summary["covered_ids_given"] == 5 and summary["covered"]["n"] == 5
