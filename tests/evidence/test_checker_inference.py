"""Ontology- and class-inferred support, cue-aware and nested-ancestor linking, on a tiny real LadybugDB graph.

No embedder and no LLM: the linker runs its dictionary steps, the checker its graph queries."""

from __future__ import annotations

import pytest

from kgrag.evidence.checker import EvidenceChecker
from kgrag.explain.subgraph import build_subgraph
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.retrieval.linking import EntityLinker
from kgrag.graph.ontology import Ontology
from kgrag.types import Question
from tests.conftest import ladybug_graph

NODES = [
    NodeRecord(id="DOID:1", label="Disease", name="xeroderma pigmentosum"),
    NodeRecord(id="DOID:2", label="Disease", name="xeroderma pigmentosum group A"),
    NodeRecord(id="DOID:3", label="Disease", name="xeroderma pigmentosum group A1"),
    NodeRecord(id="DOID:4", label="Disease", name="xeroderma pigmentosum group A1x"),
    NodeRecord(id="DOID:5", label="Disease", name="cystic fibrosis"),
    NodeRecord(id="DOID:6", label="Disease", name="hereditary Wilms' tumor", synonyms=["WT1"]),
    NodeRecord(id="NCBIGene:7507", label="Gene", name="XPA"),
    NodeRecord(id="NCBIGene:1", label="Gene", name="ERCC9"),
    NodeRecord(id="NCBIGene:2", label="Gene", name="DEEP1"),
    NodeRecord(id="NCBIGene:3", label="Gene", name="PARENTG"),
    NodeRecord(id="NCBIGene:7508", label="Gene", name="XPC"),
    NodeRecord(id="NCBIGene:7490", label="Gene", name="WT1"),
    NodeRecord(id="NCBIGene:4", label="Gene", name="DIRECTG"),
    NodeRecord(id="DB01", label="Compound", name="erythromycin"),
    NodeRecord(id="NDFRT:N1", label="PharmacologicClass", name="Macrolides"),
]
EDGES = [
    EdgeRecord(source_id="DOID:2", type="ISA_DiD", target_id="DOID:1", sources=["Disease Ontology"]),
    EdgeRecord(source_id="DOID:3", type="ISA_DiD", target_id="DOID:2", sources=["Disease Ontology"]),
    EdgeRecord(source_id="DOID:4", type="ISA_DiD", target_id="DOID:3", sources=["Disease Ontology"]),
    EdgeRecord(source_id="DOID:2", type="ASSOCIATES_DaG", target_id="NCBIGene:7507", sources=["DisGeNET"]),
    EdgeRecord(source_id="DOID:3", type="ASSOCIATES_DaG", target_id="NCBIGene:1", sources=["DISEASES"]),
    EdgeRecord(source_id="DOID:4", type="ASSOCIATES_DaG", target_id="NCBIGene:2", sources=["DISEASES"]),
    EdgeRecord(source_id="DOID:1", type="ASSOCIATES_DaG", target_id="NCBIGene:3", sources=["DisGeNET"]),
    EdgeRecord(source_id="DOID:1", type="ASSOCIATES_DaG", target_id="NCBIGene:4", sources=["DisGeNET"]),
    EdgeRecord(source_id="NDFRT:N1", type="INCLUDES_PCiC", target_id="DB01", sources=["Hetionet"]),
    EdgeRecord(source_id="DB01", type="TREATS_CtD", target_id="DOID:5", sources=["PharmacotherapyDB"]),
]


class CountingStore:
    """The real store, counting its round-trips."""

    def __init__(self, store):
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if callable(attr) and name in ("neighbourhood", "edges_between", "get_nodes", "find_by_name", "iter_edges"):
            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)
            return counted
        return attr


@pytest.fixture()
def store(tmp_path):
    s = ladybug_graph(tmp_path / "g.lbug", NODES, EDGES)
    yield s
    s.close()


@pytest.fixture()
def settings(tmp_settings):
    return tmp_settings.model_copy(update={"retrieval_mode": "kg", "selection_mode": "evidence"})


def _decide(store, settings, questions, **checker_args):
    linker = EntityLinker.from_store(store, None, settings)
    entities = linker.link([q.text for q in questions], fallback=False)
    checker = EvidenceChecker.from_settings(store, None, settings.model_copy(update=checker_args))
    option_nodes = [{o: [n.id for n in store.find_by_name([o.lower()]).get(o.lower(), [])] for o in q.options or []}
                    if q.task == "mcq" else {} for q in questions]
    return checker.decide(questions, entities, option_nodes, [[] for _ in questions]), entities


def tf(text: str) -> Question:
    return Question(text=text, task="true_false", options=["True", "False"])


