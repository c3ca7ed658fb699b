"""The evidence behind an answer as a subgraph and a picture: the deciding edge is in it, the node cap keeps it,
PNG/SVG/HTML are written (HTML self-contained), a bad suffix is a clear error, `kgrag ask --picture` works."""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrag.graph.schema import EdgeView, NodeRef, edge_sentence
from kgrag.explain.picture import PictureFormatError, picture_format, show, write_picture
from kgrag.answer.pipeline import Pipeline
from kgrag.explain.subgraph import EvidenceSubgraph, build_subgraph, edge_endpoints
from kgrag.types import Answer, Decision, Evidence, LinkedEntity, Question
from tests.conftest import TINY_EDGES, TINY_NODES, ladybug_graph
from tests.answer.test_pipeline import _NoLLM
from tests.kgrag_env import use_kgrag_env

MCQ = Question(text="Which Gene is associated with psoriasis and myelodysplastic syndrome?",
               options=["NOD2", "CHEK2", "HLA-B"])
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def evidence_pipeline(tmp_settings, embedder, tiny_store):
    settings = tmp_settings.model_copy(update={"retrieval_mode": "kg", "prune_floor": 0.0, "selection_mode": "evidence"})
    return Pipeline(settings, store=tiny_store, embedder=embedder, generator=_NoLLM())


@pytest.fixture()
def answers(evidence_pipeline) -> tuple[Answer, Answer]:
    mcq, tf = evidence_pipeline.answer_batch([MCQ, Question(text="Psoriasis associates Gene NOD2", task="true_false")])
    return mcq, tf


def _edge(source: NodeRef, edge_type: str, target: NodeRef, sources: list[str], score: float,
          option: str | None = None) -> Evidence:
    view = EdgeView(key=f"{source.id}|{edge_type}|{target.id}", type=edge_type, source=source, target=target,
                    sources=sources)
    return Evidence(kind="kg", text=edge_sentence(view), score=score, id=view.key, sources=sources, option=option)


def _many_edges_answer(n_context: int) -> Answer:
    """An MCQ decided by the evidence: two deciding edges to HLA-B, one option edge to NOD2, n context edges."""
    pso = NodeRef(id="DOID:8893", label="Disease", name="psoriasis")
    mds = NodeRef(id="DOID:0050908", label="Disease", name="myelodysplastic syndrome")
    hla = NodeRef(id="NCBIGene:3106", label="Gene", name="HLA-B")
    nod = NodeRef(id="NCBIGene:64127", label="Gene", name="NOD2")
    context = [_edge(pso if k % 2 else mds, "ASSOCIATES_DaG", NodeRef(id=f"NCBIGene:{k}", label="Gene", name=f"G{k}"),
                     ["DISEASES"], 0.9 - k / 1000) for k in range(n_context)]
    evidence = context + [_edge(pso, "ASSOCIATES_DaG", nod, ["DisGeNET"], 0.5, "NOD2"),
                          _edge(pso, "ASSOCIATES_DaG", hla, ["GWAS"], 0.1, "HLA-B"),
                          _edge(mds, "ASSOCIATES_DaG", hla, ["DISEASES"], 0.1, "HLA-B")]
    entities = [LinkedEntity(mention=n.name, node_id=n.id, label=n.label, name=n.name, method="exact") for n in (pso, mds)]
    decision = Decision(by="evidence", reason="HLA-B: 2 question entities joined", evidence=[e.id for e in evidence[-2:]])
    return Answer(question=MCQ.text, task="mcq", text="HLA-B", choice="HLA-B", selection_mode="evidence",
                  entities=entities, evidence=evidence, decision=decision)


