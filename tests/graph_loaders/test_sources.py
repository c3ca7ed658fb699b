"""graph_loaders without a store: readers, identity merging, record merging, every source on tiny fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph_loaders.accumulate import GraphAccumulator
from graph_loaders.build import collect
from graph_loaders.context import LoadContext
from graph_loaders.identity import DiseaseIdentity, GeneIdentity, normalise_xref
from graph_loaders.issues import RowIssues, read_table
from kgrag.errors import SourceFileError
from kgrag.graph.schema import EDGE_TYPES, NODE_LABELS, EdgeRecord, NodeRecord
from kgrag.settings import load_settings


@pytest.fixture(scope="module")
def fixture_graph(fixtures_dir: Path) -> LoadContext:
    settings = load_settings(sources_dir=fixtures_dir, home=fixtures_dir / "unused-home")
    ctx, _ = collect(settings, progress=False)
    return ctx


@pytest.fixture(scope="module")
def nodes(fixture_graph: LoadContext) -> dict[str, NodeRecord]:
    return {n.id: n for n in fixture_graph.graph.nodes()}


@pytest.fixture(scope="module")
def edges(fixture_graph: LoadContext) -> dict[str, EdgeRecord]:
    return {e.key: e for e in fixture_graph.graph.edges()}


# --- readers and reporting ---------------------------------------------------------------------

def test_read_table_reports_bad_rows_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "kg_sources" / "x" / "t.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("a\tb\tc\n1\t2\t3\n4\t5\n\n6\t7\t8\t9\n10\t11\t12\n")
    issues = RowIssues()
    rows = list(read_table(path, issues, columns=["c", "a"]))
    assert rows == [(2, ["3", "1"]), (6, ["12", "10"])]
    assert issues.counts == {"kg_sources/x/t.tsv": 2}
    assert [(s.line, s.reason) for s in issues.samples] == [
        (3, "expected 3 tab-separated fields, found 2"), (5, "expected 3 tab-separated fields, found 4")]


def test_read_table_reports_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\t2\n")
    issues = RowIssues()
    assert list(read_table(path, issues, columns=["a", "zzz"])) == []
    assert issues.total == 1 and "zzz" in issues.samples[0].reason


def test_missing_source_file_names_the_file_and_the_setting(tmp_path: Path) -> None:
    (tmp_path / "kg_sources").mkdir()
    settings = load_settings(sources_dir=tmp_path, home=tmp_path / "home")
    with pytest.raises(SourceFileError, match=r"Homo_sapiens\.gene_info\.gz.*KGRAG_SOURCES_DIR"):
        collect(settings, progress=False)


# --- identity --------------------------------------------------------------------------------------

def test_normalise_xref_unifies_prefixes() -> None:
    assert normalise_xref("umls:C0003872") == "UMLS:C0003872"
    assert normalise_xref("UMLS_CUI:C0003872") == "UMLS:C0003872"
    assert normalise_xref("MSH:D011565") == normalise_xref("mesh:D011565") == "MESH:D011565"
    assert normalise_xref("MIM:154700") == "OMIM:154700"
    assert normalise_xref("ORDO:558") == normalise_xref("Orphanet:558") == "ORPHANET:558"
    assert normalise_xref("no-prefix") is None


def test_disease_identity_prefers_do_xrefs_then_mondo_bridges() -> None:
    ids = DiseaseIdentity()
    ids.add_doid("DOID:1")
    ids.add_xref("UMLS_CUI:C1", "DOID:1")
    ids.add_mondo("MONDO:1", "DOID:2")
    ids.add_xref("UMLS:C1", "MONDO:1")  # DO's mapping of C1 came first and wins
    ids.add_xref("EFO:9", "MONDO:1")  # one hop: EFO -> MONDO -> DOID
    ids.add_mondo("MONDO:3", None)
    ids.add_xref("OMIM:3", "MONDO:3")
    assert ids.canonical("umls:C1") == "DOID:1"
    assert ids.canonical("EFO:9") == "DOID:2"
    assert ids.canonical("MIM:3") == "MONDO:3"
    assert ids.canonical("MONDO:1") == "DOID:2"
    assert ids.canonical("UMLS:C404") is None


def test_gene_identity_resolves_symbols_synonyms_and_hgnc_but_not_ambiguous_synonyms() -> None:
    genes = GeneIdentity()
    genes.add_gene("84059", "GPR98", ["ADGRV1", "X1"], ["HGNC:17416"])
    genes.add_gene("7157", "TP53", ["X1"], [])
    assert genes.by_symbol("adgrv1") == "NCBIGene:84059"
    assert genes.by_symbol("TP53") == "NCBIGene:7157"
    assert genes.by_symbol("X1") is None
    assert genes.by_xref("hgnc:17416") == "NCBIGene:84059"


# --- merging ---------------------------------------------------------------------------------------

def test_accumulator_unions_sources_and_keeps_each_sources_evidence() -> None:
    acc = GraphAccumulator()
    acc.add_node(NodeRecord(id="D", label="Disease", name="Psoriasis", sources=["DisGeNET"]), rank=10)
    acc.add_node(NodeRecord(id="D", label="Disease", name="psoriasis", synonyms=["psoriasis vulgaris"]), rank=0)
    acc.add_node(NodeRecord(id="G", label="Gene", name="HLA-B"), rank=0)
    acc.add_edge(EdgeRecord(source_id="D", type="ASSOCIATES_DaG", target_id="G", sources=["GWAS"],
                            properties={"gwas_pvalue": 1e-8, "gwas_pmids": ["1"]}))
    acc.add_edge(EdgeRecord(source_id="D", type="ASSOCIATES_DaG", target_id="G", sources=["GWAS"],
                            properties={"gwas_pvalue": 1e-30, "gwas_pmids": ["2"]}))
    acc.add_edge(EdgeRecord(source_id="D", type="ASSOCIATES_DaG", target_id="G", sources=["DisGeNET"],
                            properties={"disgenet_score": 0.3}))
    acc.add_edge(EdgeRecord(source_id="D", type="ASSOCIATES_DaG", target_id="X", sources=["DisGeNET"]))
    (node,) = [n for n in acc.nodes() if n.id == "D"]
    assert node.name == "psoriasis" and node.synonyms == ["psoriasis vulgaris"]  # "Psoriasis" repeats the name
    dangling: list[tuple[str, str, str]] = []
    (edge,) = list(acc.edges(dangling))
    assert edge.sources == ["GWAS", "DisGeNET"]
    strength = edge.properties.pop("strength")
    assert edge.properties.pop("strength_basis").startswith("GWAS 0.50 (no score recorded); DisGeNET 0.30")
    assert edge.properties == {"gwas_pvalue": 1e-30, "gwas_pmids": ["1", "2"], "disgenet_score": 0.3}
    # computed on the merged edge: the user-named "GWAS" has no rule (one unit), DisGeNET its score; noisy-OR
    assert strength == pytest.approx(1 - 0.5 * 0.7)
    assert dangling == [("D", "ASSOCIATES_DaG", "X")]


# --- every source on the fixtures -----------------------------------------------------------------

def test_fixture_graph_uses_schema_labels_and_types(nodes: dict[str, NodeRecord], edges: dict[str, EdgeRecord]) -> None:
    assert {n.label for n in nodes.values()} <= set(NODE_LABELS)
    assert {e.type for e in edges.values()} <= set(EDGE_TYPES)
    assert all(e.sources for e in edges.values())


def test_disease_identity_merges_sources_onto_the_doid(nodes: dict[str, NodeRecord], edges: dict[str, EdgeRecord]) -> None:
    psoriasis = nodes["DOID:8893"]
    assert psoriasis.name == "psoriasis" and "psoriasis vulgaris" in psoriasis.synonyms
    assert "scaly skin" not in psoriasis.synonyms  # only EXACT synonyms
    assert {"UMLS:C0033860", "MESH:D011565", "MONDO:0005083"} <= set(psoriasis.xrefs)
    # DisGeNET's UMLS CUI, GWAS's DOID, DISEASES' DOID and Hetionet all land on one edge
    dag = edges["DOID:8893|ASSOCIATES_DaG|NCBIGene:3106"]
    assert dag.sources == ["DisGeNET", "GWAS Catalog", "DISEASES", "Hetionet"]
    assert dag.properties["disgenet_score"] == 0.5 and dag.properties["disgenet_pmids"] == 40
    assert dag.properties["gwas_status"] == ["HC-P"]
    assert dag.properties["diseases_knowledge_score"] == 4.0
    assert dag.properties["hetionet_sources"] == ["DISEASES", "DisGeNET"]
    # the DO xref of obesity's UMLS CUI maps DisGeNET's "Obesity"; the unmapped-umls bridge maps psoriatic arthritis
    assert "DOID:9970|ASSOCIATES_DaG|NCBIGene:4160" in edges
    assert "Arthritis, Psoriatic" in nodes["DOID:9008"].synonyms
    # MONDO's label, via MONDO's own DOID xref, is a synonym; a MONDO-only term keeps its MONDO id
    assert "arthritic psoriasis" in nodes["DOID:9008"].synonyms
    assert nodes["MONDO:0100001"].name == "rare fixture syndrome"
    assert "MONDO:0100002" not in nodes  # obsolete
    # an unmapped CUI is its own node, named as DisGeNET names it
    assert nodes["UMLS:C9999999"].name == "Fixture Unmapped Disorder"


def test_isa_edges_from_do_and_mondo(edges: dict[str, EdgeRecord]) -> None:
    assert edges["DOID:9008|ISA_DiD|DOID:8893"].sources == ["Disease Ontology", "MONDO"]
    assert edges["DOID:8893|ISA_DiD|DOID:37"].sources == ["Disease Ontology"]
    assert edges["MONDO:0100001|ISA_DiD|DOID:8893"].sources == ["MONDO"]
    assert edges["MONDO:0100001|ASSOCIATES_DaG|NCBIGene:7157"].properties["mondo_relation"].startswith("has material basis")


def test_genes_merge_renamed_symbols(nodes: dict[str, NodeRecord], edges: dict[str, EdgeRecord]) -> None:
    # DISEASES says ADGRV1; gene_info (2016) calls it GPR98 with ADGRV1 as a synonym
    assert "DOID:9970|ASSOCIATES_DaG|NCBIGene:84059" in edges
    assert nodes["NCBIGene:84059"].name == "GPR98" and "ADGRV1" in nodes["NCBIGene:84059"].synonyms
    assert nodes["ENSEMBL:ENSP00000000009"].name == "NOVEL1"  # unresolved symbol keeps its own node
    assert {"HGNC:4932", "ENSEMBL:ENSG00000234745", "OMIM:142830"} <= set(nodes["NCBIGene:3106"].xrefs)


def test_gwas_variants(nodes: dict[str, NodeRecord], edges: dict[str, EdgeRecord]) -> None:
    assert nodes["rs123"].label == "Variant"
    vap = edges["rs123|ASSOCIATES_VaP|DOID:8893"]
    assert vap.properties["gwas_pvalue"] == pytest.approx(1e-30)  # the smaller of two studies
    assert vap.properties["gwas_pmids"] == ["111", "222"]
    assert edges["rs123|MAPS_VmG|NCBIGene:7157"].properties["gwas_relation"] == ["downstream"]


def test_gwas_full_catalog_maps_traits_by_efo_or_name(fixture_graph: LoadContext, edges: dict[str, EdgeRecord]) -> None:
    via_efo = edges["rs789|ASSOCIATES_VaP|DOID:9970"]  # EFO -> MONDO -> DOID
    assert via_efo.properties["gwas_pvalue"] == pytest.approx(3e-9) and via_efo.properties["gwas_traits"] == ["Obesity"]
    assert "rs789|MAPS_VmG|NCBIGene:4160" in edges
    assert "rs555|ASSOCIATES_VaP|DOID:8893" in edges  # unknown EFO id, trait name is a disease name
    assert fixture_graph.stats["GWAS Catalog"].unused == {"SNP-SNP interaction": 1, "trait not mapped to a disease": 1}


def test_hetionet_and_indications(nodes: dict[str, NodeRecord], edges: dict[str, EdgeRecord]) -> None:
    treats = edges["DB00563|TREATS_CtD|DOID:8893"]
    assert treats.sources == ["Hetionet", "PharmacotherapyDB", "LabeledIn", "EHRLink"]  # RxNorm name -> DrugBank
    evidence = {k: v for k, v in treats.properties.items() if not k.startswith("strength")}
    assert evidence == {"pharmacotherapydb_curators": 2, "labeledin_labels": 2, "ehrlink_link_ratio": 0.6}
    # 2 of 3 curators (0.75), a drug label (0.8), EHR link ratio 0.6 at half weight (0.3); Hetionet's own
    # indication is PharmacotherapyDB's and counts once
    assert treats.properties["strength"] == pytest.approx(1 - 0.25 * 0.2 * 0.7)
    assert edges["DB00563|PALLIATES_CpD|DOID:9008"].sources == ["PharmacotherapyDB"]
    assert nodes["RXNORM:9999"].label == "Compound"
    assert edges["NCBIGene:3106|REGULATES_GrG|NCBIGene:7157"].sources == ["Hetionet"]
    assert {"PRESENTS_DpS", "LOCALIZES_DlA", "CAUSES_CcSE", "BINDS_CbG"} <= {e.type for e in edges.values()}
    assert nodes["MESH:D011537"].label == "Symptom" and nodes["SIDER:C0027497"].label == "SideEffect"


def test_malformed_rows_are_counted_with_file_and_line(fixture_graph: LoadContext) -> None:
    issues = fixture_graph.issues
    where = {(s.file, s.line) for s in issues.samples}
    assert ("kg_sources/genes_entrez_2016/Homo_sapiens.gene_info.gz", 7) in where
    assert ("kg_sources/disgenet_2015/curated_gene_disease_associations.txt.gz", 6) in where
    assert ("kg_sources/gwas_catalog_2015/snp-associations.tsv", 4) in where
    assert ("kg_sources/jensenlab_diseases/2024_human_disease_experiments_filtered.tsv", 2) in where
    assert ("kg_sources/hetionet_subset/edges-5k.sif.gz", 7) in where
    assert ("kg_sources/hetionet_subset/metaedges.tsv", 9) in where
    assert ("kg_sources/indications_pharmacotherapydb/ehrlink_data_indications.tsv", 3) in where
    assert ("kg_sources/gwas_catalog_2015/gwas_catalog_v1.0.1-downloaded_2015-06-08.tsv.gz", 6) in where
    assert issues.total == 10


def test_unused_rows_are_counted_by_reason(fixture_graph: LoadContext) -> None:
    stats = fixture_graph.stats
    assert stats["PharmacotherapyDB"].unused == {"category NOT": 1}
    assert stats["DISEASES"].unused == {"disease id AmyCo is not a DOID": 1}
    assert stats["Hetionet"].unused == {"compound not among Hetionet's nodes": 1}
    assert stats["KG-RAG disease names"].unused == {"file not available": 1}