def test_ontology_walks_are_bounded_and_read_the_hierarchy_once(store):
    counting = CountingStore(store)
    ontology = Ontology(counting, depth=2)
    down = ontology.descendants(["DOID:1", "DOID:5"])
    assert set(down["DOID:1"]) == {"DOID:2", "DOID:3"} and down["DOID:5"] == {}  # DOID:4 is 3 steps down
    assert down["DOID:1"]["DOID:3"].steps == ["DOID:3|ISA_DiD|DOID:2", "DOID:2|ISA_DiD|DOID:1"]
    assert ontology.ancestors(["DOID:3"])["DOID:3"]["DOID:1"].steps == down["DOID:1"]["DOID:3"].steps
    assert counting.calls == ["iter_edges"]  # one scan of the is-a edges; every later walk is in memory
    up = Ontology(store, depth=3).ancestors(["DOID:4"])
    assert up["DOID:4"]["DOID:1"].depth == 3
    assert up["DOID:4"]["DOID:1"].describe().startswith("xeroderma pigmentosum group A1x is a ")
    assert Ontology(store, depth=0).descendants(["DOID:1"]) == {"DOID:1": {}}


def test_a_subtypes_association_supports_the_disease_inferred_with_its_path(store, settings):
    (subtype, two_steps, too_deep, negated, direct), _ = _decide(store, settings, [
        tf("xeroderma pigmentosum associates Gene XPA"),
        tf("xeroderma pigmentosum associates Gene ERCC9"),
        tf("xeroderma pigmentosum associates Gene DEEP1"),
        tf("xeroderma pigmentosum is not associated with Gene XPA"),
        tf("xeroderma pigmentosum associates Gene DIRECTG"),
    ])
    assert subtype.choice == "True" and subtype.support == "ontology" and subtype.confidence == pytest.approx(0.8)
    [evidence] = subtype.supports[0].inferred
    assert evidence.support == "ontology" and evidence.path == ["DOID:2|ASSOCIATES_DaG|NCBIGene:7507", "DOID:2|ISA_DiD|DOID:1"]
    assert "Inferred" in evidence.text and evidence.sources == ["DisGeNET"]
    assert two_steps.choice == "True" and two_steps.confidence == pytest.approx(0.64)
    assert too_deep.choice is None  # beyond evidence_isa_depth
    assert negated.choice == "False" and negated.support == "ontology"
    assert direct.support == "direct" and direct.confidence == 1.0
    [deeper], _ = _decide(store, settings, [tf("xeroderma pigmentosum associates Gene DEEP1")], evidence_isa_depth=3)
    assert deeper.choice == "True" and deeper.confidence == pytest.approx(0.8 ** 3)
    [off], _ = _decide(store, settings, [tf("xeroderma pigmentosum associates Gene XPA")], evidence_isa_depth=0)
    assert off.choice is None


def test_a_parents_association_supports_a_subtype_only_for_inherited_sources(store, settings):
    question = tf("xeroderma pigmentosum group A associates Gene PARENTG")
    [plain], _ = _decide(store, settings, [question])
    assert plain.choice is None
    [inherited], _ = _decide(store, settings, [question], evidence_inherited_sources=["DisGeNET"])
    assert inherited.choice == "True" and inherited.support == "ontology"
    assert inherited.supports[0].inferred[0].path[-1] == "DOID:2|ISA_DiD|DOID:1"


def test_class_membership_supports_a_class_claim(store, settings):
    [verdict], [ents] = _decide(store, settings, [tf("Macrolides treats cystic fibrosis")])
    assert {e.label for e in ents} == {"PharmacologicClass", "Disease"}
    assert verdict.choice == "True" and verdict.support == "class" and verdict.confidence == pytest.approx(0.7)
    assert verdict.supports[0].inferred[0].path == ["DB01|TREATS_CtD|DOID:5", "NDFRT:N1|INCLUDES_PCiC|DB01"]
    [off], _ = _decide(store, settings, [tf("Macrolides treats cystic fibrosis")], evidence_class_support=False)
    assert off.choice is None


def test_mcq_direct_joins_outrank_inferred_ones(store, settings):
    direct_vs_inferred = Question(text="Which Gene is associated with xeroderma pigmentosum?", options=["XPA", "DIRECTG"], task="mcq")
    inferred_only = Question(text="Which Gene is associated with xeroderma pigmentosum?", options=["XPA", "XPC"], task="mcq")
    (a, b), _ = _decide(store, settings, [direct_vs_inferred, inferred_only])
    assert a.choice == "DIRECTG" and a.support == "direct"
    assert b.choice == "XPA" and b.support == "ontology" and b.confidence == pytest.approx(0.8)
    xpa = next(s for s in b.supports if s.option == "XPA")
    assert xpa.entities_joined == [] and xpa.entities_inferred == ["DOID:1"] and xpa.inferred[0].option == "XPA"


def test_nested_ancestor_is_linked_as_context_not_as_a_claims_subject(store, settings):
    linker = EntityLinker.from_store(store, None, settings)
    [ents] = linker.link(["Xeroderma pigmentosum, group A associates Gene PARENTG"])
    by_id = {e.node_id: e for e in ents}
    assert set(by_id) == {"DOID:2", "DOID:1", "NCBIGene:3"}
    assert by_id["DOID:1"].within == "DOID:2" and "is a xeroderma pigmentosum" in by_id["DOID:1"].reason
    assert by_id["DOID:2"].within is None and "name of Disease" in by_id["DOID:2"].reason
    [verdict], _ = _decide(store, settings, [tf("Xeroderma pigmentosum, group A associates Gene PARENTG")])
    assert verdict.choice is None  # the parent's edge is not the subtype's: the nested parent is no claim subject
    [off] = EntityLinker.from_store(store, None, settings.model_copy(update={"link_nested_ancestors": False})).link(
        ["Xeroderma pigmentosum, group A associates Gene PARENTG"])
    assert "DOID:1" not in {e.node_id for e in off}


