"""The Retriever: link a batch of questions, fetch graph and text candidates, prune them against each query.

One object serves the pipeline, the QuCo loop (retrieval mid-generation, for a flagged sentence's
entity pair) and the LangChain retrievers. Every call takes a whole batch and returns one result per
query; nothing it is given is changed. Each stage runs once per batch: one linking pass and one name
lookup for the options (:meth:`Retriever.link`); one graph round-trip plus one for option edges, one
text search call, one vector lookup for every distinct candidate sentence (:meth:`Retriever.retrieve`).

Example::

    retriever = Retriever(settings, store=store, embedder=embedder, text_index=index)
    linked = retriever.link([Question(text="Which genes are associated with psoriasis?")])
    [found] = retriever.retrieve(["Which genes are associated with psoriasis?"], linked)
    found.evidence[0].text, found.evidence[0].sources, found.dropped
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from kgrag.retrieval.graph_context import Candidate, gather_kg
from kgrag.indexes.edge_vectors import EdgeVectorStore
from kgrag.encoders.embeddings import Embedder
from kgrag.graph.base import GraphStore
from kgrag.retrieval.linking import EntityLinker
from kgrag.retrieval.pruning import prune_by_strength, prune_detailed
from kgrag.retrieval.relevance import Asked, asked
from kgrag.settings import Settings
from kgrag.text import normalise
from kgrag.timing import StageTimer
from kgrag.types import Evidence, LinkedEntity, Question

if TYPE_CHECKING:  # pragma: no cover
    from kgrag.indexes.text_index import TextIndex


class Linked(BaseModel):
    """One question's links into the graph: the entities named in its text, and its options' nodes (MCQ)."""

    entities: list[LinkedEntity] = Field(default_factory=list)
    option_nodes: dict[str, list[str]] = Field(default_factory=dict, description="Option string -> node ids")


class Retrieved(BaseModel):
    """One query's pruned context."""

    model_config = ConfigDict(arbitrary_types_allowed=True)  # candidates are graph_context.Candidate objects

    evidence: list[Evidence] = Field(default_factory=list)
    dropped: int = Field(default=0, description="Candidates not kept: pruned, over the budget, or near-duplicates")
    trace: str | None = Field(default=None, description="What pruning and the budget kept and cut (None: no candidates)")
    candidates: list[Candidate] = Field(default_factory=list, exclude=True, repr=False,
                                        description="Every candidate before pruning, for the answer's items")
    asked: Asked | None = Field(default=None, description="What the question asks for (ranking=strength)")


