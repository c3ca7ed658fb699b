"""Metrics: intervals, macro-F1, paired tests, retrieval metrics, costs and baselines."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    baselines_for,
    bootstrap,
    context_holds_answer,
    cost_summary,
    frequent_answer_loo,
    frequent_answer_prior,
    macro_f1,
    majority_position,
    mcnemar_exact,
    not_rule,
    paired_compare,
    pmid_recall_at_k,
    score,
    uniform_random,
)

TF = ["True", "False"]


def test_score_counts_unparseable_as_wrong_and_is_seeded():
    golds = ["True", "False", "True", "False"] * 10
    preds = ["True", None, "True", "True"] * 10
    s = score(golds, preds, [TF] * 40, n_boot=500, seed=3)
    assert (s.n, s.correct, s.parse_failed) == (40, 20, 10)
    assert s.accuracy.value == pytest.approx(0.5)
    assert s.accuracy.low < 0.5 < s.accuracy.high
    assert s == score(golds, preds, [TF] * 40, n_boot=500, seed=3)
    # macro-F1: True F1 = 2*20/(2*20+10+0) = 0.8; False has no hit -> 0.
    assert s.macro_f1.value == pytest.approx(0.4)


def test_macro_f1_matches_hand_computation():
    golds = ["a", "a", "b", "c"]
    preds = ["a", "b", "b", None]
    # a: tp1 fp0 fn1 -> 2/3; b: tp1 fp1 fn0 -> 2/3; c: 0
    assert macro_f1(golds, preds) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def test_mcq_macro_f1_uses_positions_when_options_vary():
    options = [["x", "y"], ["p", "q"], ["m", "n"]]
    s = score(["x", "q", "m"], ["x", "q", "n"], options, n_boot=200)
    # positions: gold A,B,A pred A,B,B -> A: tp1 fp0 fn1 = 2/3; B: tp1 fp1 fn0 = 2/3
    assert s.macro_f1.value == pytest.approx(2 / 3)


def test_bootstrap_interval_narrows_with_more_rows():
    small = bootstrap([1, 0] * 10, n_boot=1000)
    large = bootstrap([1, 0] * 500, n_boot=1000)
    assert (large.high - large.low) < (small.high - small.low)
    assert math.isnan(bootstrap([]).value)


def test_mcnemar_exact_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)


def test_paired_compare_counts_discordant_pairs():
    a = [True] * 10 + [False] * 10 + [True] * 2
    b = [True] * 10 + [True] * 10 + [False] * 2
    result = paired_compare(a, b, n_boot=500)
    assert (result.n, result.only_a_correct, result.only_b_correct) == (22, 2, 10)
    assert result.difference.value == pytest.approx(8 / 22)
    assert result.difference.low > 0
    assert result.mcnemar_p < 0.05
    with pytest.raises(ValueError, match="aligned"):
        paired_compare([True], [True, False])


def test_context_holds_answer_and_pmid_recall():
    assert context_holds_answer("HLA-B", ["psoriasis associates Gene HLA-B."]) is True
    assert context_holds_answer("HLA-B", ["HLA-B27 is common"]) is False
    assert context_holds_answer("True", ["anything"]) is None
    sources = [["PMID:1"], ["DisGeNET"], ["pubmed:2", "3"]]
    assert pmid_recall_at_k(["1", "2"], sources, 1) == 0.5
    assert pmid_recall_at_k(["1", "2"], sources, 3) == 1.0
    assert pmid_recall_at_k([], sources, 3) is None


def test_cost_summary():
    costs = cost_summary([{"prompt_tokens": 100, "completion_tokens": 10, "retrievals": 1}, {"prompt_tokens": 300, "completion_tokens": 30}],
                         [{"total": 50.0}, {"link": 10.0, "generate": 30.0}])
    assert costs.tokens_mean == 220 and costs.retrievals_mean == 0.5
    assert costs.latency_ms_mean == 45.0
    # The runner's batch wall time / batch size wins over stage timings where known.
    amortized = cost_summary([{}, {}], [{"total": 50.0}, {"total": 50.0}], [12.5, None])
    assert amortized.latency_ms_mean == pytest.approx((12.5 + 50.0) / 2)


def test_not_rule_and_majority_on_biomixqa_tf():
    texts = ["A is not B", "A treats B", "C is not D", "E associates F"]
    golds = ["False", "True", "False", "False"]
    assert not_rule(texts, golds).accuracy.value == 0.75
    names = [b.name for b in baselines_for("true_false", texts, golds, [TF] * 4, dataset="biomixqa-tf")]
    assert names == ["majority", "not-rule", "random"]
    majority = baselines_for("true_false", texts, golds, [TF] * 4, dataset="biomixqa-tf")[0]
    assert majority.accuracy.value == 0.75 and "'False'" in majority.description


def test_mcq_priors_and_random():
    options = [["TERT", "A", "B"], ["TERT", "C", "D"], ["E", "TERT", "F"], ["G", "H", "I"]]
    golds = ["TERT", "TERT", "F", "G"]
    assert frequent_answer_prior(golds, options).accuracy.value == 0.75  # TERT twice, G first listed
    # leave-one-out: row 0 still sees TERT once from row 1; row 2 picks TERT (wrong); row 3: all zero -> G
    assert frequent_answer_loo(golds, options).accuracy.value == 0.75
    assert uniform_random(golds, options).accuracy.value == pytest.approx(1 / 3)
    names = [b.name for b in baselines_for("mcq", ["q"] * 4, golds, options, dataset="biomixqa-mcq")]
    assert names == ["majority-position", "frequent-answer", "frequent-answer-loo", "random"]
    mirage = [b.name for b in baselines_for("mcq", ["q"] * 4, golds, options, dataset="medqa")]
    assert mirage == ["majority-position", "random"]
    assert majority_position(golds, options).accuracy.value == 0.75  # gold positions A, A, C, A


def test_an_option_joined_to_a_disease_and_its_nested_parent_is_not_joined_to_both():
    from eval.sufficiency import joined_to_both
    from kgrag.types import Evidence, LinkedEntity

    def disease(node_id: str, name: str, within: str | None = None) -> LinkedEntity:
        return LinkedEntity(mention=name, node_id=node_id, label="Disease", name=name, method="exact", within=within)

    def edge(disease_id: str) -> Evidence:
        return Evidence(kind="kg", text="...", score=0.5, id=f"{disease_id}|ASSOCIATES_DaG|NCBIGene:1")

    tnbc, parent, other = (disease("DOID:2", "triple-negative breast carcinoma"),
                           disease("DOID:1", "breast carcinoma", within="DOID:2"), disease("DOID:3", "psoriasis"))
    assert not joined_to_both([edge("DOID:2"), edge("DOID:1")], ["NCBIGene:1"], [tnbc, parent])
    assert joined_to_both([edge("DOID:2"), edge("DOID:3")], ["NCBIGene:1"], [tnbc, parent, other])
