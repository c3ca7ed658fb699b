"""The gate's decisions: stage 1 on the rarest entity, stage 2 on co-occurrence, failures by policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrag.settings import load_settings
from quco.gate import Gate, entity_pairs, pair_key, stage1, stage2
from quco.index_builder import build_index, jsonl_texts
from quco.stats import LocalInfiniGramStats, StatsError


def test_stage1_uses_the_minimum_not_the_mean() -> None:
    settings = load_settings(entity_freq_threshold_per_billion=1000.0)
    # 10^6 tokens: threshold = 1 occurrence. Mean of (5000, 0) is far above it; the minimum is not.
    decision = stage1({"diabetes": 5000, "takayasu arteritis": 0}, 1_000_000, settings)
    assert decision.retrieve and decision.stage == 1 and not decision.failed
    assert decision.counts["count:takayasu arteritis"] == 0 and decision.counts["count:diabetes"] == 5000
    assert decision.counts["min_per_billion"] == 0.0 and decision.counts["total_tokens"] == 1_000_000
    assert "takayasu arteritis" in decision.reason
    assert not stage1({"diabetes": 5000, "metformin": 1}, 1_000_000, settings).retrieve


def test_stage1_threshold_is_per_billion_so_it_scales_with_corpus_size() -> None:
    settings = load_settings(entity_freq_threshold_per_billion=1000.0)
    assert not stage1({"x": 10}, 10_000_000, settings).retrieve  # 1000 per billion: not below
    assert stage1({"x": 10}, 10_000_001, settings).retrieve
    assert stage1({"x": 4_599_999}, 4_600_000_000_000, settings).retrieve  # the 4.6T public index
    assert not stage1({"x": 4_600_000}, 4_600_000_000_000, settings).retrieve


def test_stage1_without_entities_and_with_empty_corpus() -> None:
    settings = load_settings()
    assert not stage1({}, 1000, settings).retrieve
    broken = stage1({"x": 0}, 0, settings)
    assert broken.failed and broken.retrieve


def test_stage2_flags_pairs_below_threshold_and_keeps_counts() -> None:
    settings = load_settings(cooccur_threshold=2, cooccur_window=50)
    pairs = [("metformin", "diabetes"), ("metformin", "multiple sclerosis")]
    decision = stage2(pairs, [21, 1], settings)
    assert decision.retrieve and decision.stage == 2
    assert decision.counts[pair_key("metformin", "diabetes")] == 21
    assert decision.counts[pair_key("metformin", "multiple sclerosis")] == 1
    assert decision.counts["window"] == 50 and "multiple sclerosis" in decision.reason
    assert not stage2(pairs, [21, 2], settings).retrieve
    assert not stage2([], [], settings).retrieve
    with pytest.raises(ValueError, match="2 pairs but 1"):
        stage2(pairs, [1], settings)


def test_entity_pairs() -> None:
    assert entity_pairs(["metformin", "diabetes", "Metformin", "lactic acidosis"]) == [
        ("metformin", "diabetes"), ("metformin", "lactic acidosis"), ("diabetes", "lactic acidosis")]
    assert entity_pairs(["one"]) == []


class BrokenStats:
    total_tokens = 1_000_000
    description = "broken"

    def count(self, terms: list[str]) -> list[int]:
        raise StatsError("engine unreachable")

    def cooccur(self, pairs: list[tuple[str, str]], window: int) -> list[int]:
        raise TimeoutError("API timed out")


@pytest.mark.parametrize("policy, retrieve", [("retrieve", True), ("skip", False)])
def test_failed_lookup_is_recorded_and_follows_policy(policy: str, retrieve: bool) -> None:
    gate = Gate(BrokenStats(), load_settings(stats_failure_policy=policy))
    [d1, d1b] = gate.check_questions([["metformin"], ["x", "y"]])
    assert d1.failed and d1.retrieve is retrieve and "engine unreachable" in d1.reason and policy in d1.reason
    assert d1b.counts == {"count:x": None, "count:y": None}
    [s1] = gate.check_sentences([[("metformin", "diabetes")]])
    assert s1.decision.failed and s1.decision.retrieve is retrieve and "TimeoutError" in s1.decision.reason
    assert s1.flagged_pairs == ([("metformin", "diabetes")] if retrieve else [])


def test_gate_batches_over_a_real_index(tmp_path: Path, fixtures_dir: Path) -> None:
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), tmp_path / "idx")
    stats = LocalInfiniGramStats(tmp_path / "idx")
    settings = load_settings(entity_freq_threshold_per_billion=30_000_000.0, cooccur_window=100)
    gate = Gate(stats, settings)
    # 79 words: metformin (3) = 38M per billion, Takayasu arteritis (1) = 12.7M per billion
    common, rare, none = gate.check_questions([["metformin"], ["metformin", "Takayasu arteritis"], []])
    assert not common.retrieve and rare.retrieve and not none.retrieve
    assert rare.counts["count:Takayasu arteritis"] == 1 and rare.counts["total_tokens"] == stats.total_tokens
    supported, invented, empty = gate.check_sentences([
        [("metformin", "type 2 diabetes")],
        [("metformin", "type 2 diabetes"), ("natalizumab", "diabetes")],
        [],
    ])
    assert not supported.decision.retrieve and supported.flagged_pairs == []
    assert invented.decision.retrieve and invented.flagged_pairs == [("natalizumab", "diabetes")]
    assert invented.decision.counts[pair_key("metformin", "type 2 diabetes")] == 1
    assert not empty.decision.retrieve


def test_gate_from_settings_opens_the_configured_index(tmp_path: Path, fixtures_dir: Path, tmp_settings) -> None:
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), tmp_path / "idx")
    gate = Gate.from_settings(tmp_settings.model_copy(update={"stats_uri": f"local://{tmp_path / 'idx'}"}))
    [decision] = gate.check_questions([["metformin", "warfarin"]])
    assert decision.retrieve and decision.counts["count:warfarin"] == 0 and decision.counts["total_tokens"] == 79
    with pytest.raises(StatsError):
        Gate.from_settings(tmp_settings.model_copy(update={"stats_uri": f"local://{tmp_path / 'missing'}"}))


def test_a_bug_in_a_statistics_backend_is_raised_not_read_as_retrieve() -> None:
    class BuggyStats(BrokenStats):
        def count(self, terms: list[str]) -> list[int]:
            raise KeyError("a backend bug")

    gate = Gate(BuggyStats(), load_settings(stats_failure_policy="retrieve"))
    with pytest.raises(KeyError, match="a backend bug"):
        gate.check_questions([["metformin"]])