def test_subgraph_of_a_known_question_holds_the_deciding_edge(answers):
    mcq, tf = answers
    assert mcq.choice == "HLA-B"
    graph = build_subgraph(mcq, options=MCQ.options, gold="HLA-B")
    assert isinstance(graph, EvidenceSubgraph) and graph.decided_by == "evidence" and graph.correct is True
    deciding = {e.id: e for e in graph.edges if e.role == "deciding"}
    assert set(deciding) == {"DOID:8893|ASSOCIATES_DaG|NCBIGene:3106", "DOID:0050908|ASSOCIATES_DaG|NCBIGene:3106"}
    edge = deciding["DOID:8893|ASSOCIATES_DaG|NCBIGene:3106"]
    assert (edge.type, edge.sources, edge.source, edge.target) == ("ASSOCIATES_DaG", ["GWAS"], "DOID:8893", "NCBIGene:3106")
    assert edge.properties.get("pvalue") == pytest.approx(1e-20)
    assert deciding["DOID:0050908|ASSOCIATES_DaG|NCBIGene:3106"].sources == ["DISEASES"]
    hla = graph.node("NCBIGene:3106")
    assert (hla.name, hla.label, hla.role, hla.option, hla.chosen, hla.gold) == ("HLA-B", "Gene", "option", "HLA-B", True, True)
    nod2 = graph.node("NCBIGene:64127")
    assert nod2.role == "option" and not nod2.chosen
    assert [e.role for e in graph.edges if e.target == "NCBIGene:64127"] == ["option"]  # joins, but did not decide
    assert graph.node("option:CHEK2").role == "option"  # an option no edge reached is still shown
    assert {n.id for n in graph.nodes if n.role == "entity"} == {"DOID:8893", "DOID:0050908"}
    assert "HLA-B" in graph.decision

    tf_graph = build_subgraph(tf)
    assert tf_graph.decided_by == "evidence" and tf.choice == "True"
    assert [e.id for e in tf_graph.edges if e.role == "deciding"] == ["DOID:8893|ASSOCIATES_DaG|NCBIGene:64127"]


def test_node_cap_keeps_deciding_and_option_edges_first():
    answer = _many_edges_answer(120)
    graph = build_subgraph(answer, options=["NOD2", "CHEK2", "HLA-B"], max_nodes=20)
    assert len(graph.nodes) <= 20
    roles = [e.role for e in graph.edges]
    assert roles.count("deciding") == 2 and roles.count("option") == 1
    assert graph.edges_total == 123 and graph.edges_left_out == 123 - len(graph.edges) > 0
    context_ends = {e.source for e in graph.edges if e.role == "context"}
    assert context_ends == {"DOID:8893", "DOID:0050908"}  # both entities get a share of the context
    full = build_subgraph(answer, options=["NOD2", "CHEK2", "HLA-B"], max_nodes=500)
    assert full.edges_left_out == 0 and len(full.edges) == 123


def test_edge_endpoints_read_names_back_even_when_a_name_holds_the_verb():
    source = NodeRef(id="X:1", label="Disease", name="disease that associates with gene loss")
    target = NodeRef(id="X:2", label="Gene", name="associates Gene 2")
    ev = _edge(source, "ASSOCIATES_DaG", target, ["A", "B"], 0.3)
    got_source, edge_type, got_target = edge_endpoints(ev)
    assert (got_source, edge_type, got_target) == (source, "ASSOCIATES_DaG", target)
    passage = Evidence(kind="text", text="HLA-B in psoriasis.", score=0.4, id="p1", sources=["PMID:1"])
    assert edge_endpoints(passage) is None


def test_png_svg_html_are_written_and_self_contained(tmp_path):
    answer = _many_edges_answer(30)
    answer.evidence.append(Evidence(kind="text", text="HLA-B is a risk gene for psoriasis.", score=0.7, id="p1",
                                    sources=["PMID:123"]))
    graph = build_subgraph(answer, options=["NOD2", "CHEK2", "HLA-B"], gold="NOD2")
    assert graph.correct is False and graph.node("passage:p1").role == "passage"
    png = write_picture(graph, tmp_path / "out" / "e.png")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    assert stat.S_IMODE(png.stat().st_mode) & 0o044  # readable by others as open() would make it
    svg = write_picture(graph, tmp_path / "e.svg")
    root = ET.parse(svg).getroot()
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any("GWAS" in t and "deciding" in t for t in titles)  # hover details on the deciding edge
    assert any("NCBIGene:3106" in t and "chosen" in t for t in titles)
    page = write_picture(graph, tmp_path / "e.html").read_text()
    assert "<svg" in page and "HLA-B" in page and "<script" not in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page, re.IGNORECASE)  # nothing fetched
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_show_draws_a_png_for_notebooks():
    assert show(build_subgraph(_many_edges_answer(3))).data[:8] == PNG_MAGIC


