"""LangChain interop: the graph and text retrievers as ``BaseRetriever``s, the pipeline and a generator as ``Runnable``s.

Our internals stay plain Python; these adapters speak langchain-core's protocol (``invoke``,
``batch``, ``stream``) at the edge, so the parts compose with ``|`` in a user's own chain. Each
``batch`` is ONE call of the batched method underneath (one linking pass, one graph round-trip,
one FAISS search, one ``answer_batch``, one ``generate``), not a loop of single calls.

Every retrieved :class:`~langchain_core.documents.Document` carries its provenance in
``metadata``: ``kind`` ("kg" or "text"), ``id`` (the edge key ``source|type|target`` or the
passage id), ``sources`` (databases, or ``PMID:<id>``), ``score`` (the ranking's: relevance tier plus strength under
``ranking=strength``, cosine under ``similarity``; a passage's retrieval score), ``strength`` (an edge's evidence
strength, :mod:`kgrag.graph.strength`), ``properties`` (p-values, scores, rank, ...), ``option`` and ``retriever``.

Example::

    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from kgrag.langchain import GeneratorRunnable, GraphRetriever, format_documents

    retriever = GraphRetriever.from_pipeline(pipeline)
    prompt = ChatPromptTemplate.from_messages([("system", "Context:\\n{context}"), ("human", "{question}")])
    chain = {"context": retriever | format_documents, "question": RunnablePassthrough()} | prompt \\
        | GeneratorRunnable(generator=pipeline.generator)
    chain.invoke("Which genes are associated with psoriasis?")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.prompt_values import PromptValue
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, field_validator

from kgrag.errors import KgragError
from kgrag.generators.base import Generator, Prompt
from kgrag.answer.pipeline import Pipeline, validate_question
from kgrag.answer.retriever import Linked, Retriever
from kgrag.indexes.text_filter import TextFilter
from kgrag.types import Answer, Evidence, Question

QuestionInput = str | dict | Question


@runtime_checkable
class PassageSearcher(Protocol):
    """Anything with a batched ``search(queries, k) -> list[list[PassageHit]]`` (e.g. :class:`kgrag.indexes.text_index.TextIndex`)."""

    def search(self, queries: Sequence[str], k: int | None = None) -> list[list[Any]]: ...


def evidence_to_document(evidence: Evidence, retriever: str) -> Document:
    """A Document whose text is the evidence sentence or passage and whose metadata is its provenance.

    Example::

        doc = evidence_to_document(Evidence(kind="kg", text="...", score=0.8, id="a|T|b", sources=["GWAS"]), "graph")
        doc.metadata["sources"]   # ["GWAS"]
    """
    metadata: dict[str, Any] = {
        "kind": evidence.kind,
        "id": evidence.id,
        "sources": list(evidence.sources),
        "score": float(evidence.score),
        "strength": evidence.strength,
        "properties": dict(evidence.properties),
        "option": evidence.option,
        "retriever": retriever,
    }
    if evidence.kind == "kg":
        metadata["edge_key"] = evidence.id
    return Document(page_content=evidence.text, metadata=metadata, id=evidence.id)


def format_documents(docs: Sequence[Document]) -> str:
    """Documents as prompt context, one per line, each followed by its sources in brackets.

    Example::

        format_documents([Document(page_content="HLA-B ...", metadata={"sources": ["GWAS"]})])
        # 'HLA-B ... [GWAS]'
    """
    lines = []
    for doc in docs:
        sources = doc.metadata.get("sources") or []
        lines.append(f"{doc.page_content} [{', '.join(sources)}]" if sources else doc.page_content)
    return "\n".join(lines)


class GraphRetriever(BaseRetriever):
    """Knowledge-graph evidence for a query: link its entities, fetch their neighbourhood, prune.

    Built once over a :class:`~kgrag.answer.retriever.Retriever` restricted to the graph (the pipeline's linker,
    graph store, embedder and edge vectors, with its pruning settings: percentile, floor, context
    volume); retrieval is always on (no gate) and text is left out. ``k`` caps the number of documents
    per query (default: whatever pruning keeps).

    Example::

        retriever = GraphRetriever.from_pipeline(pipeline)      # or GraphRetriever(retriever=pipeline.retriever)
        docs = retriever.invoke("Which genes are associated with psoriasis?")
        docs[0].page_content, docs[0].metadata["sources"], docs[0].metadata["edge_key"]
        retriever.batch(["question one", "question two"])   # one linking pass, one graph round-trip
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int | None = Field(default=None, gt=0)

    @field_validator("retriever")
    @classmethod
    def _graph_only(cls, retriever: Retriever) -> Retriever:
        if retriever.store is None or retriever.linker is None:
            raise KgragError("GraphRetriever needs a retriever with a graph store (retrieval_mode kg or kg+text)")
        return retriever if retriever.settings.retrieval_mode == "kg" else retriever.graph_only()

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, k: int | None = None) -> "GraphRetriever":
        """Over the pipeline's retriever (the same linker, store, embedder and edge vectors), graph only."""
        return cls(retriever=pipeline.retriever, k=k)

    def retrieve_many(self, queries: Sequence[str]) -> list[list[Document]]:
        """Documents for every query, in one batched pass through linking, graph and pruning."""
        queries = list(queries)
        if not queries:
            return []
        linked = [Linked(entities=entities) for entities in self.retriever.link_texts(queries)]
        found = self.retriever.retrieve(queries, linked)
        return [[evidence_to_document(ev, "graph") for ev in r.evidence[: self.k]] for r in found]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self.retrieve_many([query])[0]

    def batch(self, inputs: list[str], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[list[Document]]:
        return self._batch_with_config(self.retrieve_many, inputs, config, return_exceptions=return_exceptions,
                                       run_type="retriever")


class TextRetriever(BaseRetriever):
    """Passages from the text index (FAISS, with BM25 fused by reciprocal rank when built with it).

    Each Document's metadata holds the passage id, ``sources`` (``PMID:<id>``), ``score``, and in
    ``properties`` the rank, retriever, PMID, title and year. ``text_filter`` (a
    :class:`kgrag.indexes.text_filter.TextFilter`: year range, MeSH terms) restricts the passages;
    without it the index's settings decide (``KGRAG_TEXT_YEAR_MIN``, ``_YEAR_MAX``, ``KGRAG_TEXT_MESH``).

    Example::

        retriever = TextRetriever(index=TextIndex.load(settings, embedder=embedder), k=5)
        docs = retriever.invoke("Does metformin reduce cancer risk?")
        docs[0].metadata["sources"]   # ["PMID:21645374"]
        TextRetriever(index=index, k=5, text_filter=TextFilter(year_min=2015, mesh=["Psoriasis"]))
    """

    index: PassageSearcher
    k: int = Field(default=5, gt=0)
    text_filter: TextFilter | None = None

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, k: int | None = None) -> "TextRetriever":
        """The pipeline's text index, ``k`` defaulting to ``settings.text_top_k``."""
        if pipeline.retriever.text_index is None:
            raise KgragError("TextRetriever needs a pipeline with a text index (retrieval_mode text or kg+text)")
        return cls(index=pipeline.retriever.text_index, k=k or pipeline.settings.text_top_k)

    def retrieve_many(self, queries: Sequence[str]) -> list[list[Document]]:
        """Documents for every query from ONE ``search`` call."""
        queries = list(queries)
        if not queries:
            return []
        hits = self.index.search(queries, self.k) if self.text_filter is None else \
            self.index.search(queries, self.k, text_filter=self.text_filter)  # type: ignore[call-arg]
        return [[evidence_to_document(hit.to_evidence(), "text") for hit in row] for row in hits]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self.retrieve_many([query])[0]

    def batch(self, inputs: list[str], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[list[Document]]:
        return self._batch_with_config(self.retrieve_many, inputs, config, return_exceptions=return_exceptions,
                                       run_type="retriever")


def to_question(value: QuestionInput) -> Question:
    """A Question from text, a Question, or a dict (Question fields, or ``question`` for the text).

    Example::

        to_question({"question": "Is HLA-B linked to psoriasis?", "task": "yes_no_maybe"}).text
    """
    if isinstance(value, Question):
        return value
    if isinstance(value, str):
        return Question(text=value)
    if isinstance(value, dict):
        data = dict(value)
        if "text" not in data and "question" in data:
            data["text"] = data.pop("question")
        return Question.model_validate(data)
    raise KgragError(f"a question must be text, a dict or a Question, got {type(value).__name__}")


class PipelineRunnable(RunnableSerializable[QuestionInput, Answer]):
    """The whole pipeline as a Runnable: ``invoke`` -> Answer, ``batch`` -> ONE ``answer_batch`` call.

    Input is a question as text, a dict (``{"text": ..., "options": [...]}`` or ``{"question": ...}``)
    or a :class:`~kgrag.types.Question`. ``stream`` yields the finished Answer (generation is not
    streamed token by token).

    Example::

        runnable = PipelineRunnable(pipeline=pipeline)
        runnable.invoke("Which genes are associated with psoriasis?").evidence
        runnable.batch([{"text": "psoriasis is a disease", "task": "true_false"}, "What is MDS?"])
        (runnable | (lambda a: a.choice)).invoke({"text": "...", "options": ["HLA-B", "NOD2"]})
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Pipeline

    def _prepare(self, value: QuestionInput) -> Question:
        return validate_question(to_question(value), self.pipeline.settings)

    def _answer_one(self, value: QuestionInput) -> Answer:
        return self.pipeline.answer_batch([self._prepare(value)])[0]

    def _answer_many(self, values: list[QuestionInput]) -> list[Answer | Exception]:
        prepared: list[Question | Exception] = []
        for value in values:
            try:
                prepared.append(self._prepare(value))
            except (KgragError, ValueError) as exc:
                prepared.append(exc)
        valid = [q for q in prepared if isinstance(q, Question)]
        answers = iter(self.pipeline.answer_batch(valid) if valid else [])
        return [next(answers) if isinstance(q, Question) else q for q in prepared]

    def invoke(self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        return self._call_with_config(self._answer_one, input, config)

    def batch(self, inputs: list[QuestionInput], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Answer]:
        if not return_exceptions:
            for value in inputs:  # a bad question fails the batch before any work is done
                self._prepare(value)
        return self._batch_with_config(self._answer_many, inputs, config, return_exceptions=return_exceptions)

    def stream(self, input: QuestionInput, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Answer]:
        yield self.invoke(input, config, **kwargs)


def to_prompt(value: PromptValue | str | Prompt) -> Prompt:
    """Our Prompt from a langchain prompt value (system messages -> system, the rest -> user) or text."""
    if isinstance(value, Prompt):
        return value
    if isinstance(value, str):
        return Prompt(user=value)
    system, user = [], []
    for message in value.to_messages():
        content = message.content
        text = content if isinstance(content, str) else "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
        (system if message.type == "system" else user).append(text)
    return Prompt(system="\n\n".join(system) or None, user="\n\n".join(user))


class GeneratorRunnable(RunnableSerializable[PromptValue | str | Prompt, str]):
    """A kgrag Generator (transformers, OpenAI-compatible, vLLM) as the LLM step of a chain; returns text.

    ``batch`` sends every prompt in ONE ``generate`` call.

    Example::

        llm = GeneratorRunnable(generator=TransformersGenerator.load("smollm2"), max_tokens=32)
        (ChatPromptTemplate.from_messages([("human", "{q}")]) | llm).invoke({"q": "What is psoriasis?"})
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Generator
    max_tokens: int = Field(default=128, gt=0)
    stop: list[str] | None = None

    def _generate(self, values: list[PromptValue | str | Prompt]) -> list[str]:
        gens = self.generator.generate([to_prompt(v) for v in values], max_tokens=self.max_tokens, stop=self.stop)
        return [g.text for g in gens]

    def invoke(self, input: PromptValue | str | Prompt, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return self._call_with_config(lambda value: self._generate([value])[0], input, config, run_type="llm")

    def batch(self, inputs: list[PromptValue | str | Prompt], config: RunnableConfig | list[RunnableConfig] | None = None,
              *, return_exceptions: bool = False, **kwargs: Any) -> list[str]:
        return self._batch_with_config(self._generate, inputs, config, return_exceptions=return_exceptions,
                                       run_type="llm")


__all__ = ["GeneratorRunnable", "GraphRetriever", "PassageSearcher", "PipelineRunnable", "TextRetriever",
           "evidence_to_document", "format_documents", "to_prompt", "to_question"]
