"""The pipeline: link -> gate (stage 1) -> retrieve -> prune -> generate (gate stage 2) -> Answer.

``Pipeline.answer_batch`` is the real path; ``answer`` is a batch of one. Each stage runs once per
batch: one linking pass, one graph round-trip (plus one for option edges), one text search call,
one vector lookup for all candidate sentences (the precomputed edge-vector store, then the embedder for
the rest), one LLM call per generation step.

Example::

    from kgrag import answer
    result = answer("Which genes are associated with psoriasis?")
    result.text, [e.sources for e in result.evidence]
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from kgrag.context import Candidate, gather_kg
from kgrag.edge_vectors import EdgeVectorStore, open_edge_vectors
from kgrag.embeddings import Embedder, SentenceTransformerEmbedder
from kgrag.evidence import EvidenceChecker, Verdict, split_sentences
from kgrag.errors import KgragError, QuestionError
from kgrag.generators import Generator, open_generator
from kgrag.graph.base import GraphStore
from kgrag.linking import EntityLinker
from kgrag.generators.base import Prompt
from kgrag.prompts import build_prompt, option_labels, render_context
from kgrag.pruning import prune_detailed
from kgrag.settings import Settings, load_settings
from kgrag.text import normalise
from kgrag.types import TASK_OPTIONS, Answer, ClaimVerdict, Evidence, GateDecision, LinkedEntity, Question, Usage



class _Timer:
    """Per-stage wall time in ms, shared by every question of a batch (divided evenly)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1000


