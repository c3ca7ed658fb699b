"""Benchmark loaders: ids, golds, options, and every malformed or suspicious row reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.datasets import DATASETS, DatasetError, load_dataset, split_mcq_text
from kgrag.errors import SourceFileError
from kgrag.settings import load_settings


@pytest.fixture()
def fx_settings(fixtures_dir: Path, tmp_path: Path):
    return load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "eval" / "data")


def test_true_false_rows_and_dropped_rows_are_reported(fx_settings):
    data = load_dataset(fx_settings, "biomixqa-tf")
    assert data.rows_in_file == 10
    assert [i.id for i in data.items] == ["tf-0", "tf-1", "tf-2", "tf-4", "tf-7", "tf-8", "tf-10", "tf-17"]
    dropped = {p.id: p.problem for p in data.dropped}
    assert set(dropped) == {"tf-11", "tf-13"}
    assert "Maybe" in dropped["tf-11"] and "empty" in dropped["tf-13"]
    assert len(data.items) + len(data.dropped) == data.rows_in_file
    first = data.items[0]
    assert first.gold == "False" and first.question.task == "true_false"
    assert first.question.options == ["True", "False"] and first.question.id == "tf-0"
    assert len(data.sha256) == 64


def test_mcq_options_after_marker_with_repeats_and_missing_gold_kept_and_flagged(fx_settings):
    data = load_dataset(fx_settings, "biomixqa-mcq")
    ids = [i.id for i in data.items]
    assert ids == ["mcq-0", "mcq-1", "mcq-2", "mcq-4", "mcq-5"]
    first = data.items[0]
    assert first.question.options == ["NOD2", "CHEK2", "HLA-B", "GCKR", "PKNOX2"]
    assert first.gold == "HLA-B" and first.metadata["disease_1"] == "psoriasis"
    repeated = data.items[1]
    assert repeated.question.options == ["TERT", "FER", "PCDH15", "PTK2B"]
    flagged = {p.id: p.problem for p in data.flagged}
    assert "repeat" in flagged["mcq-1"] and "not among the options" in flagged["mcq-2"]
    assert data.items[2].metadata["gold_in_options"] is False
    assert [p.id for p in data.dropped] == ["mcq-3"]


def test_split_mcq_text():
    assert split_mcq_text("Which? Given list is:  A1,  B-2, C") == ("Which?", ["A1", "B-2", "C"])
    assert split_mcq_text("Which? A, B") is None
    assert split_mcq_text("Which? Given list is: A,, B") is None


def test_pubmedqa_with_and_without_context(fx_settings):
    full = load_dataset(fx_settings, "pubmedqa")
    qonly = load_dataset(fx_settings, "pubmedqa-qonly")
    assert [i.id for i in full.items] == ["111", "222", "333", "555"] == [i.id for i in qonly.items]
    assert [p.id for p in full.dropped] == ["444"]
    item = full.items[0]
    assert item.question.context == "Background one.\nResults show reduced mortality."
    assert item.gold == "yes" and item.question.task == "yes_no_maybe"
    assert item.question.options == ["yes", "no", "maybe"]
    assert qonly.items[0].question.context is None
    assert qonly.items[0].metadata["gold_pmids"] == ["111"]


def test_mirage_letters_to_option_text(fx_settings):
    medqa = load_dataset(fx_settings, "medqa")
    assert [i.id for i in medqa.items] == ["0000", "0001"]
    assert medqa.items[0].gold == "ibuprofen"
    assert medqa.items[0].metadata["answer_letter"] == "B"
    assert medqa.items[0].metadata["letters"]["D"] == "morphine"
    assert [p.id for p in medqa.dropped] == ["0002"]
    bioasq = load_dataset(fx_settings, "bioasq")
    assert bioasq.items[0].question.options == ["yes", "no"]
    assert bioasq.items[0].metadata["gold_pmids"] == ["123", "456"]
    medmcqa = load_dataset(fx_settings, "medmcqa")
    assert medmcqa.items[0].question.options == ["same", "other", "third"]
    assert [p.id for p in medmcqa.flagged] == ["m1"]


def test_unknown_dataset_and_missing_file(fx_settings, tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        load_dataset(fx_settings, "nope")
    empty = load_settings(home=tmp_path / "h2", sources_dir=tmp_path)
    with pytest.raises(SourceFileError, match="biomixqa/true_false_questions.csv"):
        load_dataset(empty, "biomixqa-tf")


@pytest.mark.integration
def test_real_data_loads_every_dataset(shared_data_dir, tmp_path):
    settings = load_settings(home=tmp_path / "home", sources_dir=shared_data_dir)
    counts = {name: load_dataset(settings, name) for name in DATASETS}
    assert len(counts["biomixqa-tf"].items) == 162
    assert len(counts["biomixqa-mcq"].items) == 144
    assert len(counts["pubmedqa"].items) == 500
    assert len(counts["bioasq"].items) == 618
    assert len(counts["medqa"].items) == 1273
    assert len(counts["biomixqa-mcq"].flagged) == 9  # options that repeat, kept
    # BioASQ Task7B-11B golden files: no id repeats across years; every question of each type is kept
    for kind, n in (("factoid", 740), ("list", 409), ("summary", 543), ("yesno", 618)):
        for name in (f"bioasq-{kind}", f"bioasq-{kind}-qonly"):
            assert (len(counts[name].items), counts[name].rows_in_file, len(counts[name].dropped)) == (n, n, 0), name
    assert all(i.question.context for i in counts["bioasq-factoid"].items)
    assert not any(i.question.context for i in counts["bioasq-factoid-qonly"].items)
    for data in counts.values():
        assert len(data.items) + len(data.dropped) == data.rows_in_file
        if data.task == "free":  # BioASQ factoid, list, summary: gold answers, not options
            assert all(i.metadata.get("exact_answer") or i.metadata.get("ideal_answer") for i in data.items)
            continue
        assert all(item.gold in (item.question.options or []) or not item.metadata.get("gold_in_options", True) for item in data.items)


def test_options_of_an_mcq_text_keeps_each_option_once_in_order() -> None:
    from eval.sufficiency import options_of
    from kgrag.types import Question

    text = "Out of the given list, which Gene is associated with X and Y. Given list is: TERT, NOD2, tert , HLA-B, TERT"
    assert options_of(text) == ["TERT", "NOD2", "HLA-B"]
    assert Question(text=text, options=options_of(text)).options == ["TERT", "NOD2", "HLA-B"]
    with pytest.raises(ValueError, match="Given list is"):
        options_of("Which gene is associated with X?")
