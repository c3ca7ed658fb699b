"""Anchors: the published KG-RAG answers rescored with our parser on our rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.anchors import describe_file, score_anchors
from eval.datasets import DatasetError
from kgrag.settings import load_settings


@pytest.fixture()
def fx_settings(fixtures_dir: Path, tmp_path: Path):
    return load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "eval" / "data")


def test_describe_file_names():
    assert describe_file("gpt_4_prompt_based_true_false_binary_response.csv") == ("biomixqa-tf", "GPT-4", "prompt")
    assert describe_file("Llama_2_13b_chat_hf_PubMedBert_entity_recognition_based_node_retrieval_rag_based_mcq_from_x.csv") == (
        "biomixqa-mcq", "Llama-2-13b-chat", "kg-rag")
    with pytest.raises(DatasetError, match="not a KG-RAG anchor"):
        describe_file("results.csv")


def test_true_false_anchor_matched_by_text_with_unparseable_counted(fx_settings):
    [s] = score_anchors(fx_settings, "biomixqa-tf", n_boot=200)
    assert (s.model, s.setting, s.file_rows, s.matched, s.extra_rows) == ("GPT-4", "prompt", 7, 6, 1)
    assert sorted(s.missing) == ["tf-17", "tf-8"]
    assert s.parse_failed_ids == ["tf-4"]
    assert s.score is not None and (s.score.n, s.score.correct) == (6, 4)


def test_mcq_anchor_ambiguous_and_nested_answers(fx_settings):
    [s] = score_anchors(fx_settings, "biomixqa-mcq", n_boot=200)
    assert (s.model, s.setting, s.matched) == ("GPT-4", "kg-rag", 3)
    assert s.parse_failed_ids == ["mcq-0"]  # "HLA-B, CHEK2"
    assert s.score is not None and s.score.correct == 1  # mcq-4 right; mcq-5 nested -> HLA-DPA1, wrong


def test_anchors_restricted_to_ids_and_unknown_dataset(fx_settings):
    [s] = score_anchors(fx_settings, "biomixqa-tf", ids={"tf-0", "tf-4", "tf-8"}, n_boot=200)
    assert (s.matched, s.missing, s.parse_failed) == (2, ["tf-8"], 1)
    with pytest.raises(DatasetError, match="anchors exist only"):
        score_anchors(fx_settings, "pubmedqa")


@pytest.mark.integration
def test_real_anchor_files_score_on_all_dev_rows(shared_data_dir, tmp_path):
    settings = load_settings(home=tmp_path / "home", sources_dir=shared_data_dir)
    tf = {(s.model, s.setting): s for s in score_anchors(settings, "biomixqa-tf", n_boot=200)}
    mcq = {(s.model, s.setting): s for s in score_anchors(settings, "biomixqa-mcq", n_boot=200)}
    assert len(tf) == 6 and len(mcq) == 6
    assert all(s.matched == 162 and not s.label_disagreements for s in tf.values())
    assert all(s.matched == 144 and not s.label_disagreements for s in mcq.values())
    assert tf[("GPT-4", "kg-rag")].score.accuracy.value > tf[("GPT-4", "prompt")].score.accuracy.value
    assert mcq[("GPT-4", "kg-rag")].parse_failed > 30  # "None of the genes ..." and multi-gene answers
