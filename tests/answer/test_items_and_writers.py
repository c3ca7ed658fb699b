"""Entity answers as data (Answer.items) and the writers that cannot invent, on the tiny real graph."""

from __future__ import annotations

import pytest

from kgrag.answer.evidence_writer import NO_EVIDENCE, best_sentences, edge_in_words
from kgrag.answer.pipeline import Pipeline
from kgrag.answer.sentence_support import UNSUPPORTED_MARK, complete_sentences, mark_unsupported
from kgrag.types import ClaimVerdict, Evidence, Question
from tests.answer.test_pipeline import _NoLLM


@pytest.fixture()
def evidence_pipeline(tiny_store, embedder, tmp_settings):
    settings = tmp_settings.model_copy(update={"retrieval_mode": "kg", "selection_mode": "evidence"})
    return Pipeline(settings, store=tiny_store, embedder=embedder, generator=_NoLLM())


def test_an_entity_question_gets_ranked_items_with_their_evidence_and_no_llm(evidence_pipeline):
    [a] = evidence_pipeline.answer_batch(["Which genes are associated with psoriasis?"])
    assert a.writer == "evidence" and a.usage.llm_calls == 0
    assert {i.name for i in a.items} == {"HLA-B", "NOD2"} and all(i.label == "Gene" for i in a.items)
    hla = next(i for i in a.items if i.name == "HLA-B")
    assert hla.id == "NCBIGene:3106" and hla.evidence == ["DOID:8893|ASSOCIATES_DaG|NCBIGene:3106"]
    assert hla.sources == ["GWAS"] and hla.origin == "graph" and 0.0 < hla.strength <= 1.0
    assert a.items == sorted(a.items, key=lambda i: -i.strength)
    assert a.text.startswith("Genes associated with psoriasis, strongest evidence first: ")
    assert "HLA-B (GWAS)" in a.text and "NOD2 (DisGeNET)" in a.text
    assert "psoriatic arthritis" not in {i.name for i in a.items}  # an is-a edge does not answer "which genes"


def test_items_joined_to_every_entity_of_the_question_come_first(evidence_pipeline):
    [a] = evidence_pipeline.answer_batch(["Which genes are associated with psoriasis and myelodysplastic syndrome?"])
    assert a.items[0].name == "HLA-B" and len(a.items[0].evidence) == 2


def test_items_come_from_a_given_context_when_the_graph_has_none(evidence_pipeline):
    q = Question(text="Which genes are linked to breast cancer?",
                 context="Germline CHEK2 mutations raise the risk of breast cancer. NOD2 variants were also studied.")
    [a] = evidence_pipeline.answer_batch([q])
    by_name = {i.name: i for i in a.items}
    assert by_name["CHEK2"].origin == "graph+text" and by_name["NOD2"].origin == "text"
    assert by_name["CHEK2"].strength > by_name["NOD2"].strength  # an edge and a sentence beat a sentence alone
    assert "Germline CHEK2 mutations raise the risk of breast cancer." in a.text


def test_a_question_with_no_evidence_says_so(evidence_pipeline):
    [a] = evidence_pipeline.answer_batch(["What is the capital of France?"])
    assert a.text == NO_EVIDENCE and a.items == []


def test_a_question_that_asks_for_no_entities_gets_facts_not_items(evidence_pipeline):
    [a] = evidence_pipeline.answer_batch(["What is psoriatic arthritis?"])
    assert a.items == [] and "Psoriatic arthritis is a kind of psoriasis (Disease Ontology)." in a.text


def test_edges_and_passages_in_words():
    ev = Evidence(kind="kg", id="DOID:8893|ASSOCIATES_DaG|NCBIGene:3106", score=1.0, sources=["GWAS", "DisGeNET"],
                  text="Disease psoriasis associates Gene HLA-B and Provenance of this association is GWAS, DisGeNET.")
    assert edge_in_words(ev) == "Psoriasis is associated with HLA-B (GWAS, DisGeNET)."
    passage = Evidence(kind="text", id="p1", score=0.5, sources=["PMID:7"],
                       text="ces fragment without start. HLA-B is the main psoriasis risk gene in many cohorts. Short.")
    q = Question(text="Which gene is the main risk gene of psoriasis?")
    assert best_sentences(q, [passage], ["HLA-B"], 3) == ["HLA-B is the main psoriasis risk gene in many cohorts. [PMID:7]"]


