"""graph_loaders with the embedded store: build, coverage, the CLI, a user's own graph."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graph_loaders.build import build_graph, collect
from graph_loaders.coverage import coverage, parse_statement
from graph_loaders.issues import RowIssues
from graph_loaders.user_graph import load_user_graph
from kgrag.cli import app
from kgrag.graph import open_graph_store
from kgrag.graph.strength import edge_strength
from kgrag.settings import load_settings
from kgrag.text import normalise

TF_ROWS = [
    ("Psoriasis associates Gene HLA-B", "True"),                     # 0 disease_gene, covered
    ("Obesity is not associated with Gene ADGRV1", "False"),         # 1 via the renamed symbol
    ("Marfan syndrome associates Gene TP53", "False"),               # 2 no edge -> uncovered
    ("Disease ontology identifier for psoriasis vulgaris is DOID:8893", "True"),  # 3 doid
    ("Disease ontology identifier for Fixture Unmapped Disorder is DOID:1", "False"),  # 4 not a DOID node
    ("methotrexate treats psoriasis", "True"),                        # 5 treats
    ("psoriatic arthritis is a psoriasis", "True"),                   # 6 isa
    ("psoriatic arthritis is not a skin disease", "False"),           # 7 isa, no direct edge -> uncovered
    ("What is the meaning of psoriasis?", "False"),                   # 8 unparsed
    ("Psoriasis (disorder) associates Gene HLA-B", "True"),          # 9 found without the qualifier
]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture()
def sources(tmp_path: Path, fixtures_dir: Path) -> Path:
    """A mirror: the kg_sources fixtures plus small benchmark files."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "kg_sources").symlink_to(fixtures_dir / "kg_sources", target_is_directory=True)
    _write_csv(root / "biomixqa" / "disease_name_with_id.csv", ["disease_name", "disease_id"],
               [["psoriasis", "DOID:8893"], ["skin disorder", "DOID:37"], ["no id disease", ""]])
    _write_csv(root / "biomixqa" / "true_false_questions.csv", ["", "text", "label"],
               [[str(i), text, label] for i, (text, label) in enumerate(TF_ROWS)])
    _write_csv(root / "biomixqa" / "mcq_questions.csv", ["correct_node", "disease_1", "disease_2", "text"], [
        ["HLA-B", "psoriasis", "psoriatic arthritis",
         "Out of the given list, which Gene is associated with psoriasis and psoriatic arthritis. Given list is: TP53, HLA-B"],
        ["TP53", "psoriasis", "obesity",
         "Out of the given list, which Gene is associated with psoriasis and obesity. Given list is: TP53, HLA-B"],
        ["rs123", "psoriasis", "psoriasis",
         "Out of the given list, which Variant is associated with psoriasis and psoriasis. Given list is: rs123, rs9"],
    ])
    return root


