"""The pipeline: link -> gate (stage 1) -> retrieve and prune -> select or write -> claim verdicts -> Answer.

Three parts do the work, each taking a batch and returning one result per question:

* :class:`~kgrag.answer.retriever.Retriever`: linking, graph and text candidates, pruning;
* :class:`~kgrag.answer.selector.Selector`: for questions with options, evidence selection, then the LLM's option
  scores where evidence leaves the choice open;
* :class:`~kgrag.answer.items.ItemRanker`: for a free question asking for entities, its ranked items;
* a writer for free text: :class:`~kgrag.answer.evidence_writer.EvidenceWriter` (``writer=evidence``, no LLM), or with
  ``writer=llm`` :class:`~kgrag.answer.writer.OneShotWriter`, or :class:`~kgrag.answer.gated_writer.QucoWriter` (gate
  stage 2 after each sentence) when ``gate_mode=gated``; an LLM's sentences are then held against the evidence
  (:mod:`kgrag.answer.sentence_support`).

``Pipeline.answer_batch`` is the real path; ``answer`` is a batch of one. Each stage runs once per
batch: one linking pass, one graph round-trip (plus one for option edges), one text search call,
one vector lookup for all candidate sentences, one LLM call per generation step.

Example::

    from kgrag import answer
    result = answer("Which genes are associated with psoriasis?")
    result.text, [e.sources for e in result.evidence]
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from kgrag.indexes.edge_vectors import EdgeVectorStore, open_edge_vectors
from kgrag.encoders.embeddings import Embedder, embedder_from_settings
from kgrag.errors import KgragError, QuestionError
from kgrag.evidence.checker import EvidenceChecker
from kgrag.evidence.claims import split_sentences
from kgrag.generators import Generator
from kgrag.generators.base import TextCallback
from kgrag.generators.lazy import LazyGenerator
from kgrag.graph.base import GraphStore
from kgrag.retrieval.linking import EntityLinker
from kgrag.graph.ontology import Ontology
from kgrag.answer.evidence_writer import EvidenceWriter
from kgrag.answer.items import ItemRanker
from kgrag.answer.prompts import render_context
from kgrag.answer.sentence_support import complete_sentences, mark_unsupported
from kgrag.answer.retriever import Linked, Retrieved, Retriever
from kgrag.answer.selector import Selector
from kgrag.settings import Settings, load_settings
from kgrag.timing import StageTimer
from kgrag.types import TASK_OPTIONS, Answer, AnswerItem, ClaimVerdict, Evidence, GateDecision, Question, Reply, Usage
from kgrag.answer.writer import OneShotWriter, Writer
from quco.gate import Gate
from kgrag.answer.gated_writer import QucoWriter
from quco.stats import CorpusStats, open_optional_corpus_stats

if TYPE_CHECKING:  # pragma: no cover
    from kgrag.indexes.text_index import TextIndex


def validate_question(q: Question | str, settings: Settings, *, options: list[str] | None = None,
                      task: str | None = None) -> Question:
    """Turn user input into a Question; empty, over-long or non-text input, or too many or too long options
    (KGRAG_MAX_OPTIONS, KGRAG_MAX_OPTION_CHARS), raises QuestionError."""
    if isinstance(q, Question):
        question = q
    elif isinstance(q, str):
        question = Question(text=q, options=options, **({"task": task} if task else {}))
    else:
        raise QuestionError(f"a question must be text, got {type(q).__name__}")
    text = question.text.strip() if isinstance(question.text, str) else ""
    if not text:
        raise QuestionError("the question is empty")
    if len(text) > settings.max_question_chars:
        raise QuestionError(f"the question has {len(text)} characters; the limit is {settings.max_question_chars} "
                            "(KGRAG_MAX_QUESTION_CHARS)")
    update: dict[str, Any] = {"text": text}
    if question.options is not None:
        opts = [o.strip() for o in question.options if isinstance(o, str) and o.strip()]
        if len(opts) < 2:
            raise QuestionError(f"a question with options needs at least two non-empty options, got {question.options!r}")
        if len(opts) > settings.max_options:
            raise QuestionError(f"the question has {len(opts)} options; the limit is {settings.max_options} "
                                "(KGRAG_MAX_OPTIONS)")
        longest = max(range(len(opts)), key=lambda i: len(opts[i]))
        if len(opts[longest]) > settings.max_option_chars:
            raise QuestionError(f"option {longest + 1} ({opts[longest][:40]!r}...) has {len(opts[longest])} characters; "
                                f"the limit is {settings.max_option_chars} (KGRAG_MAX_OPTION_CHARS)")
        update["options"] = opts
        if question.task == "free":
            update["task"] = "mcq"
    elif question.task in TASK_OPTIONS:
        update["options"] = list(TASK_OPTIONS[question.task])
    elif question.task == "mcq":
        raise QuestionError("task 'mcq' needs options")
    return question.model_copy(update=update)


class Pipeline:
    """Answers questions with graph and text evidence. Build with :meth:`from_settings`.

    Components are passed in, so tests and users can swap any of them::

        pipe = Pipeline(settings, store=store, embedder=embedder, generator=generator)
        pipe.answer_batch([Question(text="...", options=["A", "B"])])
        pipe.retriever.retrieve(["..."], pipe.retriever.link([Question(text="...")]))   # retrieval alone
    """

    def __init__(self, settings: Settings, *, store: GraphStore | None, embedder: Embedder, generator: Generator,
                 text_index: TextIndex | None = None, gate: Gate | None = None, stats: CorpusStats | None = None,
                 linker: EntityLinker | None = None, edge_vectors: EdgeVectorStore | None = None) -> None:
        if settings.gate_mode == "gated" and gate is None:
            raise KgragError("gate_mode 'gated' needs a gate (quco.gate.Gate); build the pipeline with from_settings")
        self.settings = settings
        self.store = store
        self.generator = generator
        self.gate = gate
        self.stats = stats if stats is not None else (gate.stats if gate is not None else None)
        self.retriever = Retriever(settings, store=store, embedder=embedder, text_index=text_index, linker=linker,
                                   edge_vectors=edge_vectors)
        self.checker = EvidenceChecker.from_settings(store, self.stats, settings, ontology=self._shared_ontology())
        self.selector = Selector(settings, self.checker, generator)
        self.items = ItemRanker(settings, store, self.retriever.linker)
        self.writer: Writer
        if settings.writer == "evidence":
            self.writer = EvidenceWriter(settings)
        elif gate is not None and settings.gate_mode == "gated":
            self.writer = QucoWriter(settings, self.retriever, generator, gate)
        else:
            self.writer = OneShotWriter(settings, generator)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Pipeline":
        settings = settings or load_settings()
        store = None
        if settings.uses_graph or settings.selection_mode != "llm":
            store = _open_built_graph(settings)
        embedder = embedder_from_settings(settings)
        edge_vectors = open_edge_vectors(settings, store, embedder)
        text_index = None
        if settings.uses_text:
            from kgrag.indexes.text_index import TextIndex  # faiss: imported only when a text index is used

            text_index = TextIndex.load(settings, embedder=embedder)
        gate, stats = None, None
        if settings.gate_mode == "gated":
            gate = Gate.from_settings(settings)
        else:
            stats = open_optional_corpus_stats(settings)  # for evidence checks and claim verdicts, when configured
        return cls(settings, store=store, embedder=embedder, generator=LazyGenerator(settings),
                   text_index=text_index, gate=gate, stats=stats, edge_vectors=edge_vectors)

    def _shared_ontology(self) -> Ontology | None:
        """The linker's is-a hierarchy, for the checker too when both walk the same store (read into memory once)."""
        linker = self.retriever.linker
        ontology = linker.ontology if linker is not None else None
        if ontology is None or ontology.store is not self.store or ontology.depth != self.settings.evidence_isa_depth:
            return None
        return ontology

    # -- public API ----------------------------------------------------------------------------
    def answer(self, question: Question | str, *, options: list[str] | None = None, task: str | None = None,
               on_text: TextCallback | None = None) -> Answer:
        """One question; ``on_text(0, text)`` gets a free answer's text as it is written (token by token from a
        streaming LLM), before it is checked against the evidence."""
        return self.answer_batch([validate_question(question, self.settings, options=options, task=task)],
                                 on_text=on_text)[0]

    def answer_batch(self, questions: Sequence[Question | str], *, on_text: TextCallback | None = None) -> list[Answer]:
        """Answers in the questions' order: link, gate, retrieve, select or write, check claims. ``on_text(i, text)``
        gets question i's free text as it is written."""
        qs = [validate_question(q, self.settings) for q in questions]
        if not qs:
            return []
        with collector_paused(), self._graph_remembering():
            return self._answer_batch(qs, on_text)

    def _graph_remembering(self) -> AbstractContextManager[None]:
        """The store's ``remembering`` block for one batch: the neighbourhoods the graph context fetched also answer
        the option edges and the evidence checker's edges (kgrag.graph.base); without a store, an empty block."""
        return self.store.remembering() if self.store is not None else nullcontext()

    def _answer_batch(self, qs: list[Question], on_text: TextCallback | None = None) -> list[Answer]:
        timer = StageTimer()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgrag-query-vectors") as worker:
            # the questions' embeddings (an MCQ batch's largest single cost) run beside linking and the graph fetch
            query_vectors = self._start_query_vectors(worker, [q.text for q in qs])
            with timer.stage("linking"):
                linked = self.retriever.link(qs)
            with timer.stage("gate"):
                stage1 = self._stage1(linked)
            active = [d.retrieve if d is not None else self._retrieves_without_gate() for d in stage1]
            retrieved = self.retriever.retrieve([q.text for q in qs], linked, active, timer, query_vectors)
        with timer.stage("items"):
            items = self.items.rank(qs, linked, retrieved)
        with timer.stage("generation"):
            replies = self._reply(qs, linked, [r.evidence for r in retrieved], items, on_text)
        with timer.stage("claims"):
            claims = self._claims(qs, linked, replies)
        replies, unsupported = self._hold_to_evidence(qs, replies, claims)
        context_tokens = self.generator.count_tokens([render_context(r.evidence, q.context) for q, r in zip(qs, replies)])
        timings = timer.per_question(len(qs))
        return [self._answer(qs[i], linked[i], stage1[i], active[i], retrieved[i], replies[i], claims[i], context_tokens[i],
                             timings, items[i], unsupported[i]) for i in range(len(qs))]

    # -- stages --------------------------------------------------------------------------------
    def _start_query_vectors(self, worker: ThreadPoolExecutor, texts: list[str]) -> Future[Any] | None:
        """The questions' embeddings started on ``worker``, when something reads them (similarity pruning, or the text
        search, whose own call then finds them in the embedder's memory) and the embedder allows calls from another
        thread (``thread_safe``); else None (the retriever embeds them where needed)."""
        if not self.retriever.reads_query_vectors() or not self.retriever.embedder.thread_safe:
            return None
        return worker.submit(self.retriever.query_vectors, texts)

    def _retrieves_without_gate(self) -> bool:
        return self.settings.retrieval_mode != "none" and self.settings.gate_mode == "always"

    def _stage1(self, linked: Sequence[Linked]) -> list[GateDecision | None]:
        """Gate stage 1 per question: the gate's decision with ``gate_mode=gated``, else None (the settings decide)."""
        if self.settings.retrieval_mode == "none" or self.gate is None or self.settings.gate_mode != "gated":
            return [None] * len(linked)
        return self.gate.check_questions([[e.name for e in x.entities] for x in linked])

    def _reply(self, qs: Sequence[Question], linked: Sequence[Linked], evidence: Sequence[list[Evidence]],
               items: Sequence[list[AnswerItem]], on_text: TextCallback | None = None) -> list[Reply]:
        """The selector's reply for each question with options, the writer's for each free-text one, in order; an
        LLM's answer cut back to its last whole sentence."""
        with_options = [i for i, q in enumerate(qs) if q.options]
        free = [i for i, q in enumerate(qs) if not q.options]
        replies: dict[int, Reply] = {}
        if with_options:
            replies.update(zip(with_options, self.selector.select(*_pick(with_options, qs, linked, evidence))))
        if free:
            to_batch = (lambda j, text: on_text(free[j], text)) if on_text is not None else None  # writer's j -> batch's i
            written = self.writer.write(*_pick(free, qs, linked, evidence, items), on_text=to_batch)
            if not isinstance(self.writer, EvidenceWriter):
                written = [r.model_copy(update={"text": complete_sentences(r.text)}) for r in written]
            replies.update(zip(free, written))
        return [replies[i] for i in range(len(qs))]

    def _claims(self, qs: Sequence[Question], linked: Sequence[Linked], replies: Sequence[Reply]) -> list[list[ClaimVerdict]]:
        """Claim verdicts for free-text answers: the question's and each answer sentence's entity pairs, checked
        against the graph and the corpus. The question keeps the entities it was linked to; answer sentences
        are linked by dictionary only (one pass for the batch)."""
        free = [i for i, q in enumerate(qs) if not q.options and replies[i].text]
        out: list[list[ClaimVerdict]] = [[] for _ in qs]
        if not free or self.retriever.linker is None:
            return out
        answer_sentences = [split_sentences(replies[i].text) for i in free]
        linked_flat = self.retriever.link_texts([s for sents in answer_sentences for s in sents], fallback=False)
        sentences, links, cursor = [], [], 0
        for i, sents in zip(free, answer_sentences):
            sentences.append([qs[i].text] + sents)
            links.append([list(linked[i].entities)] + linked_flat[cursor:cursor + len(sents)])
            cursor += len(sents)
        for i, verdicts in zip(free, self.checker.claims([replies[i].text for i in free], links, sentences)):
            out[i] = verdicts
        return out

    def _hold_to_evidence(self, qs: Sequence[Question], replies: Sequence[Reply], claims: Sequence[list[ClaimVerdict]]
                          ) -> tuple[list[Reply], list[list[str]]]:
        """The replies with an LLM writer's sentences that no evidence supports marked (or dropped under
        ``writer_strict``), and those sentences per question. The evidence writer's replies need none."""
        held = list(replies)
        unsupported: list[list[str]] = [[] for _ in qs]
        if isinstance(self.writer, EvidenceWriter):
            return held, unsupported
        for i, (q, reply) in enumerate(zip(qs, replies)):
            if q.options or not reply.text:
                continue
            text, unsupported[i] = mark_unsupported(reply.text, claims[i], reply.evidence, q,
                                                    strict=self.settings.writer_strict)
            held[i] = reply.model_copy(update={"text": text})
        return held, unsupported

    def _answer(self, q: Question, linked: Linked, stage1: GateDecision | None, retrieved: bool, found: Retrieved,
                reply: Reply, claims: list[ClaimVerdict], context_tokens: int, timings: dict[str, float],
                items: list[AnswerItem], unsupported: list[str]) -> Answer:
        """One Answer from what each stage gave for the question, with the backends and stages in its trace."""
        trace = self._backends() + ([found.trace] if found.trace else [])
        if retrieved and not any(e.kind == "kg" for e in found.evidence) and self.settings.uses_graph:
            trace.append("no graph context found" + ("" if linked.entities else " (no entity linked)"))
        usage = Usage(retrievals=int(retrieved), context_tokens=context_tokens) + reply.usage
        return Answer(question=q.text, question_id=q.id, task=q.task, text=reply.text, choice=reply.choice,
                      option_scores=reply.option_scores, selection_mode=self.settings.selection_mode,
                      writer=None if q.options else self.writer.name, items=items, unsupported=unsupported,
                      abstained=reply.abstained, claims=claims, support=reply.support,
                      support_confidence=reply.support_confidence, decision=reply.decision, entities=linked.entities, evidence=reply.evidence,
                      dropped_evidence=found.dropped, gate=([stage1] if stage1 else []) + reply.gate, usage=usage,
                      timings_ms=dict(timings), trace=trace + reply.trace, settings=self.settings.public_dict())

    def _backends(self) -> list[str]:
        s, backends = self.settings, self.retriever.describe()
        stats = self.stats.description if self.stats is not None else "none"
        return [f"generator={self.generator.name}", f"graph={backends['graph']}", f"text_index={backends['text_index']}",
                f"corpus_stats={stats}", f"edge_vectors={backends['edge_vectors']}", f"retrieval_mode={s.retrieval_mode}",
                f"gate_mode={s.gate_mode}", f"selection_mode={s.selection_mode}", f"option_scoring={s.option_scoring}"]

    def close(self) -> None:
        """Close the graph store and the generator (vLLM's engine, an HTTP client)."""
        if self.store is not None:
            self.store.close()
        self.generator.close()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one batch, then as it was.

    A batch makes ~40,000 short-lived candidates per 64 MCQs; each full collection they trigger walks every object
    the process holds (~900,000 after loading: the linker's dictionary, the models), 35% of a cold MCQ batch under
    cProfile. Reference counting still frees everything as usual; cycles made in the batch wait for the next collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _pick(idx: Sequence[int], *columns: Sequence[Any]) -> tuple[list[Any], ...]:
    """The rows ``idx`` of each column (questions, links, evidence) for a stage that takes some of the batch."""
    return tuple([column[i] for i in idx] for column in columns)


def _open_built_graph(settings: Settings) -> GraphStore:
    """The configured graph store, refusing a missing, empty, half-built or mismatched graph (kgrag/graph/serving.py)."""
    from kgrag.graph.serving import open_serving_graph

    return open_serving_graph(settings)


def answer(question: str, *, options: list[str] | None = None, task: str | None = None,
           settings: Settings | None = None) -> Answer:
    """Answer one question with the configured pipeline (built anew each call; keep a Pipeline for many)."""
    pipeline = Pipeline.from_settings(settings)
    try:
        return pipeline.answer(question, options=options, task=task)
    finally:
        pipeline.close()