def test_an_llm_answer_is_cut_to_whole_sentences_and_unsupported_sentences_are_marked_or_dropped():
    assert complete_sentences("HLA-B is linked. It is a family of gen") == "HLA-B is linked."
    assert complete_sentences("No full stop at all") == "No full stop at all"
    assert complete_sentences("1. IL12B is linked. 2. IL23R is linked. 14.") == "1. IL12B is linked. 2. IL23R is linked."
    q = Question(text="Which genes are associated with psoriasis?")
    evidence = [Evidence(kind="kg", id="a|ASSOCIATES_DaG|b", score=1.0, sources=["GWAS"],
                         text="Disease psoriasis associates Gene HLA-B and Provenance of this association is GWAS.")]
    text = "HLA-B is associated with psoriasis. It is a family of genes involved in cancer development. Psoriasis associates HLA-B."
    claims = [ClaimVerdict(sentence="HLA-B is associated with psoriasis.", head="HLA-B", tail="psoriasis", verdict="graph")]
    marked, unsupported = mark_unsupported(text, claims, evidence, q, strict=False)
    assert unsupported == ["It is a family of genes involved in cancer development."]
    assert f"development. {UNSUPPORTED_MARK}" in marked and marked.startswith("HLA-B is associated with psoriasis.")
    strict, _ = mark_unsupported(text, claims, evidence, q, strict=True)
    assert "family of genes" not in strict and "Psoriasis associates HLA-B." in strict
    refuted = [ClaimVerdict(sentence="HLA-B is associated with psoriasis.", head="HLA-B", tail="psoriasis",
                            verdict="unsupported")]
    assert mark_unsupported("HLA-B is associated with psoriasis.", refuted, evidence, q, strict=True)[0] == ""


def test_the_llm_writer_gets_the_same_items_and_ends_on_a_whole_sentence(tiny_store, embedder, smollm, tmp_settings):
    settings = tmp_settings.model_copy(update={"retrieval_mode": "kg", "selection_mode": "evidence", "writer": "llm",
                                               "llm_max_new_tokens": 48})
    [a] = Pipeline(settings, store=tiny_store, embedder=embedder, generator=smollm).answer_batch(
        ["Which genes are associated with psoriasis?"])
    assert a.writer == "llm" and a.usage.llm_calls == 1 and {i.name for i in a.items} == {"HLA-B", "NOD2"}
    assert a.text.rstrip().endswith((".", "!", "?", UNSUPPORTED_MARK)) or "." not in a.text
    assert all(s in a.text for s in a.unsupported)


def test_a_retrieved_passage_counts_only_where_it_names_the_questions_entity(tiny_store, embedder, tmp_settings):
    from kgrag.answer.items import ItemRanker
    from kgrag.answer.retriever import Linked, Retrieved
    from kgrag.retrieval.graph_context import Candidate
    from kgrag.retrieval.linking import EntityLinker
    from kgrag.retrieval.relevance import asked

    linker = EntityLinker.from_store(tiny_store, embedder, tmp_settings)
    q = Question(text="Which genes are associated with breast cancer?")
    [entities] = linker.link([q.text])
    passage = Evidence(kind="text", id="p1", score=0.5, sources=["PMID:9"], properties={"pmid": "9"},
                       text="CHEK2 carriers have a higher risk of breast cancer. NOD2 variants cause psoriasis flares.")
    found = Retrieved(candidates=[Candidate(group="text", evidence=passage)], asked=asked(q.text, entities))
    [items] = ItemRanker(tmp_settings, tiny_store, linker).rank([q], [Linked(entities=entities)], [found])
    assert [i.name for i in items] == ["CHEK2"]  # NOD2's sentence is about psoriasis, not the question's disease
    assert items[0].origin == "text" and items[0].sources == ["PMID:9"]
    # the writer cites only the passage's sentences about the question's entity
    other = Evidence(kind="text", id="p2", score=0.4, sources=["PMID:10"],
                     text="CHEK2 is a kinase that guards genome integrity in dividing cells.")
    sentences = best_sentences(q, [passage, other], ["breast cancer", "CHEK2"], 3, require_names=["CHEK2"],
                               subjects=["breast cancer"])
    assert sentences == ["CHEK2 carriers have a higher risk of breast cancer. [PMID:9]"]