class Retriever:
    """Linking, graph and text candidates, and pruning, over the components it is given.

    ``store``, ``text_index``, ``linker`` and ``edge_vectors`` are optional: without a store there is
    no graph context (and no linking unless a linker is given); without a text index no passages;
    without edge vectors every candidate sentence is embedded (cached by content hash).
    ``settings.retrieval_mode`` says which of graph and text are asked.
    """

    def __init__(self, settings: Settings, *, store: GraphStore | None, embedder: Embedder,
                 text_index: TextIndex | None = None, linker: EntityLinker | None = None,
                 edge_vectors: EdgeVectorStore | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.text_index = text_index
        self.edge_vectors = edge_vectors  # precomputed sentence vectors; None: embed on demand
        self.linker = linker or (EntityLinker.from_store(store, embedder, settings) if store is not None else None)

    def graph_only(self) -> "Retriever":
        """The same components with retrieval restricted to the graph (``retrieval_mode=kg``), for GraphRetriever."""
        settings = self.settings.model_copy(update={"retrieval_mode": "kg"})
        return Retriever(settings, store=self.store, embedder=self.embedder, linker=self.linker,
                         edge_vectors=self.edge_vectors)

    # -- linking -------------------------------------------------------------------------------
    def link(self, qs: Sequence[Question]) -> list[Linked]:
        """Each question's linked entities (dictionary, then embeddings) and, for MCQs, its options' nodes."""
        entities = self.link_texts([q.text for q in qs])
        options = self.link_options(qs)
        return [Linked(entities=ents, option_nodes=opts) for ents, opts in zip(entities, options)]

    def link_texts(self, texts: Sequence[str], *, fallback: bool = True) -> list[list[LinkedEntity]]:
        """Linked entities per text; ``fallback=False`` links by dictionary only (for generated sentences)."""
        if self.linker is None:
            return [[] for _ in texts]
        return self.linker.link(list(texts), fallback=fallback)

    def link_options(self, qs: Sequence[Question]) -> list[dict[str, list[str]]]:
        """Option string -> node ids, for MCQ options; ONE lookup for the batch."""
        if self.store is None:
            return [{} for _ in qs]
        wanted = {normalise(o) for q in qs if q.task == "mcq" for o in q.options or []}
        found = self.store.find_by_name(sorted(wanted)) if wanted else {}
        return [{o: [n.id for n in found.get(normalise(o), [])] for o in (q.options or [])} if q.task == "mcq" else {}
                for q in qs]

    # -- retrieval -----------------------------------------------------------------------------
    def retrieve(self, queries: Sequence[str], linked: Sequence[Linked], active: Sequence[bool] | None = None,
                 timer: StageTimer | None = None, query_vectors: Future[np.ndarray] | None = None) -> list[Retrieved]:
        """Graph and text candidates for the active queries (all by default), pruned against each query and
        fitted to the context budget. An inactive query gets an empty result.

        ``query_vectors``: the queries' embeddings already under way on another thread (the pipeline starts them
        before linking, so they overlap linking and the graph fetch); None embeds them here, before pruning."""
        active = [True] * len(queries) if active is None else list(active)
        timer = timer or StageTimer()
        with timer.stage("graph_fetch"):
            kg = self._kg_candidates(linked, active)
        with timer.stage("text_search"):
            text = self._text_candidates(queries, active)
        with timer.stage("pruning"):
            return self._prune(queries, linked, [k + t for k, t in zip(kg, text)], query_vectors)

    def _kg_candidates(self, linked: Sequence[Linked], active: Sequence[bool]) -> list[list[Candidate]]:
        out: list[list[Candidate]] = [[] for _ in linked]
        if self.store is None or not self.settings.uses_graph:
            return out
        asked = [i for i, a in enumerate(active) if a]
        got = gather_kg(self.store, [linked[i].entities for i in asked], [linked[i].option_nodes for i in asked],
                        self.settings)
        for i, cands in zip(asked, got):
            out[i] = cands
        return out

    def _text_candidates(self, queries: Sequence[str], active: Sequence[bool]) -> list[list[Candidate]]:
        out: list[list[Candidate]] = [[] for _ in queries]
        if self.text_index is None or not self.settings.uses_text:
            return out
        asked = [i for i, a in enumerate(active) if a]
        if not asked:
            return out
        hits = self.text_index.search([queries[i] for i in asked], self.settings.text_top_k)
        for i, row in zip(asked, hits):
            out[i] = [Candidate(group="text", evidence=hit.to_evidence()) for hit in row]
        return out

    def _prune(self, queries: Sequence[str], linked: Sequence[Linked], candidates: list[list[Candidate]],
               query_vectors: Future[np.ndarray] | None = None) -> list[Retrieved]:
        if self.settings.ranking == "strength":
            return self._prune_by_strength(queries, linked, candidates)
        unique = list(dict.fromkeys(c.text for cands in candidates for c in cands))
        vectors = self.candidate_vectors(unique)
        row = {t: i for i, t in enumerate(unique)}
        qvecs = query_vectors.result() if query_vectors is not None else self.query_vectors(queries)
        out = []
        for query, link, qvec, cands in zip(queries, linked, qvecs, candidates):
            mat = vectors[[row[c.text] for c in cands]] if cands else np.zeros((0, qvec.shape[0]))
            result = prune_detailed(qvec, cands, mat, self.settings)
            trace = result.trace(self.settings.context_budget_tokens) if cands else None
            out.append(Retrieved(evidence=result.evidence, dropped=result.dropped, trace=trace, candidates=cands,
                                 asked=asked(query, link.entities)))
        return out

    def _prune_by_strength(self, queries: Sequence[str], linked: Sequence[Linked],
                           candidates: list[list[Candidate]]) -> list[Retrieved]:
        """``ranking=strength``: relevance tier x strength per question; only passages are embedded (for
        near-duplicates, from the embedding cache the text index's build filled)."""
        passages = list(dict.fromkeys(c.text for cands in candidates for c in cands if c.group == "text"))
        passage_vectors = self.candidate_vectors(passages)
        row = {t: i for i, t in enumerate(passages)}
        out = []
        for query, link, cands in zip(queries, linked, candidates):
            question = asked(query, link.entities)
            mat = np.zeros((len(cands), passage_vectors.shape[1]), dtype=np.float32)
            for i, cand in enumerate(cands):
                if cand.group == "text":
                    mat[i] = passage_vectors[row[cand.text]]
            result = prune_by_strength(cands, question, mat, self.settings)
            trace = f"{result.trace(self.settings.context_budget_tokens)}; {question.describe()}" if cands else None
            out.append(Retrieved(evidence=result.evidence, dropped=result.dropped, trace=trace,
                                 candidates=cands, asked=question))
        return out

    def reads_query_vectors(self) -> bool:
        """Whether retrieval embeds the queries: similarity pruning does, and so does a text search."""
        uses_text_search = self.text_index is not None and self.settings.uses_text
        return self.settings.retrieval_mode != "none" and (self.settings.ranking == "similarity" or uses_text_search)

    def query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """The queries' unit vectors (kept in memory only: a question is not a candidate sentence)."""
        return self.embedder.encode(list(queries), persist=False)

    def candidate_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of distinct candidate texts: the edge-vector store's, the embedder's for the rest."""
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        if self.edge_vectors is None:
            return self.embedder.encode(list(texts))
        found, vectors = self.edge_vectors.lookup(texts)
        if not found.all():
            missing = np.flatnonzero(~found)
            vectors[missing] = self.embedder.encode([texts[i] for i in missing])
        return vectors

    def describe(self) -> dict[str, str]:
        """The backends this retriever uses, for the Answer's trace: ``graph``, ``text_index``, ``edge_vectors``."""
        graph = self.store.backend if self.store is not None else "none"
        if self.edge_vectors is not None:
            vectors = f"precomputed ({self.edge_vectors.describe()})"
        else:
            vectors = "off" if self.settings.edge_vectors == "off" else "none (embedded on demand)"
        return {"graph": graph, "text_index": "loaded" if self.text_index is not None else "none", "edge_vectors": vectors}
