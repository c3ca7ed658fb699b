"""What a question asks for, per relation type, and the tier each edge gets (no embedding involved)."""

from __future__ import annotations

from kgrag.graph.schema import EdgeView, NodeRef
from kgrag.retrieval.relevance import ANSWERS, JOINS, NEAR, OTHER, asked
from kgrag.types import LinkedEntity

PSORIASIS = LinkedEntity(mention="psoriasis", node_id="DOID:8893", label="Disease", name="psoriasis", method="exact")
HLA = LinkedEntity(mention="HLA-B", node_id="NCBIGene:3106", label="Gene", name="HLA-B", method="exact")


def edge(edge_type: str, source: tuple[str, str], target: tuple[str, str]) -> EdgeView:
    s, t = NodeRef(id=source[0], label=source[1], name=source[0]), NodeRef(id=target[0], label=target[1], name=target[0])
    return EdgeView(key=f"{s.id}|{edge_type}|{t.id}", type=edge_type, source=s, target=t, sources=["X"])


def test_genes_associated_with_a_disease_ask_for_gene_associations():
    a = asked("Which genes are associated with psoriasis?", [PSORIASIS])
    assert a.labels == ["Gene"] and "ASSOCIATES" in a.relations and a.entity_question
    assert a.relevance(edge("ASSOCIATES_DaG", ("DOID:8893", "Disease"), ("G1", "Gene")), "DOID:8893") == ANSWERS
    assert a.relevance(edge("UPREGULATES_DuG", ("DOID:8893", "Disease"), ("G1", "Gene")), "DOID:8893") == NEAR
    assert a.relevance(edge("TREATS_CtD", ("C1", "Compound"), ("DOID:8893", "Disease")), "DOID:8893") == OTHER


def test_drugs_that_treat_ask_for_compounds_that_treat_not_those_that_palliate():
    a = asked("Which drugs treat psoriasis?", [PSORIASIS])
    assert a.labels == ["Compound"] and a.relations == ["TREATS"]
    assert a.relevance(edge("TREATS_CtD", ("C1", "Compound"), ("DOID:8893", "Disease")), "DOID:8893") == ANSWERS
    # symptomatic relief is another relation to an asked label: context, not an answer
    assert a.relevance(edge("PALLIATES_CpD", ("C1", "Compound"), ("DOID:8893", "Disease")), "DOID:8893") == NEAR
    assert asked("Which drugs relieve the symptoms of psoriasis?", [PSORIASIS]).relations == ["PALLIATES", "PRESENTS"]


def test_an_edge_between_two_entities_of_the_question_ranks_above_all():
    a = asked("Is HLA-B associated with psoriasis?", [PSORIASIS, HLA])
    joining = edge("ASSOCIATES_DaG", ("DOID:8893", "Disease"), ("NCBIGene:3106", "Gene"))
    assert a.relevance(joining, "DOID:8893") == JOINS and not a.entity_question


def test_words_inside_an_entity_mention_are_not_cues():
    parkinson = LinkedEntity(mention="Parkinson disease", node_id="DOID:14330", label="Disease", name="Parkinson's disease",
                             method="exact")
    a = asked("What is Parkinson disease?", [parkinson])
    assert a.labels == [] and a.relations == [] and not a.entity_question  # "disease" names it, it does not ask for one
    # no cue: the whole neighbourhood answers, strength alone orders it
    assert a.relevance(edge("ISA_DiD", ("DOID:14330", "Disease"), ("D2", "Disease")), "DOID:14330") == ANSWERS


def test_what_asks_for_entities_only_when_it_names_their_kind():
    assert asked("What genes are mutated in cystic fibrosis?", []).entity_question
    assert not asked("What is the role of CFTR?", []).entity_question
    assert asked("List the side effects of metformin", []).labels == ["SideEffect"]
    assert asked("Cemiplimab is used for treatment of which cancer?", []).entity_question  # "which" need not lead
    assert asked("What is the main target of imatinib?", []).entity_question  # "what is the ..." asks for one
    gaucher = LinkedEntity(mention="Gaucher disease", node_id="DOID:1926", label="Disease", name="Gaucher's disease",
                           method="exact")
    assert asked("Which enzyme is deficient in Gaucher disease?", [gaucher]).labels == ["Gene"]
