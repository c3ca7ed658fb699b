"""LangChain interop on a tiny real LadybugDB graph, a tiny real FAISS index, the real embedder and SmolLM2."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

from kgrag.indexes.corpus import Passage
from kgrag.errors import QuestionError
from kgrag.langchain import (
    GeneratorRunnable,
    GraphRetriever,
    PipelineRunnable,
    TextRetriever,
    format_documents,
    to_prompt,
    to_question,
)
from kgrag.answer.pipeline import Pipeline
from kgrag.types import Answer, Question
from tests.fakes import WrappedGenerator

PASSAGES = [
    Passage(id="p1", pmid="111", text="HLA-B alleles confer risk of psoriasis in genome-wide association studies.",
            source="pubmedqa"),
    Passage(id="p2", pmid="222", text="Metformin use was associated with lower cancer incidence in diabetics.",
            source="pubmedqa"),
    Passage(id="p3", pmid="333", text="CHEK2 truncating variants increase breast cancer risk.", source="bioasq"),
    Passage(id="p4", pmid=None, text="Myelodysplastic syndromes are clonal disorders of haematopoiesis.",
            source="user"),
]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """SmolLM2 on one thread: on shared, busy CPUs torch's thread per core runs it ~10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class CountingStore:
    """Wraps a real store and counts neighbourhood round-trips."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.neighbourhood_calls = 0

    def neighbourhood(self, *args, **kwargs):
        self.neighbourhood_calls += 1
        return self.inner.neighbourhood(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class CountingSearch:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def search(self, queries, k=None):
        self.calls.append(list(queries))
        return self.inner.search(queries, k)


class CountingGenerator(WrappedGenerator):
    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.generate_calls = 0

    def generate(self, prompts, *, max_tokens, stop=None, **streaming):
        self.generate_calls += 1
        return self.inner.generate(prompts, max_tokens=max_tokens, stop=stop, **streaming)


@pytest.fixture()
def store(tiny_store):
    return CountingStore(tiny_store)


@pytest.fixture()
def settings(tmp_settings):
    return tmp_settings.model_copy(update={"retrieval_mode": "kg+text", "prune_floor": 0.0, "prune_percentile": 0.0,
                                           "llm_max_new_tokens": 4, "text_top_k": 2})


@pytest.fixture()
def text_index(settings, embedder):
    from kgrag.indexes.text_index import TextIndex

    return TextIndex.build(PASSAGES, settings, embedder=embedder, bm25=False, progress=False)


@pytest.fixture()
def pipeline(settings, store, embedder, smollm, text_index):
    return Pipeline(settings, store=store, embedder=embedder, generator=smollm, text_index=text_index)


def test_graph_retriever_returns_kg_documents_with_provenance(pipeline):
    retriever = GraphRetriever.from_pipeline(pipeline)
    # built once over the pipeline's own components, graph only
    assert retriever.retriever.store is pipeline.retriever.store and retriever.retriever.linker is pipeline.retriever.linker
    assert retriever.retriever.settings.retrieval_mode == "kg" and pipeline.settings.retrieval_mode == "kg+text"
    docs = retriever.invoke("Which genes are associated with psoriasis?")
    assert docs and all(isinstance(d, Document) for d in docs)
    assert {d.metadata["kind"] for d in docs} == {"kg"}  # the text index of a kg+text pipeline is left out
    by_key = {d.metadata["edge_key"]: d for d in docs}
    assert set(by_key) == {"DOID:8893|ASSOCIATES_DaG|NCBIGene:3106", "DOID:8893|ASSOCIATES_DaG|NCBIGene:64127",
                           "DOID:9008|ISA_DiD|DOID:8893"}  # psoriasis's whole one-hop neighbourhood
    hla = by_key["DOID:8893|ASSOCIATES_DaG|NCBIGene:3106"]
    assert hla.metadata["sources"] == ["GWAS"] and hla.metadata["properties"] == {"pvalue": 1e-20}
    assert "HLA-B" in hla.page_content and "GWAS" in hla.page_content
    # ranking=strength: relevance tier (2: an asked relation to an asked label) plus the edge's strength in [0, 1]
    assert 2.0 <= hla.metadata["score"] <= 3.0 and hla.metadata["retriever"] == "graph"
    assert hla.metadata["strength"] == pytest.approx(hla.metadata["score"] - 2.0)
    [top] = GraphRetriever.from_pipeline(pipeline, k=1).invoke("Which genes are associated with psoriasis?")
    # the same document; its cosine to float rounding (a matrix product's last bits can follow memory alignment)
    assert (top.id, top.page_content) == (docs[0].id, docs[0].page_content)
    assert top.metadata["score"] == pytest.approx(docs[0].metadata["score"], abs=1e-6)
    assert {k: v for k, v in top.metadata.items() if k != "score"} == \
        {k: v for k, v in docs[0].metadata.items() if k != "score"}


def test_graph_retriever_batch_is_one_round_trip(pipeline, store):
    retriever = GraphRetriever.from_pipeline(pipeline)
    queries = ["Which genes are associated with psoriasis?", "What genes matter in breast cancer?",
               "What is the capital of France?"]
    singles = [retriever.invoke(q) for q in queries]
    store.neighbourhood_calls = 0
    batched = retriever.batch(queries)
    assert store.neighbourhood_calls == 1
    assert [[d.metadata["id"] for d in docs] for docs in batched] == [[d.metadata["id"] for d in docs] for docs in singles]
    assert batched[1][0].metadata["sources"] == ["DisGeNET"] and batched[2] == []


def test_text_retriever_documents_carry_pmids_and_batch_searches_once(pipeline, text_index):
    counting = CountingSearch(text_index)
    retriever = TextRetriever(index=counting, k=2)
    [psoriasis, cancer] = retriever.batch(["HLA-B and psoriasis risk", "metformin and cancer"])
    assert len(counting.calls) == 1 and len(counting.calls[0]) == 2
    assert psoriasis[0].metadata["id"] == "p1" and psoriasis[0].metadata["sources"] == ["PMID:111"]
    assert cancer[0].metadata["sources"] == ["PMID:222"] and cancer[0].metadata["kind"] == "text"
    assert psoriasis[0].metadata["properties"]["rank"] == 1
    from_pipe = TextRetriever.from_pipeline(pipeline)
    assert from_pipe.k == 2 and from_pipe.invoke("myelodysplastic syndromes")[0].metadata["sources"] == ["user"]
    with pytest.raises(Exception):
        TextRetriever(index=object())  # not something with search()


def test_user_chain_retriever_prompt_llm_keeps_sources(pipeline, smollm):
    retriever = GraphRetriever.from_pipeline(pipeline)
    prompt = ChatPromptTemplate.from_messages([("system", "Summarise the evidence in one sentence."),
                                               ("human", "Evidence:\n{context}")])
    llm = RunnableLambda(lambda value: smollm.generate([to_prompt(value)], max_tokens=8)[0].text)

    rendered = (retriever | format_documents | prompt).invoke("Which genes are associated with psoriasis?")
    assert "HLA-B" in rendered.to_string() and "[GWAS]" in rendered.to_string()

    chain = retriever | format_documents | prompt | llm
    text = chain.invoke("Which genes are associated with psoriasis?")
    assert isinstance(text, str) and text.strip()

    # the common RAG shape: keep the documents beside the answer so a user can cite them
    qa = ChatPromptTemplate.from_messages([("system", "Context:\n{context}"), ("human", "{question}")])
    rag = RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(
        answer=RunnableLambda(lambda x: {"context": format_documents(x["docs"]), "question": x["question"]})
        | qa | GeneratorRunnable(generator=smollm, max_tokens=8))
    out = rag.invoke("Which genes are associated with psoriasis?")
    assert out["docs"] and all(d.metadata["sources"] for d in out["docs"])
    assert "GWAS" in {s for d in out["docs"] for s in d.metadata["sources"]}
    assert isinstance(out["answer"], str)


def test_generator_runnable_batches_in_one_call(smollm):
    counting = CountingGenerator(smollm)
    llm = GeneratorRunnable(generator=counting, max_tokens=4)
    prompt = ChatPromptTemplate.from_messages([("human", "Name a gene linked to {disease}.")])
    outs = (prompt | llm).batch([{"disease": "psoriasis"}, {"disease": "breast cancer"}])
    assert len(outs) == 2 and all(isinstance(o, str) for o in outs)
    assert counting.generate_calls == 1
    p = to_prompt(ChatPromptTemplate.from_messages([("system", "S"), ("human", "U")]).invoke({}))
    assert p.system == "S" and p.user == "U"


def test_pipeline_runnable_invoke_batch_stream(pipeline, monkeypatch):
    runnable = PipelineRunnable(pipeline=pipeline)
    mcq = {"text": "Which gene is associated with psoriasis and myelodysplastic syndrome?",
           "options": ["CHEK2", "HLA-B"], "id": "q1"}
    answer = runnable.invoke(mcq)
    assert isinstance(answer, Answer) and answer.question_id == "q1" and answer.choice in mcq["options"]
    assert any(e.option == "HLA-B" and "GWAS" in e.sources for e in answer.evidence)

    calls: list[int] = []
    real = pipeline.answer_batch
    monkeypatch.setattr(pipeline, "answer_batch", lambda qs: calls.append(len(qs)) or real(qs))
    answers = runnable.batch(["What is psoriasis?", {"question": "HLA-B is associated with psoriasis",
                                                   "task": "true_false"}, Question(text="What is MDS?", id="q3")])
    assert calls == [3]
    assert [a.task for a in answers] == ["free", "true_false", "free"] and answers[2].question_id == "q3"
    assert answers[1].choice in ("True", "False")

    calls.clear()
    with pytest.raises(QuestionError):
        runnable.batch(["What is psoriasis?", "   "])
    assert calls == []  # a bad question fails before any work
    statement = {"text": "NOD2 is associated with psoriasis", "task": "true_false"}
    mixed = runnable.batch([statement, "   "], return_exceptions=True)
    assert isinstance(mixed[0], Answer) and isinstance(mixed[1], QuestionError) and calls == [1]

    streamed = list((runnable | (lambda a: a.choice)).stream(statement))
    assert streamed in (["True"], ["False"])


def test_to_question_accepts_text_dicts_and_questions():
    assert to_question("x").text == "x"
    assert to_question({"question": "y", "options": ["a", "b"]}).options == ["a", "b"]
    q = Question(text="z")
    assert to_question(q) is q
    with pytest.raises(Exception, match="must be text"):
        to_question(3)  # type: ignore[arg-type]