def test_a_typed_cue_licenses_a_name_for_its_type(store, settings):
    linker = EntityLinker.from_store(store, None, settings)
    cued, uncued, ambiguous = linker.link([
        "xeroderma pigmentosum associates gene xpc",
        "xeroderma pigmentosum associates xpc",
        "Denys-Drash syndrome is not associated with Gene WT1",
    ])
    xpc = [e for e in cued if e.node_id == "NCBIGene:7508"]
    assert xpc and "cue 'gene'" in xpc[0].reason
    assert "NCBIGene:7508" not in {e.node_id for e in uncued}  # a lower-case word alone is not a symbol
    assert {e.node_id for e in ambiguous} == {"NCBIGene:7490"}  # the gene, not the disease with that synonym
    [off] = EntityLinker.from_store(store, None, settings.model_copy(update={"link_cues": False})).link(
        ["xeroderma pigmentosum associates gene xpc"])
    assert "NCBIGene:7508" not in {e.node_id for e in off}


def test_free_text_claims_are_marked_inferred_with_their_path(store, settings):
    linker = EntityLinker.from_store(store, None, settings)
    sentences = [["Xeroderma pigmentosum is linked to XPA.", "Xeroderma pigmentosum is linked to DIRECTG."]]
    checker = EvidenceChecker.from_settings(store, None, settings)
    [verdicts] = checker.claims(["x"], [linker.link(sentences[0], fallback=False)], sentences)
    by_tail = {v.tail: v for v in verdicts}
    assert by_tail["XPA"].verdict == "inferred" and by_tail["XPA"].confidence == pytest.approx(0.8)
    assert by_tail["XPA"].path == ["DOID:2|ASSOCIATES_DaG|NCBIGene:7507", "DOID:2|ISA_DiD|DOID:1"]
    assert by_tail["DIRECTG"].verdict == "graph" and by_tail["DIRECTG"].confidence == 1.0


def test_inference_is_batched(store, settings):
    counting = CountingStore(store)
    linker = EntityLinker.from_store(store, None, settings)
    questions = [tf("xeroderma pigmentosum associates Gene XPA"), tf("Macrolides treats cystic fibrosis"),
                 tf("cystic fibrosis associates Gene ERCC9")]
    entities = linker.link([q.text for q in questions], fallback=False)
    verdicts = EvidenceChecker.from_settings(counting, None, settings).decide(questions, entities, [{}] * 3, [[]] * 3)
    assert [v.choice for v in verdicts] == ["True", "True", None]
    # direct edges, the is-a hierarchy (read once), class members, inferred edges: one round-trip each for the batch
    assert sorted(counting.calls) == sorted(["edges_between", "iter_edges", "neighbourhood", "edges_between"])


def test_the_evidence_picture_draws_an_inferred_edge_with_its_is_a_steps(store, settings):
    from kgrag.types import Answer, Decision

    question = Question(text="Which Gene is associated with xeroderma pigmentosum?", options=["XPA", "XPC"], task="mcq")
    [verdict], [ents] = _decide(store, settings, [question])
    evidence = [e for s in verdict.supports if s.option == verdict.choice for e in s.inferred]
    answer = Answer(question=question.text, task="mcq", text="XPA", choice="XPA", selection_mode="evidence",
                    entities=ents, evidence=evidence, support=verdict.support,
                    decision=Decision(by="evidence", reason=verdict.reason, evidence=[e.id for e in verdict.deciding()]))
    graph = build_subgraph(answer, options=["XPA", "XPC"])
    drawn = {(e.source, e.type, e.target): e for e in graph.edges}
    assert set(drawn) >= {("DOID:2", "ASSOCIATES_DaG", "NCBIGene:7507"), ("DOID:2", "ISA_DiD", "DOID:1")}
    assert all(e.role == "deciding" and e.support == "ontology" for e in drawn.values())
    nodes = {n.id: n for n in graph.nodes}
    assert nodes["NCBIGene:7507"].role == "option" and nodes["NCBIGene:7507"].chosen
    assert nodes["DOID:2"].role == "neighbour" and nodes["DOID:2"].name == "xeroderma pigmentosum group A"
    assert graph.decided_by == "evidence"


def test_the_gate_checks_no_pair_with_a_nested_ancestor(store, settings):
    from kgrag.answer.gated_writer import sentence_pairs

    linker = EntityLinker.from_store(store, None, settings)
    [question] = linker.link(["Xeroderma pigmentosum, group A associates Gene XPA"])
    [sentence] = linker.link(["XPA is mutated in xeroderma pigmentosum group A1."])
    pairs = sentence_pairs(question, sentence)
    assert pairs and not any("xeroderma pigmentosum" in (a.lower(), b.lower()) for a, b in pairs)
