"""BioASQ Task B: loading the golden files (repeats, drops, both settings), the official measures, baselines, and a
run scored end to end through the runner, the report and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval import bioasq
from eval.bioasq import (lead_summary, normalize, rouge_tokens, score_factoid, score_list, score_summary, snippet_ngrams,
                         tree_sha256)
from eval.datasets import load_dataset
from eval.report import compare_runs, load_run, summarize_run, write_report
from eval.runner import read_run, run_eval
from kgrag.cli import app
from kgrag.settings import load_settings
from tests.kgrag_env import use_kgrag_env

FAKE = "tests.fixtures.eval.fake_bioasq:make_pipeline"


@pytest.fixture()
def fx_settings(fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_kgrag_env(monkeypatch)
    return load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "eval" / "data")


# --- loading ----------------------------------------------------------------------------------


def test_factoid_loader_keeps_the_latest_copy_of_a_repeated_id_and_reports_every_row(fx_settings):
    data = load_dataset(fx_settings, "bioasq-factoid")
    assert data.rows_in_file == 5  # f1 twice, f2, f3 (no exact answer), f4
    assert [i.id for i in data.items] == ["f1", "f2", "f4"]
    dropped = {p.id: p.problem for p in data.dropped}
    assert set(dropped) == {"f1", "f3"}
    assert "8B1_golden.json" in dropped["f1"] and "7B1_golden.json" in dropped["f1"]
    assert "no exact answer" in dropped["f3"]
    assert len(data.items) + len(data.dropped) == data.rows_in_file
    f1 = data.items[0]
    assert f1.metadata["exact_answer"] == [["BRCA1", "breast cancer 1"]] and f1.metadata["file"] == "8B1_golden.json"
    assert f1.question.task == "free" and f1.question.options is None
    assert f1.question.context == "BRCA1 is mutated in hereditary breast cancer.\nCarriers of BRCA1 mutations have a high risk."
    assert f1.metadata["gold_pmids"] == ["111"]
    # the older flat format of a factoid answer is one answer with synonyms; a bare ideal string is one ideal answer
    f2 = data.items[1]
    assert f2.metadata["exact_answer"] == [["impetigo", "impetigo contagiosa"]]
    assert f2.metadata["ideal_answer"] == ["Retapamulin treats impetigo."]
    flagged = " / ".join(p.problem for p in data.flagged if p.id == "f4")
    assert "same question text as id f2" in flagged and "no snippets" in flagged
    assert data.sha256 == tree_sha256(fx_settings.sources_dir / "bioasq")


def test_question_only_setting_has_no_context_and_the_other_types_load(fx_settings):
    qonly = load_dataset(fx_settings, "bioasq-factoid-qonly")
    assert [i.id for i in qonly.items] == ["f1", "f2", "f4"]
    assert all(i.question.context is None for i in qonly.items)
    lists = load_dataset(fx_settings, "bioasq-list")
    assert [i.id for i in lists.items] == ["l1", "l2"] and lists.items[0].gold == "casirivimab | REGN10933; imdevimab | REGN10987"
    summary = load_dataset(fx_settings, "bioasq-summary")
    assert [i.id for i in summary.items] == ["s1"] and [p.id for p in summary.dropped] == ["s2"]
    yesno = load_dataset(fx_settings, "bioasq-yesno")
    [y] = yesno.items
    assert (y.gold, y.question.options, y.question.task) == ("yes", ["yes", "no"], "mcq")


def test_a_changed_golden_file_changes_the_checksum(tmp_path: Path, fixtures_dir: Path):
    import shutil

    root = tmp_path / "bioasq"
    shutil.copytree(fixtures_dir / "eval" / "data" / "bioasq", root)
    before = tree_sha256(root)
    path = root / "Task8BGoldenEnriched" / "8B1_golden.json"
    path.write_text(path.read_text().replace("BRCA1", "BRCA2"))
    assert tree_sha256(root) != before


# --- measures ---------------------------------------------------------------------------------


def test_normalize_ignores_case_space_and_outer_punctuation_only():
    assert normalize("  The  BRCA1 gene. ") == "the brca1 gene"
    assert normalize("PI3K/AKT") == "pi3k/akt" and normalize("VEGF-A") != normalize("VEGF A")
    assert normalize("ＢＲＣＡ１") == "brca1"  # NFKC: full-width letters and digits


def test_factoid_strict_lenient_and_reciprocal_rank_within_five():
    gold = [["BRCA1", "breast cancer 1"]]
    assert score_factoid(gold, [["brca1"]]).model_dump() == {"strict": 1.0, "lenient": 1.0, "mrr": 1.0, "rank": 1}
    third = score_factoid(gold, [["TP53"], ["ATM"], ["BRCA-1", "Breast cancer 1"]])
    assert (third.strict, third.lenient, third.mrr, third.rank) == (0.0, 1.0, pytest.approx(1 / 3), 3)
    sixth = score_factoid(gold, [["a"], ["b"], ["c"], ["d"], ["e"], ["BRCA1"]])
    assert (sixth.lenient, sixth.mrr, sixth.rank) == (0.0, 0.0, None)
    assert score_factoid(gold, []).mrr == 0.0
    assert score_factoid(gold, [["BRCA"]]).lenient == 0.0  # no partial matches


def test_list_matches_each_gold_answer_once_and_uses_synonyms():
    gold = [["casirivimab", "REGN10933"], ["imdevimab"]]
    s = score_list(gold, [["REGN10933"], ["Casirivimab"], ["imdevimab"], ["aspirin"]])
    assert (s.true_positives, s.precision, s.recall) == (2, 0.5, 1.0) and s.f1 == pytest.approx(2 / 3)
    assert score_list(gold, [["x"], ["IMDEVIMAB", "y"]]).model_dump() == {"precision": 0.5, "recall": 0.5, "f1": 0.5,
                                                                            "true_positives": 1}
    assert score_list(gold, []).model_dump() == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "true_positives": 0}


def test_summary_rouge2_and_su4_from_rouge_metric():
    same = score_summary("Condensin compacts chromosomes.", ["condensin compacts chromosomes"])
    assert same.rouge2_recall == same.rougesu4_f1 == pytest.approx(1.0)
    part = score_summary("the cat sat", ["the cat sat down"])
    assert part.rouge2_recall == pytest.approx(2 / 3) and part.rouge2_f1 == pytest.approx(0.8)
    # ROUGE-1.5.5's SU4 (as rouge-metric reproduces it): skip bigrams within 4, plus unigrams but the last word
    assert part.rougesu4_recall == pytest.approx(5 / 9)
    assert score_summary("", ["anything at all"]).rouge2_recall == 0.0
    assert rouge_tokens("IL-6, TNF-α!") == ["il", "6", "tnf"]


def test_baselines_snippet_ngrams_and_lead():
    snippets = ["Retapamulin treats impetigo in children.", "Impetigo responded to retapamulin.", "Impetigo is common."]
    top = snippet_ngrams("What does Retapamulin treat?", snippets, 2)
    assert top[0] == ["impetigo"] or top[0] == ["Impetigo"]
    assert all("retapamulin" != t[0].lower() for t in top)  # only question words: never a candidate
    assert lead_summary(["One two three.", "Four five six."], ["a b c d"]) == "One two three. Four"


# --- runs, reports, CLI -----------------------------------------------------------------------


def _run(settings, dataset: str, out: Path):
    return run_eval(settings, dataset, "text", out_dir=out, pipeline_factory=FAKE, progress=False, log=lambda m: None)


def test_factoid_run_rows_scores_and_report(fx_settings, tmp_path: Path):
    result = _run(fx_settings, "bioasq-factoid", tmp_path / "runs")
    rows = {r.id: r for r in read_run(result.path).rows}
    assert rows["f1"].scores == {"strict": 0.0, "lenient": 1.0, "mrr": 0.5}
    assert rows["f1"].items[1].names == ["BRCA-1", "Breast Cancer 1."] and rows["f1"].context_holds_answer is True
    assert rows["f2"].parse_failed and rows["f2"].parse_method == "none" and rows["f2"].scores["mrr"] == 0.0
    assert rows["f4"].correct and rows["f4"].scores["strict"] == 1.0
    again = _run(fx_settings, "bioasq-factoid", tmp_path / "runs")
    assert (again.new_rows, again.already_done) == (0, 3)  # resumable
    summary = summarize_run(load_run(result.path), n_boot=200)
    b = summary.bioasq
    assert b is not None and (b.n, b.no_answer, b.kind, b.primary) == (3, 1, "factoid", "mrr")
    assert b.measures["strict"].value == pytest.approx(1 / 3) and b.measures["lenient"].value == pytest.approx(2 / 3)
    assert b.measures["mrr"].value == pytest.approx(0.5)
    assert summary.score.parse_failed == 1 and summary.baselines == [] and summary.headline()[0] == "MRR"
    [base] = b.baselines
    assert base.name == "snippet-ngrams" and set(base.measures) == {"strict", "lenient", "mrr"}
    assert "gold snippets given" in b.setting


def test_list_summary_and_qonly_reports_name_the_setting(fx_settings, tmp_path: Path):
    lists = summarize_run(load_run(_run(fx_settings, "bioasq-list", tmp_path / "runs").path), n_boot=200)
    assert lists.bioasq is not None
    assert lists.bioasq.measures["precision"].value == pytest.approx((0.5 + 1.0) / 2)
    assert lists.bioasq.measures["recall"].value == pytest.approx((1.0 + 1 / 3) / 2)
    assert lists.bioasq.measures["f1"].value == pytest.approx((2 / 3 + 0.5) / 2)
    summ = summarize_run(load_run(_run(fx_settings, "bioasq-summary", tmp_path / "runs").path), n_boot=200)
    assert summ.bioasq is not None and summ.bioasq.measures["rouge2_recall"].value == pytest.approx(1.0)
    assert summ.bioasq.baselines[0].name == "lead" and summ.bioasq.baselines[0].measures["rouge2_recall"].value < 1.0
    qonly_run = load_run(_run(fx_settings, "bioasq-factoid-qonly", tmp_path / "runs").path)
    qonly = summarize_run(qonly_run, n_boot=200)
    assert qonly.bioasq is not None and "holds BioASQ's snippets" in qonly.bioasq.setting
    assert "oracle" in qonly.bioasq.baselines[0].description
    assert qonly.retrieval.pmid_recall["1"] == pytest.approx(1 / 2)  # f1 retrieved PMID 111; f2 missed; f4 has no gold PMIDs
    files = write_report([lists, summ, qonly], tmp_path / "report")
    text = files.markdown_path.read_text()
    assert "## BioASQ measures" in text and "question only, index holds BioASQ snippets" in text
    assert "| bioasq-list | text | gold snippets given | 2 | 0 | mean F1 (primary) | 0.583" in text
    assert "## Scores" not in text  # no option set in this report
    assert files.accuracy_png.stat().st_size > 0 and files.tokens_png.stat().st_size > 0
    payload = json.loads(files.json_path.read_text())
    assert payload["runs"][0]["bioasq"]["kind"] == "list"


def test_paired_comparison_of_two_factoid_runs_uses_reciprocal_rank(fx_settings, tmp_path: Path):
    a = load_run(_run(fx_settings, "bioasq-factoid", tmp_path / "runs").path)
    b = a.model_copy(deep=True)
    for row in b.rows:
        row.config = "other"
        if row.id == "f1":
            row.scores = {"strict": 1.0, "lenient": 1.0, "mrr": 1.0}
    [c] = compare_runs([a, b], n_boot=200)
    assert c.measure == "mrr" and (c.result.only_a_correct, c.result.only_b_correct) == (0, 1)
    assert c.result.difference.value == pytest.approx(0.5 / 3)


def test_cli_eval_and_report_on_bioasq(fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_kgrag_env(monkeypatch, sources=fixtures_dir / "eval" / "data", home=tmp_path / "home")
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "--dataset", "bioasq-list-qonly", "--config", "text", "--out", str(tmp_path / "runs"),
                            "--pipeline", FAKE, "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "mean F1" in r.output and "no answer 0" in r.output and "holds BioASQ's snippets" in r.output
    r = runner.invoke(app, ["eval", "--dataset", "bioasq-yesno", "--config", "text", "--json", "--out", str(tmp_path / "runs"),
                            "--pipeline", FAKE, "--no-progress"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"]["score"]["correct"] == 1
    runs = sorted((tmp_path / "runs").rglob("*.jsonl"))
    r = runner.invoke(app, ["eval-report", *map(str, runs), "--out", str(tmp_path / "report")])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## BioASQ measures" in text and "## Scores" in text
