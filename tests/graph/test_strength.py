"""kgrag.graph.strength: per-source scaling, the combination rule, stored values (docs/evidence_strength.md)."""

from __future__ import annotations

import math

import pytest

from kgrag.graph.schema import EdgeView, NodeRef
from kgrag.graph.strength import (
    BASIS_KEY,
    STRENGTH_KEY,
    combine,
    edge_strength,
    evidence_lines,
    strength_of,
    strength_properties,
    valid_strength,
)

DAG = "ASSOCIATES_DaG"


def _view(sources: list[str], properties: dict, edge_type: str = DAG) -> EdgeView:
    return EdgeView(key="a|t|b", type=edge_type, source=NodeRef(id="a", label="Disease", name="a"),
                    target=NodeRef(id="b", label="Gene", name="b"), sources=sources, properties=properties)


# --- per source -----------------------------------------------------------------------------------

def test_disgenet_lone_ctd_score_is_weak_and_papers_raise_it():
    lone = edge_strength(DAG, ["DisGeNET"], {"disgenet_score": 0.21, "disgenet_pmids": 1})
    cited = edge_strength(DAG, ["DisGeNET"], {"disgenet_score": 0.21, "disgenet_pmids": 149})
    curated = edge_strength(DAG, ["DisGeNET"], {"disgenet_score": 0.72, "disgenet_pmids": 1})
    assert 0.21 <= lone < 0.26
    # 149 papers: the literature term is near its ceiling (0.5 * 149 / 163)
    assert cited == pytest.approx(1 - 0.79 * (1 - 0.5 * 149 / 163), abs=1e-4)
    assert lone < cited and lone < curated


def test_disgenet_score_as_text_is_read_and_garbage_ignored():
    assert edge_strength(DAG, ["DisGeNET"], {"disgenet_score": "0.5", "disgenet_pmids": "0"}) == 0.5
    # no usable score: the source counts as one unit, like any source without a score
    assert edge_strength(DAG, ["DisGeNET"], {"disgenet_score": "high"}) == 0.5


def test_gwas_pvalue_units_and_replication():
    genome_wide = edge_strength("ASSOCIATES_VaP", ["GWAS Catalog"], {"gwas_pvalue": 5e-8, "gwas_pmids": ["1"]})
    stronger = edge_strength("ASSOCIATES_VaP", ["GWAS Catalog"], {"gwas_pvalue": 1e-20, "gwas_pmids": ["1"]})
    replicated = edge_strength("ASSOCIATES_VaP", ["GWAS Catalog"], {"gwas_pvalue": 5e-8, "gwas_pmids": ["1", "2", "3"]})
    suggestive = edge_strength("ASSOCIATES_VaP", ["GWAS Catalog"], {"gwas_pvalue": 1e-5, "gwas_pmids": ["1"]})
    assert genome_wide == pytest.approx(0.5, abs=1e-3)
    assert suggestive < genome_wide < replicated and genome_wide < stronger
    assert stronger <= 0.99


def test_gwas_bad_pvalue_is_not_a_strength():
    # a p-value above 1 (a parsing error upstream) is ignored; the study still counts at the catalog threshold
    bad = edge_strength("ASSOCIATES_VaP", ["GWAS Catalog"], {"gwas_pvalue": 5e12, "gwas_pmids": ["1"]})
    assert bad == pytest.approx(1 - 0.5 ** (5 / -math.log10(5e-8)), abs=1e-3)


def test_gwas_locus_status_primary_beats_secondary_and_high_beats_low():
    values = {s: edge_strength(DAG, ["GWAS Catalog"], {"gwas_status": [s]}) for s in ("HC-P", "HC-S", "LC-P", "LC-S")}
    assert values["HC-P"] == pytest.approx(0.5)
    assert values["HC-P"] > values["LC-P"] > values["LC-S"]
    assert values["HC-P"] > values["HC-S"]


def test_diseases_channels_scale_differently():
    knowledge = edge_strength(DAG, ["DISEASES"], {"diseases_knowledge_score": 5})
    tiga = edge_strength(DAG, ["DISEASES"], {"diseases_experiments_score": 2.07})
    textmining = edge_strength(DAG, ["DISEASES"], {"diseases_textmining_score": 4})
    assert knowledge == pytest.approx(0.9)
    assert tiga == pytest.approx(2.07 / 5, abs=1e-3)
    assert textmining == pytest.approx(0.5 * 4 / 5)
    assert textmining < knowledge