def validate_question(q: Question | str, settings: Settings, *, options: list[str] | None = None,
                      task: str | None = None) -> Question:
    """Turn user input into a Question; empty, over-long or non-text input raises QuestionError."""
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
    """

    def __init__(self, settings: Settings, *, store: GraphStore | None, embedder: Embedder, generator: Generator,
                 text_index: Any | None = None, gate: Any | None = None, stats: Any | None = None,
                 linker: EntityLinker | None = None, edge_vectors: EdgeVectorStore | None = None) -> None:
        self.settings = settings
        self.edge_vectors = edge_vectors  # precomputed sentence vectors; None: embed on demand
        self.store = store
        self.embedder = embedder
        self.generator = generator
        self.text_index = text_index
        self.gate = gate  # quco.gate.Gate, required when gate_mode is 'gated'
        self.stats = stats if stats is not None else getattr(gate, "stats", None)  # corpus statistics, optional
        self.checker = EvidenceChecker.from_settings(store, self.stats, settings)
        self.linker = linker or (EntityLinker.from_store(store, embedder, settings) if store is not None else None)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Pipeline":
        settings = settings or load_settings()
        store = None
        if settings.retrieval_mode in ("kg", "kg+text") or settings.selection_mode != "llm":
            store = _open_built_graph(settings)
        embedder = SentenceTransformerEmbedder(settings.embedding_model, device=settings.embedding_device,
                                               batch_size=settings.embedding_batch_size,
                                               cache_dir=settings.home / "embeddings", threads=settings.embedding_threads)
        edge_vectors = open_edge_vectors(settings, store, embedder)
        text_index = None
        if settings.retrieval_mode in ("text", "kg+text"):
            from kgrag.text_index import TextIndex

            text_index = TextIndex.load(settings, embedder=embedder)
        gate, stats = None, None
        if settings.gate_mode == "gated":
            from quco.gate import Gate

            gate = Gate.from_settings(settings)
        else:
            stats = _optional_stats(settings)  # for evidence checks and claim verdicts, when an index exists
        return cls(settings, store=store, embedder=embedder, generator=open_generator(settings),
                   text_index=text_index, gate=gate, stats=stats, edge_vectors=edge_vectors)

    # -- public API ----------------------------------------------------------------------------
    def answer(self, question: Question | str, *, options: list[str] | None = None, task: str | None = None) -> Answer:
        return self.answer_batch([validate_question(question, self.settings, options=options, task=task)])[0]

    def answer_batch(self, questions: Sequence[Question | str]) -> list[Answer]:
        settings = self.settings
        qs = [validate_question(q, settings) for q in questions]
        if not qs:
            return []
        timer = _Timer()
        backends = [f"generator={self.generator.name}", f"graph={self._graph_name()}",
                    f"text_index={'loaded' if self.text_index is not None else 'none'}",
                    f"corpus_stats={getattr(self.stats, 'description', 'none') if self.stats is not None else 'none'}",
                    f"edge_vectors={self._edge_vectors_name()}",
                    f"retrieval_mode={settings.retrieval_mode}", f"gate_mode={settings.gate_mode}",
                    f"selection_mode={settings.selection_mode}", f"option_scoring={settings.option_scoring}"]
        traces: list[list[str]] = [list(backends) for _ in qs]
        with timer.stage("linking"):
            entities = self.linker.link([q.text for q in qs]) if self.linker else [[] for _ in qs]
            option_nodes = self.link_options(qs)
        gate: list[list[GateDecision]] = [[] for _ in qs]
        with timer.stage("gate"):
            retrieve = self._stage1(qs, entities, gate)
        evidence, dropped = self.retrieve([q.text for q in qs], entities, option_nodes, retrieve, timer, traces=traces)
        for i, ents in enumerate(entities):
            if retrieve[i] and not any(e.kind == "kg" for e in evidence[i]) and settings.retrieval_mode in ("kg", "kg+text"):
                traces[i].append("no graph context found" + ("" if ents else " (no entity linked)"))
        usages = [Usage(retrievals=int(r)) for r in retrieve]
        with timer.stage("generation"):
            texts, choices, scores, abstained, decided = self._generate(qs, evidence, entities, option_nodes, usages,
                                                                        gate, traces)
        with timer.stage("claims"):
            claims = self._claims(texts, qs, entities)
        context_tokens = self.generator.count_tokens([render_context(ev, q.context) for q, ev in zip(qs, evidence)])
        per_question = {k: v / len(qs) for k, v in timer.ms.items()}
        answers = []
        for i, q in enumerate(qs):
            usages[i].context_tokens = context_tokens[i]
            answers.append(Answer(question=q.text, question_id=q.id, task=q.task, text=texts[i], choice=choices[i],
                                  option_scores=scores[i], selection_mode=settings.selection_mode,
                                  abstained=abstained[i], claims=claims[i],
                                  support=decided[i].support if decided[i] else None,
                                  support_confidence=decided[i].confidence if decided[i] else None,
                                  entities=entities[i], evidence=evidence[i], dropped_evidence=dropped[i],
                                  gate=gate[i], usage=usages[i], timings_ms=dict(per_question), trace=traces[i],
                                  settings=settings.public_dict()))
        return answers

    # -- stages --------------------------------------------------------------------------------
    def _graph_name(self) -> str:
        return getattr(self.store, "backend", "none") if self.store is not None else "none"

    def _edge_vectors_name(self) -> str:
        if self.edge_vectors is not None:
            return f"precomputed ({self.edge_vectors.describe()})"
        return "off" if self.settings.edge_vectors == "off" else "none (embedded on demand)"

    def link_options(self, qs: Sequence[Question]) -> list[dict[str, list[str]]]:
        """Option string -> node ids, for MCQ options; ONE lookup for the batch."""
        if self.store is None:
            return [{} for _ in qs]
        wanted = {normalise(o) for q in qs if q.task == "mcq" for o in q.options or []}
        found = self.store.find_by_name(sorted(wanted)) if wanted else {}
        return [{o: [n.id for n in found.get(normalise(o), [])] for o in (q.options or [])} if q.task == "mcq" else {}
                for q in qs]

    def _stage1(self, qs: Sequence[Question], entities: list[list[LinkedEntity]], gate: list[list[GateDecision]]) -> list[bool]:
        mode = self.settings.gate_mode
        if self.settings.retrieval_mode == "none" or mode == "never":
            return [False] * len(qs)
        if mode == "always":
            return [True] * len(qs)
        if self.gate is None:
            raise KgragError("gate_mode 'gated' needs a gate (quco.gate.Gate); build the pipeline with from_settings")
        decisions = self.gate.check_questions([[e.name for e in ents] for ents in entities])
        for i, decision in enumerate(decisions):
            gate[i].append(decision)
        return [d.retrieve for d in decisions]

    def retrieve(self, queries: Sequence[str], entities: Sequence[Sequence[LinkedEntity]],
                 option_nodes: Sequence[dict[str, list[str]]], active: Sequence[bool],
                 timer: _Timer | None = None, *, traces: Sequence[list[str]] | None = None
                 ) -> tuple[list[list[Evidence]], list[int]]:
        """Graph and text candidates for the active queries, pruned against each query and fitted to the context
        budget: (evidence, dropped). With ``traces``, each active query's trace gets the budget's line."""
        timer = timer or _Timer()
        with timer.stage("graph_fetch"):
            kg = self._kg_candidates(queries, entities, option_nodes, active)
        with timer.stage("text_search"):
            text = self._text_candidates(queries, active)
        with timer.stage("pruning"):
            return self._prune_all(queries, [k + t for k, t in zip(kg, text)], traces)

    def _kg_candidates(self, qs, entities, option_nodes, retrieve) -> list[list[Candidate]]:
        if self.store is None or self.settings.retrieval_mode not in ("kg", "kg+text"):
            return [[] for _ in qs]
        active = [i for i, r in enumerate(retrieve) if r]
        got = gather_kg(self.store, [entities[i] for i in active], [option_nodes[i] for i in active], self.settings)
        out: list[list[Candidate]] = [[] for _ in qs]
        for i, cands in zip(active, got):
            out[i] = cands
        return out

    def _text_candidates(self, queries: Sequence[str], retrieve: Sequence[bool]) -> list[list[Candidate]]:
        out: list[list[Candidate]] = [[] for _ in queries]
        if self.text_index is None or self.settings.retrieval_mode not in ("text", "kg+text"):
            return out
        active = [i for i, r in enumerate(retrieve) if r]
        if not active:
            return out
        hits = self.text_index.search([queries[i] for i in active], self.settings.text_top_k)
        for i, row in zip(active, hits):
            out[i] = [Candidate(group="text", evidence=Evidence(
                kind="text", text=h.passage.text, score=float(h.score), id=h.passage.id,
                sources=[f"PMID:{h.passage.pmid}"] if h.passage.pmid else [h.passage.source],
                properties={"rank": h.rank, "retriever": h.retriever, "source": h.passage.source})) for h in row]
        return out

    def _prune_all(self, questions: Sequence[str], candidates: list[list[Candidate]],
                   traces: Sequence[list[str]] | None = None) -> tuple[list[list[Evidence]], list[int]]:
        texts = [c.evidence.text for cands in candidates for c in cands]
        unique = list(dict.fromkeys(texts))
        vectors = self.candidate_vectors(unique)
        row = {t: i for i, t in enumerate(unique)}
        qvecs = self.embedder.encode(list(questions), persist=False)  # type: ignore[call-arg]
        evidence, dropped = [], []
        for k, (qvec, cands) in enumerate(zip(qvecs, candidates)):
            mat = vectors[[row[c.evidence.text] for c in cands]] if cands else np.zeros((0, qvec.shape[0]))
            result = prune_detailed(qvec, cands, mat, self.settings)
            evidence.append(result.evidence)
            dropped.append(result.dropped)
            if traces is not None and cands:
                traces[k].append(result.trace(self.settings.context_budget_tokens))
        return evidence, dropped

    def candidate_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of distinct candidate texts: the edge-vector store's, the embedder's for the rest."""
        if not texts:
            return np.zeros((0, getattr(self.embedder, "dimension", 1)), dtype=np.float32)
        if self.edge_vectors is None:
            return self.embedder.encode(list(texts))
        found, vectors = self.edge_vectors.lookup(texts)
        if not found.all():
            missing = np.flatnonzero(~found)
            vectors[missing] = self.embedder.encode([texts[i] for i in missing])
        return vectors

    def _generate(self, qs, evidence, entities, option_nodes, usages, gate, traces):
        n = len(qs)
        texts: list[str] = [""] * n
        choices: list[str | None] = [None] * n
        scores: list[dict[str, float] | None] = [None] * n
        abstained = [False] * n
        decided: list[Verdict | None] = [None] * n  # the evidence verdict that chose, where one did
        mode = self.settings.selection_mode
        constrained = [i for i, q in enumerate(qs) if q.options]
        # options the LLM chooses among, per question (all of them, the evidence's tie, or none)
        llm_options: dict[int, list[str]] = {i: list(qs[i].options) for i in constrained} if mode != "evidence" else {}
        if constrained and mode != "llm":
            verdicts = self.checker.decide([qs[i] for i in constrained], [entities[i] for i in constrained],
                                           [option_nodes[i] for i in constrained], [evidence[i] for i in constrained])
            for i, verdict in zip(constrained, verdicts):
                traces[i].append(f"evidence: {verdict.reason}")
                if verdict.choice is not None:
                    choices[i], texts[i], decided[i] = verdict.choice, verdict.choice, verdict
                    llm_options.pop(i, None)
                    self._attach_support(evidence[i], verdict)
                elif mode == "llm+evidence" and verdict.tied:
                    llm_options[i] = verdict.tied
                elif mode == "evidence":
                    abstained[i] = True
                    texts[i] = f"abstained: {verdict.reason}"
        asked = sorted(llm_options)
        if asked:
            option_scores, prompt_tokens = self._score_options([qs[i] for i in asked], [evidence[i] for i in asked],
                                                               [llm_options[i] for i in asked], [traces[i] for i in asked])
            for i, row, tokens in zip(asked, option_scores, prompt_tokens):
                best = int(np.argmax(row))
                choices[i] = llm_options[i][best]
                texts[i] = choices[i]
                scores[i] = dict(zip(llm_options[i], row))
                usages[i].llm_calls += 1
                usages[i].prompt_tokens += tokens
        free = [i for i, q in enumerate(qs) if not q.options]
        if free:
            if self.settings.gate_mode == "gated":
                from quco.loop import dynamic_generate

                generated = dynamic_generate(self, [qs[i] for i in free], [evidence[i] for i in free],
                                             [entities[i] for i in free], [usages[i] for i in free],
                                             [gate[i] for i in free])
                for i, text in zip(free, generated):
                    texts[i] = text
            else:
                gens = self.generator.generate([build_prompt(qs[i], evidence[i]) for i in free],
                                               max_tokens=self.settings.llm_max_new_tokens)
                for i, g in zip(free, gens):
                    texts[i] = g.text
                    usages[i].llm_calls += 1
                    usages[i].prompt_tokens += g.prompt_tokens
                    usages[i].completion_tokens += g.completion_tokens
        return texts, choices, scores, abstained, decided

    def _score_options(self, qs: Sequence[Question], evidence: Sequence[list[Evidence]], options: Sequence[list[str]],
                       traces: Sequence[list[str]]) -> tuple[list[list[float]], list[int]]:
        """The LLM's score of each option (higher is better) and the prompt tokens it read, per question.

        ``option_scoring=label``: the prompt lists the options under labels and ONE request per question reads the
        labels' next-token log-probabilities; a question whose model put no label among its likely first tokens
        is scored again by likelihood (said in its trace). ``likelihood``: the mean token log-probability of each
        option's text."""
        n = len(qs)
        scores: list[list[float] | None] = [None] * n
        prompts: list[Prompt | None] = [None] * n
        if self.settings.option_scoring == "label":
            labels = [option_labels(q, opts) for q, opts in zip(qs, options)]
            labelled = [k for k in range(n) if labels[k] is not None]
            if labelled:
                label_prompts = [build_prompt(qs[k], evidence[k], labelled=options[k]) for k in labelled]
                got = self.generator.score_labels(label_prompts, [labels[k] for k in labelled])
                for k, prompt, row in zip(labelled, label_prompts, got):
                    if any(np.isfinite(row)):
                        scores[k], prompts[k] = row, prompt
                        traces[k].append("option scoring: label (one request)")
                    else:
                        traces[k].append("option scoring: no option label among the model's likely first tokens; "
                                         "scored by likelihood")
        rest = [k for k in range(n) if scores[k] is None]
        if rest:
            rest_prompts = [build_prompt(qs[k], evidence[k]) for k in rest]
            for k, prompt, row in zip(rest, rest_prompts, self.generator.score_options(rest_prompts, [options[k] for k in rest])):
                scores[k], prompts[k] = row, prompt
                if self.settings.option_scoring == "likelihood":
                    traces[k].append("option scoring: likelihood (one sequence per option)")
        tokens = self.generator.count_tokens([(p.system or "") + p.user for p in prompts])  # type: ignore[union-attr]
        return [list(row) for row in scores], tokens  # type: ignore[arg-type]

    @staticmethod
    def _attach_support(evidence: list[Evidence], verdict: Verdict) -> None:
        """The edges that decided an answer join its evidence (once), so the answer shows its provenance; one already
        retrieved is replaced by the verdict's copy (keeping its score), which says how it supports (direct, inferred)."""
        have = {e.id: k for k, e in enumerate(evidence)}
        for support in verdict.supports:
            if support.option == verdict.choice or not support.option:
                for edge in support.edges + support.inferred:
                    if edge.id not in have:
                        have[edge.id] = len(evidence)
                        evidence.append(edge)
                    elif evidence[have[edge.id]].support is None:
                        evidence[have[edge.id]] = edge.model_copy(update={"score": evidence[have[edge.id]].score})

    def _claims(self, texts: Sequence[str], qs: Sequence[Question],
                entities: Sequence[Sequence[LinkedEntity]]) -> list[list[ClaimVerdict]]:
        """Claim verdicts for free-text answers: the question's and each answer sentence's entity pairs, checked
        against the graph and the corpus. The question keeps the entities it was linked to; answer sentences
        are linked by dictionary only (one pass for the batch)."""
        free = [i for i, q in enumerate(qs) if not q.options and texts[i]]
        out: list[list[ClaimVerdict]] = [[] for _ in qs]
        if not free or self.linker is None:
            return out
        answer_sentences = [split_sentences(texts[i]) for i in free]
        flat = [s for sents in answer_sentences for s in sents]
        linked_flat = self.linker.link(flat, fallback=False)
        sentences, linked, cursor = [], [], 0
        for i, sents in zip(free, answer_sentences):
            sentences.append([qs[i].text] + sents)
            linked.append([list(entities[i])] + linked_flat[cursor:cursor + len(sents)])
            cursor += len(sents)
        for i, verdicts in zip(free, self.checker.claims([texts[i] for i in free], linked, sentences)):
            out[i] = verdicts
        return out

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _open_built_graph(settings: Settings) -> GraphStore:
    """The configured graph store, refusing a missing, empty, half-built or mismatched graph (kgrag/graph/serving.py)."""
    from kgrag.graph.serving import open_serving_graph

    return open_serving_graph(settings)


def _optional_stats(settings: Settings) -> Any | None:
    """Corpus statistics for evidence checks when an index is there; None (evidence without corpus counts) if not."""
    from quco.stats import StatsError, open_corpus_stats

    try:
        return open_corpus_stats(settings)
    except (StatsError, OSError):
        return None


def answer(question: str, *, options: list[str] | None = None, task: str | None = None,
           settings: Settings | None = None) -> Answer:
    """Answer one question with the configured pipeline (built anew each call; keep a Pipeline for many)."""
    pipeline = Pipeline.from_settings(settings)
    try:
        return pipeline.answer(question, options=options, task=task)
    finally:
        pipeline.close()