def test_bad_suffix_is_a_clear_input_error(tmp_path):
    graph = build_subgraph(_many_edges_answer(2))
    with pytest.raises(PictureFormatError, match=r"\.png, \.svg") as info:
        write_picture(graph, tmp_path / "e.jpg")
    assert isinstance(info.value, ValueError)
    with pytest.raises(PictureFormatError, match="no suffix"):
        picture_format("evidence")
    assert not list(tmp_path.iterdir())


def test_ask_with_picture_writes_the_file(tmp_settings, embedder, tmp_path, monkeypatch):
    from kgrag.cli import EXIT_USAGE, app

    monkeypatch.setenv("KGRAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KGRAG_RETRIEVAL_MODE", "kg")
    monkeypatch.setenv("KGRAG_SELECTION_MODE", "evidence")

    def from_settings(settings=None):
        return Pipeline(settings.model_copy(update={"prune_floor": 0.0}), store=ladybug_graph(tmp_path / "cli.lbug", TINY_NODES, TINY_EDGES),
                        embedder=embedder, generator=_NoLLM())

    monkeypatch.setattr(Pipeline, "from_settings", staticmethod(from_settings))
    out = tmp_path / "pics" / "answer.png"
    result = CliRunner().invoke(app, ["ask", MCQ.text, "--options", ",".join(MCQ.options), "--json", "--picture", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert f"written to {out}" in result.stderr
    assert result.stdout.lstrip().startswith("{") and '"choice": "HLA-B"' in result.stdout  # stdout stays JSON

    bad = CliRunner().invoke(app, ["ask", MCQ.text, "--picture", str(tmp_path / "a.gif")])
    assert bad.exit_code == EXIT_USAGE and ".png" in bad.output
    assert not os.path.exists(tmp_path / "a.gif")


def test_eval_report_draws_chosen_rows_beside_gold_and_prediction(fixtures_dir, tmp_path, monkeypatch):
    from eval.report import compare_runs, load_run, summarize_run, write_report
    from eval.runner import RunError, RunInputError, run_eval
    from kgrag.cli import app
    from kgrag.settings import load_settings

    use_kgrag_env(monkeypatch)
    settings = load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "eval" / "data")
    path = run_eval(settings, "biomixqa-mcq", "kg", out_dir=tmp_path / "runs",
                    pipeline_factory="tests.fixtures.eval.fake_pipeline:make_pipeline", progress=False,
                    log=lambda m: None).path
    run = load_run(path)
    row = run.rows[0]
    assert row.subgraph is not None and row.subgraph["gold"] == row.gold  # stored when the row was answered
    files = write_report([summarize_run(run, n_boot=100)], tmp_path / "rep", compare_runs([run]), runs=[run],
                         picture_rows=[row.id])
    [picture] = files.row_pictures
    assert picture.png.read_bytes()[:8] == PNG_MAGIC and picture.html.is_file()
    assert (picture.gold, picture.predicted, picture.correct) == (row.gold, row.parsed, row.correct)
    md = files.markdown_path.read_text()
    assert "## Rows drawn" in md and f"rows/{picture.png.name}" in md and f"| {row.gold} |" in md

    result = CliRunner().invoke(app, ["eval-report", str(path), "--out", str(tmp_path / "cli"), "--no-anchors",
                                      "--picture-rows", f"{row.id},nope-1"])
    assert result.exit_code == 2 and "nope-1" in result.output
    old = run.model_copy(update={"rows": [row.model_copy(update={"subgraph": None})]})
    with pytest.raises(RunError, match="no stored evidence subgraph"):
        write_report([summarize_run(old, n_boot=100)], tmp_path / "old", runs=[old], picture_rows=[row.id])
    assert issubclass(RunInputError, ValueError)
