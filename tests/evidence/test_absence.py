"""Absence as evidence: each relation's coverage is estimated from its sources' overlap (capture-recapture) on
a real LadybugDB graph, and "no edge" counts against a true/false claim only where that coverage reaches the
setting (off by default); the verdict names the estimate."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kgrag.evidence.absence import relation_coverage
from kgrag.evidence.checker import EvidenceChecker
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.types import LinkedEntity, Question
from tests.conftest import ladybug_graph

GENES = [NodeRecord(id=f"NCBIGene:{i}", label="Gene", name=f"G{i}") for i in range(200)]
DISEASES = [NodeRecord(id=f"DOID:{i}", label="Disease", name=f"disease {i}") for i in range(200)]
DRUG = NodeRecord(id="DB1", label="Compound", name="drugamab")


def _edges() -> list[EdgeRecord]:
    """Disease i - Gene i for i < 200: source A records 0-149, source B 50-199 (100 shared); one treats edge."""
    edges = []
    for i in range(200):
        sources = (["A"] if i < 150 else []) + (["B"] if i >= 50 else [])
        edges.append(EdgeRecord(source_id=f"DOID:{i}", type="ASSOCIATES_DaG", target_id=f"NCBIGene:{i}", sources=sources))
    edges.append(EdgeRecord(source_id="DB1", type="TREATS_CtD", target_id="DOID:0", sources=["A"]))
    return edges


@pytest.fixture()
def store(tmp_path):
    s = ladybug_graph(tmp_path / "g.lbug", GENES + DISEASES + [DRUG], _edges())
    yield s
    s.close()


def _entity(node: NodeRecord) -> LinkedEntity:
    return LinkedEntity(mention=node.name, node_id=node.id, label=node.label, name=node.name, method="exact")


def test_coverage_is_chapmans_capture_recapture_and_unmeasured_with_one_source(store) -> None:
    found = relation_coverage(store)
    genes = found[("Disease", "Gene")]
    [estimate] = genes.estimates
    assert (genes.pairs, estimate.pairs_a, estimate.pairs_b, estimate.both) == (200, 150, 150, 100)
    assert estimate.estimated_total == pytest.approx(151 * 151 / 101 - 1)
    assert genes.coverage == pytest.approx(200 / (151 * 151 / 101 - 1))  # about 0.89
    assert "A x B" in genes.explain() and "0.89" in genes.explain()
    treats = found[("Compound", "Disease")]
    assert treats.coverage is None and "unmeasured" in treats.explain()


@pytest.mark.parametrize("min_coverage, text, expected", [
    (None, "disease 3 is associated with Gene G7", None),   # off by default: abstain
    (0.95, "disease 3 is associated with Gene G7", None),   # measured 0.89 < 0.95: abstain
    (0.8, "disease 3 is associated with Gene G7", "False"),
    (0.8, "disease 3 is not associated with Gene G7", "True"),
    (0.8, "disease 3 is associated with Gene G3", "True"),  # an edge: direct support, absence never consulted
])
def test_absence_counts_against_a_claim_only_at_the_measured_coverage(store, min_coverage, text, expected) -> None:
    checker = EvidenceChecker(store, absence_min_coverage=min_coverage)
    gene = GENES[7] if "G7" in text else GENES[3]
    [verdict] = checker.decide([Question(text=text, task="true_false")], [[_entity(DISEASES[3]), _entity(gene)]],
                               [{}], [[]])
    assert verdict.choice == expected
    if expected is not None and gene is GENES[7]:
        assert verdict.support == "absence" and verdict.confidence == pytest.approx(0.89, abs=0.01)
        assert "coverage 0.89" in verdict.reason and "A x B" in verdict.reason
    elif expected is None:
        assert verdict.support is None and "abstain" in verdict.reason


def test_an_unmeasured_relation_never_counts_absence(store) -> None:
    checker = EvidenceChecker(store, absence_min_coverage=0.01)
    [verdict] = checker.decide([Question(text="drugamab treats disease 5", task="true_false")],
                               [[_entity(DRUG), _entity(DISEASES[5])]], [{}], [[]])
    assert verdict.choice is None


def test_relation_coverage_command_prints_the_table(tmp_path, monkeypatch) -> None:
    from kgrag.cli import app

    ladybug_graph(tmp_path / "g.lbug", GENES + DISEASES + [DRUG], _edges()).close()
    monkeypatch.setenv("KGRAG_GRAPH_URI", f"ladybug://{tmp_path / 'g.lbug'}")
    monkeypatch.setenv("KGRAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KGRAG_EVIDENCE_ABSENCE_MIN_COVERAGE", "0.8")
    result = CliRunner().invoke(app, ["relation-coverage", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["min_coverage"] == 0.8
    [genes] = [r for r in report["relations"] if r["labels"] == ["Disease", "Gene"]]
    assert genes["coverage"] == pytest.approx(0.89, abs=0.01)