def test_indication_sources():
    assert edge_strength("TREATS_CtD", ["PharmacotherapyDB"], {"pharmacotherapydb_curators": 3}) == 0.875
    assert edge_strength("TREATS_CtD", ["PharmacotherapyDB"], {"pharmacotherapydb_curators": 1}) == 0.5
    assert edge_strength("TREATS_CtD", ["LabeledIn"], {"labeledin_labels": 1}) == 0.8
    assert edge_strength("TREATS_CtD", ["LabeledIn"], {"labeledin_labels": 7}) == 0.8  # copies of one approval
    assert edge_strength("TREATS_CtD", ["EHRLink"], {"ehrlink_link_ratio": 0.4}) == pytest.approx(0.2)


def test_mondo_germline_gene_is_curated_strong():
    assert edge_strength(DAG, ["MONDO"], {"mondo_relation": "has material basis in germline mutation in"}) == 0.9


def test_defaults_for_edges_without_scores():
    assert edge_strength("ISA_DiD", ["Disease Ontology"], {}) == 0.5
    assert edge_strength("ISA_DiD", ["Disease Ontology", "MONDO"], {}) == 0.75
    assert edge_strength("INTERACTS_GiG", ["Hetionet"], {}) == 0.5
    assert edge_strength("SOME_USER_TYPE", ["lab notebook"], {"whatever": 3}) == 0.5


# --- combination ----------------------------------------------------------------------------------

def test_noisy_or_over_independent_sources():
    props = {"disgenet_score": 0.5, "disgenet_pmids": 0, "diseases_knowledge_score": 5}
    assert edge_strength(DAG, ["DisGeNET", "DISEASES"], props) == pytest.approx(1 - 0.5 * 0.1)


def test_a_source_counts_once():
    # TIGA (DISEASES experiments) is the GWAS Catalog again: the best of the two, not both
    props = {"gwas_status": ["HC-P"], "diseases_experiments_score": 2.0}
    assert edge_strength(DAG, ["GWAS Catalog", "DISEASES"], props) == pytest.approx(0.5)
    # a source named twice, in any case
    assert edge_strength("ISA_DiD", ["MONDO", "MONDO"], {}) == 0.5
    assert combine([*evidence_lines("ISA_DiD", ["mondo"], {}), *evidence_lines("ISA_DiD", ["MONDO"], {})])[0] == 0.5


def test_scored_line_replaces_hetionet_default_of_same_source():
    # Hetionet says "DisGeNET" without a score; the DisGeNET loader's own score decides
    weak = {"disgenet_score": 0.21, "disgenet_pmids": 1, "hetionet_sources": ["DisGeNET"]}
    assert edge_strength(DAG, ["DisGeNET", "Hetionet"], weak) == edge_strength(DAG, ["DisGeNET"], weak)
    alone = edge_strength(DAG, ["Hetionet"], {"hetionet_sources": ["DisGeNET", "DOAF"]})
    assert alone == pytest.approx(1 - (1 - 0.24) * (1 - 0.25))


def test_more_support_never_lowers_strength():
    base = {"disgenet_score": 0.3, "disgenet_pmids": 5}
    one = edge_strength(DAG, ["DisGeNET"], base)
    two = edge_strength(DAG, ["DisGeNET", "DISEASES"], {**base, "diseases_experiments_score": 0.5})
    assert two > one
    assert 0.0 <= two <= 1.0


def test_basis_names_what_made_it():
    props = strength_properties(DAG, ["DisGeNET", "GWAS Catalog"],
                                {"disgenet_score": 0.32, "disgenet_pmids": 149, "gwas_status": ["HC-P"]})
    assert set(props) == {STRENGTH_KEY, BASIS_KEY}
    assert props[BASIS_KEY].startswith("DisGeNET")  # strongest line first
    assert "149 PMIDs" in props[BASIS_KEY] and "GWAS Catalog 0.50 (HC-P)" in props[BASIS_KEY]


# --- reading ---------------------------------------------------------------------------------------

def test_strength_of_reads_a_stored_value_and_computes_otherwise():
    assert strength_of(_view(["DisGeNET"], {"strength": 0.42, "disgenet_score": 0.9})) == 0.42
    computed = strength_of(_view(["DisGeNET"], {"disgenet_score": 0.9, "disgenet_pmids": 0}))
    assert computed == pytest.approx(0.9)
    # an invalid stored value is not trusted
    assert strength_of(_view(["DisGeNET"], {"strength": 1.7, "disgenet_score": 0.9, "disgenet_pmids": 0})) == computed
    assert strength_of(_view(["DisGeNET"], {"strength": True, "disgenet_score": 0.9, "disgenet_pmids": 0})) == computed


@pytest.mark.parametrize("value, expected", [(0, 0.0), (1, 1.0), ("0.3", 0.3), (-0.1, None), (float("nan"), None),
                                             ("strong", None), (None, None), (False, None)])
def test_valid_strength(value, expected):
    assert valid_strength(value) == expected
