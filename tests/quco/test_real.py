"""The gate on the real corpus (PubMedQA contexts + BioASQ snippets, ~23k passages): integration."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrag.settings import load_settings
from quco.gate import Gate, entity_pairs
from quco.index_builder import build_index, project_corpus
from quco.stats import LocalInfiniGramStats

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_stats(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalInfiniGramStats:
    settings = load_settings(sources_dir=shared_data_dir, home=tmp_path_factory.mktemp("home"))
    index_dir = tmp_path_factory.mktemp("real") / "idx"
    manifest = build_index(project_corpus(settings), index_dir)
    assert manifest.doc_count > 20_000 and manifest.total_tokens > 500_000
    return LocalInfiniGramStats(index_dir)


def test_stage2_flags_a_fabricated_drug_disease_sentence_and_passes_supported_ones(real_stats) -> None:
    settings = load_settings(cooccur_threshold=1, cooccur_window=1000)
    gate = Gate(real_stats, settings)
    both_common = real_stats.count(["metformin", "multiple sclerosis", "type 2 diabetes", "natalizumab"])
    assert min(both_common) > 0  # every entity is in the corpus: a flag below is about the pair
    sentences = {
        "Metformin is the first-line drug for type 2 diabetes.": ["metformin", "type 2 diabetes"],
        "Natalizumab reduces relapses of multiple sclerosis.": ["natalizumab", "multiple sclerosis"],
        "Metformin is the first-line drug for multiple sclerosis.": ["metformin", "multiple sclerosis"],  # invented
        "Metformin cures Takayasu arteritis.": ["Metformin", "Takayasu arteritis"],  # invented
    }
    checks = gate.check_sentences([entity_pairs(names) for names in sentences.values()])
    supported_t2d, supported_ms, invented_ms, invented_takayasu = checks
    assert not supported_t2d.decision.retrieve and supported_t2d.decision.counts["cooccur:metformin|type 2 diabetes"] > 5
    assert not supported_ms.decision.retrieve
    assert invented_ms.decision.retrieve and invented_ms.flagged_pairs == [("metformin", "multiple sclerosis")]
    assert invented_ms.decision.counts["cooccur:metformin|multiple sclerosis"] == 0
    assert invented_takayasu.decision.retrieve and not invented_takayasu.decision.failed


def test_known_counts_of_the_real_corpus(real_stats) -> None:
    # NOTES.md: "metformin" is in 65 documents, "diabet" in 23 of them, "Takayasu" in none of them
    metformin, takayasu = real_stats.count(["metformin", "Takayasu"])
    assert 65 <= metformin < 200 and takayasu > 0
    assert real_stats.cooccur([("metformin", "Takayasu")], 1000) == [0]
    assert 15 <= real_stats.cooccur([("metformin", "diabetes")], 1000)[0] <= metformin
    stage1 = Gate(real_stats, load_settings(entity_freq_threshold_per_billion=10_000.0)).check_questions(
        [["metformin", "diabetes"], ["metformin", "Takayasu arteritis"]])
    assert [d.retrieve for d in stage1] == [False, True]  # Takayasu arteritis: 1 in ~0.8M words