@pytest.fixture()
def settings(sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key in ("KGRAG_SOURCES_DIR", "KGRAG_HOME", "KGRAG_GRAPH_URI", "KGRAG_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    return load_settings(sources_dir=sources, home=tmp_path / "home", graph_batch_size=7)


def test_build_writes_the_merged_graph(settings) -> None:
    ctx, _ = collect(settings, progress=False)
    with open_graph_store(settings) as store:
        report = build_graph(settings, store, progress=False)
        assert report.node_counts == ctx.graph.label_counts()
        assert report.edge_counts == ctx.graph.edge_type_counts()
        assert report.nodes_written == ctx.graph.node_count and report.edges_written == ctx.graph.edge_count
        assert report.malformed_total == 10 and report.dangling_edges == 0
        assert report.sources["KG-RAG disease names"].unused == {"name without a DOID": 1}
        found = store.find_by_name([normalise("Psoriasis vulgaris"), normalise("skin disorder")], labels=["Disease"])
        assert [n.id for n in found[normalise("Psoriasis vulgaris")]] == ["DOID:8893"]
        assert [n.id for n in found[normalise("skin disorder")]] == ["DOID:37"]  # benchmark name as synonym
        (edge,) = [e for e in store.edges_between(["DOID:8893"], ["NCBIGene:3106"]) if e.type == "ASSOCIATES_DaG"]
        assert edge.sources == ["DisGeNET", "GWAS Catalog", "DISEASES", "Hetionet"]
        assert edge.properties["disgenet_score"] == 0.5
        # the strength is computed at build time from the merged sources and stored with the edge
        evidence = {k: v for k, v in edge.properties.items() if not k.startswith("strength")}
        assert edge.properties["strength"] == edge_strength(edge.type, edge.sources, evidence)
        assert edge.properties["strength"] > 0.5 and edge.properties["strength_basis"].count(";") >= 2
        # GWAS gene edges carry their locus's best p-value and studies (snp-associations.tsv, locus 0: 1e-30;
        # two PMIDs with a p-value, the third row has none)
        assert edge.properties["gwas_pvalue"] == pytest.approx(1e-30) and edge.properties["gwas_studies"] == 2
        merged = list(ctx.graph.edges())
        assert all(0.0 <= e.properties["strength"] <= 1.0 and e.properties["strength_basis"] for e in merged)
        # building again into the same store changes nothing
        again = build_graph(settings, store, progress=False)
        assert again.node_counts == report.node_counts and again.edge_counts == report.edge_counts


def test_parse_statement_patterns() -> None:
    assert parse_statement("KLEEFSTRA SYNDROME 1 is not associated with Gene EHMT1").pattern == "disease_gene"
    claim = parse_statement("Disease ontology identifier for Marfan syndrome is DOID:0060055")
    assert (claim.pattern, claim.head) == ("doid", "Marfan syndrome")
    claim = parse_statement("immune checkpoint inhibitors treats melanoma")
    assert (claim.pattern, claim.head, claim.tails) == ("treats", "melanoma", [("immune checkpoint inhibitors", "Compound")])
    claim = parse_statement("Canavan disease is a inborn aminoacylase deficiency")
    assert (claim.pattern, claim.head, claim.tails[0][0]) == ("isa", "Canavan disease", "inborn aminoacylase deficiency")
    assert parse_statement("rs123 is associated with psoriasis").pattern == "disease_variant"
    assert parse_statement("Is this a question?") is None


def test_coverage_true_false_and_mcq(settings) -> None:
    with open_graph_store(settings) as store:
        build_graph(settings, store, progress=False)
        tf = coverage(settings, store, "biomixqa-tf")
        mcq = coverage(settings, store, "biomixqa-mcq")
    assert tf.rows == 10 and tf.uncovered == [2, 4, 7, 8] and tf.unparsed == [8]
    assert tf.covered == 6 and tf.rate == 0.6
    assert {k: (v.rows, v.covered) for k, v in tf.patterns.items()} == {
        "disease_gene": (4, 3), "doid": (2, 1), "treats": (1, 1), "isa": (2, 1), "unparsed": (1, 0)}
    assert mcq.uncovered == [1] and mcq.patterns["mcq_variant"].covered == 1


def test_cli_build_and_coverage(sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRAG_SOURCES_DIR", str(sources))
    monkeypatch.setenv("KGRAG_HOME", str(tmp_path / "cli-home"))
    monkeypatch.delenv("KGRAG_GRAPH_URI", raising=False)
    runner = CliRunner()
    built = runner.invoke(app, ["build-graph", "--json", "--no-progress"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.stdout)
    assert report["node_counts"]["Disease"] > 0 and report["edge_counts"]["ASSOCIATES_DaG"] > 0
    assert (tmp_path / "cli-home" / "graph.lbug").exists()
    result = runner.invoke(app, ["graph-coverage", "--dataset", "biomixqa-tf", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uncovered"] == [2, 4, 7, 8]
    bad = runner.invoke(app, ["graph-coverage", "--dataset", "nope"])
    assert bad.exit_code == 2 and "biomixqa-tf" in bad.output


def test_user_graph(tmp_path: Path, settings) -> None:
    folder = tmp_path / "mine"
    _write_csv(folder / "nodes.csv", ["id", "label", "name", "synonyms", "xrefs", "tissue"], [
        ["DOID:8893", "Disease", "psoriasis", "psoriasis vulgaris", "UMLS:C0033860", "skin"],
        ["NCBIGene:3106", "Gene", "HLA-B", "HLAB", "", ""],
        ["X:1", "Bad Label!", "bad", "", "", ""],
        ["X:2", "Gene", "", "", "", ""],
    ])
    _write_csv(folder / "edges.csv", ["source_id", "type", "target_id", "sources", "pvalue"], [
        ["DOID:8893", "ASSOCIATES_DaG", "NCBIGene:3106", "GWAS|Mine", "1e-30"],
        ["DOID:8893", "ASSOCIATES_DaG", "NCBIGene:404", "GWAS", ""],
        ["DOID:8893", "ASSOCIATES_DaG", "NCBIGene:3106", "", ""],
    ])
    issues = RowIssues()
    with open_graph_store(settings) as store:
        report = load_user_graph(store, folder, issues)
        (node,) = store.get_nodes(["DOID:8893"])
        (edge,) = store.edges_between(["DOID:8893"], ["NCBIGene:3106"])
    assert (report.nodes, report.edges, report.dangling_edges) == (2, 1, 1)
    assert node.synonyms == ["psoriasis vulgaris"] and node.properties == {"tissue": "skin"}
    assert edge.sources == ["GWAS", "Mine"]
    # two sources without a score this code knows: one unit each, noisy-OR
    assert edge.properties == {"pvalue": 1e-30, "strength": 0.75, "strength_basis": edge.properties["strength_basis"]}
    assert {(s.file.endswith("nodes.csv"), s.line) for s in issues.samples} == {(True, 4), (True, 5), (False, 4)}


def test_user_graph_keeps_a_valid_strength_and_computes_the_rest(tmp_path: Path, settings) -> None:
    folder = tmp_path / "mine"
    _write_csv(folder / "nodes.csv", ["id", "label", "name"], [
        ["D:1", "Disease", "d1"], ["G:1", "Gene", "g1"], ["G:2", "Gene", "g2"], ["G:3", "Gene", "g3"]])
    _write_csv(folder / "edges.csv", ["source_id", "type", "target_id", "sources", "strength", "disgenet_score", "disgenet_pmids"], [
        ["D:1", "ASSOCIATES_DaG", "G:1", "Mine", "0.3", "", ""],
        ["D:1", "ASSOCIATES_DaG", "G:2", "DisGeNET", "", "0.21", "1"],
        ["D:1", "ASSOCIATES_DaG", "G:3", "DisGeNET", "very", "0.72", "40"],
    ])
    issues = RowIssues()
    with open_graph_store(settings) as store:
        report = load_user_graph(store, folder, issues)
        edges = {e.target.id: e for e in store.edges_between(["D:1"], ["G:1", "G:2", "G:3"])}
    assert report.edges == 3
    assert edges["G:1"].properties["strength"] == 0.3 and edges["G:1"].properties["strength_basis"] == "given in edges.csv"
    weak = edges["G:2"].properties
    assert weak["strength"] == edge_strength("ASSOCIATES_DaG", ["DisGeNET"], {"disgenet_score": 0.21, "disgenet_pmids": 1})
    assert weak["strength"] < 0.3 and "score 0.21" in weak["strength_basis"]
    assert edges["G:3"].properties["strength"] > 0.8  # "very" is not a strength: computed, and reported
    assert [(s.line, "strength 'very'" in s.reason) for s in issues.samples] == [(4, True)]


def test_user_graph_missing_file_is_an_error(tmp_path: Path, settings) -> None:
    from kgrag.errors import SourceFileError

    with open_graph_store(settings) as store, pytest.raises(SourceFileError, match="nodes.csv"):
        load_user_graph(store, tmp_path / "nowhere", RowIssues())


def test_user_graph_with_bom_and_header_quirks_loads(tmp_path: Path, settings) -> None:
    """Issue 25 item 3: a spreadsheet's UTF-8 BOM, spaces and capitals in the header load like plain files."""
    folder = tmp_path / "bom"
    folder.mkdir()
    (folder / "nodes.csv").write_bytes("\ufeffid, Label ,NAME,synonyms\nDOID:8893,Disease,psoriasis,psoriasis vulgaris\n"
                                       "NCBIGene:3106,Gene,HLA-B,HLAB\n".encode("utf-8"))
    (folder / "edges.csv").write_bytes("\ufeffsource_id,type,target_id,sources\n"
                                       "DOID:8893,ASSOCIATES_DaG,NCBIGene:3106,GWAS\n".encode("utf-8"))
    issues = RowIssues()
    with open_graph_store(settings) as store:
        report = load_user_graph(store, folder, issues)
        (node,) = store.get_nodes(["DOID:8893"])
    assert (report.nodes, report.edges, report.malformed_rows) == (2, 1, 0)
    assert node.name == "psoriasis" and node.synonyms == ["psoriasis vulgaris"]


def test_user_graph_header_without_required_columns_is_refused_naming_them(tmp_path: Path, settings) -> None:
    from kgrag.errors import SourceFileError

    folder = tmp_path / "bad"
    _write_csv(folder / "nodes.csv", ["identifier", "label", "name"], [["DOID:8893", "Disease", "psoriasis"]])
    _write_csv(folder / "edges.csv", ["source_id", "type", "target_id", "sources"], [])
    with open_graph_store(settings) as store, pytest.raises(SourceFileError) as caught:
        load_user_graph(store, folder, RowIssues())
    message = str(caught.value)
    assert "nodes.csv" in message and "['id']" in message and "identifier" in message


def test_user_graph_duplicate_ids_are_reported_and_merged(tmp_path: Path, settings) -> None:
    """Issue 25 item 4: the first row's name and label stay, later names become synonyms, lists are joined,
    and each duplicate is reported with its file and line (not counted as malformed)."""
    folder = tmp_path / "dup"
    _write_csv(folder / "nodes.csv", ["id", "label", "name", "synonyms", "tissue"], [
        ["DOID:8893", "Disease", "psoriasis", "psoriasis vulgaris", ""],
        ["NCBIGene:3106", "Gene", "HLA-B", "HLAB|MHC class I B", "blood"],
        ["NCBIGene:3106", "Gene", "HLA-B gene", "HLA-B*27", "skin"],
        ["NCBIGene:3106", "Compound", "HLA-B", "", ""],
    ])
    _write_csv(folder / "edges.csv", ["source_id", "type", "target_id", "sources"],
               [["DOID:8893", "ASSOCIATES_DaG", "NCBIGene:3106", "GWAS"]])
    issues = RowIssues()
    with open_graph_store(settings) as store:
        report = load_user_graph(store, folder, issues)
        (node,) = store.get_nodes(["NCBIGene:3106"])
    assert node.name == "HLA-B" and node.label == "Gene"
    assert node.synonyms == ["HLAB", "MHC class I B", "HLA-B gene", "HLA-B*27"]
    assert node.properties == {"tissue": "blood"}
    assert report.nodes == 2 and report.duplicate_ids == 2
    lines = {(d.line, d.first_line) for d in report.duplicates}
    assert lines == {(4, 3), (5, 3)}
    assert all(d.file.endswith("nodes.csv") for d in report.duplicates)
    conflict = next(d for d in report.duplicates if d.line == 5)
    assert "label Compound" in conflict.reason and "kept Gene" in conflict.reason
    kept = next(d for d in report.duplicates if d.line == 4)
    assert "tissue" in kept.reason
