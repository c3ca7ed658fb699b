"""The Selector: choose an option for each question that has options (true/false, MCQ, yes/no/maybe).

Two steps, per ``settings.selection_mode`` (see :mod:`kgrag.evidence.checker` for what each mode means):

1. evidence selection (modes ``evidence`` and ``llm+evidence``): :class:`~kgrag.evidence.checker.EvidenceChecker`
   decides from graph edges, corpus co-occurrence and passages; the edges that decided a choice join
   the question's evidence, so the answer shows its provenance;
2. option scoring (modes ``llm`` and ``llm+evidence``): the generator scores the options that evidence
   left open (all of them, or the ones tied at the top) in ONE batched request.

Returns one :class:`~kgrag.types.Reply` per question; the evidence it is given is not changed.

Example::

    selector = Selector(settings, EvidenceChecker(store, stats), generator)
    [reply] = selector.select([question], retriever.link([question]), [evidence])
    reply.choice, reply.trace, reply.option_scores
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from kgrag.evidence.checker import EvidenceChecker
from kgrag.generators.base import Generator, Prompt
from kgrag.answer.prompts import build_prompt, option_labels
from kgrag.answer.retriever import Linked
from kgrag.settings import Settings
from kgrag.types import Decision, Evidence, Question, Reply, Usage


class Scored(BaseModel):
    """The LLM's score of each option of one question (higher is better), the prompt's tokens, and how it scored."""

    scores: list[float]
    prompt_tokens: int
    trace: list[str]


class Selector:
    """Evidence selection, then the LLM's option scores where evidence leaves the choice open."""

    def __init__(self, settings: Settings, checker: EvidenceChecker, generator: Generator) -> None:
        self.settings = settings
        self.checker = checker
        self.generator = generator

    def select(self, qs: Sequence[Question], linked: Sequence[Linked],
               evidence: Sequence[Sequence[Evidence]]) -> list[Reply]:
        """One reply per question (each question must have options)."""
        replies = [Reply(evidence=list(ev)) for ev in evidence]
        mode = self.settings.selection_mode
        # the options the LLM chooses among, per question: all of them, the evidence's tie, or none
        open_options = {i: list(q.options or []) for i, q in enumerate(qs)} if mode != "evidence" else {}
        if qs and mode != "llm":
            verdicts = self.checker.decide(qs, [x.entities for x in linked], [x.option_nodes for x in linked], evidence)
            for i, (reply, verdict) in enumerate(zip(replies, verdicts)):
                reply.trace.append(f"evidence: {verdict.reason}")
                found = Decision(by="llm", reason=verdict.reason, tied=list(verdict.tied),
                                 options=[s.finding() for s in verdict.supports])
                if verdict.choice is not None:
                    reply.choice = reply.text = verdict.choice
                    reply.support, reply.support_confidence = verdict.support, verdict.confidence
                    deciding = verdict.deciding()
                    reply.evidence = with_support(reply.evidence, deciding)
                    reply.decision = found.model_copy(update={"by": "evidence", "evidence": [e.id for e in deciding]})
                    open_options.pop(i, None)
                elif mode == "llm+evidence" and verdict.tied:
                    open_options[i] = verdict.tied
                    reply.decision = found.model_copy(update={"by": "llm-tied"})
                elif mode == "evidence":
                    reply.abstained = True
                    reply.text = f"abstained: {verdict.reason}"
                    reply.decision = found.model_copy(update={"by": "abstained"})
                else:
                    reply.decision = found
        asked = sorted(open_options)
        if asked:
            scored = self.score_options([qs[i] for i in asked], [evidence[i] for i in asked],
                                        [open_options[i] for i in asked])
            for i, result in zip(asked, scored):
                options, reply = open_options[i], replies[i]
                reply.choice = reply.text = options[int(np.argmax(result.scores))]
                reply.option_scores = dict(zip(options, result.scores))
                reply.decision = reply.decision or Decision(by="llm")
                reply.trace.extend(result.trace)
                reply.usage = Usage(llm_calls=1, prompt_tokens=result.prompt_tokens)
        return replies

    def score_options(self, qs: Sequence[Question], evidence: Sequence[Sequence[Evidence]],
                      options: Sequence[list[str]]) -> list[Scored]:
        """The LLM's score of each option, per question.

        ``option_scoring=label``: the prompt lists the options under labels and ONE request per question reads the
        labels' next-token log-probabilities; a question whose model put no label among its likely first tokens
        is scored again by likelihood (said in its trace). ``likelihood``: the mean token log-probability of each
        option's text."""
        n = len(qs)
        scores: list[list[float] | None] = [None] * n
        prompts: list[Prompt | None] = [None] * n
        traces: list[list[str]] = [[] for _ in qs]
        if self.settings.option_scoring == "label":
            labels = [option_labels(q, opts) for q, opts in zip(qs, options)]
            labelled = [k for k in range(n) if labels[k] is not None]
            if labelled:
                label_prompts = [build_prompt(qs[k], evidence[k], labelled=options[k]) for k in labelled]
                got = self.generator.score_labels(label_prompts, [labels[k] for k in labelled])  # type: ignore[misc]
                for k, prompt, row in zip(labelled, label_prompts, got):
                    if any(np.isfinite(row)):
                        scores[k], prompts[k] = list(row), prompt
                        traces[k].append("option scoring: label (one request)")
                    else:
                        traces[k].append("option scoring: no option label among the model's likely first tokens; "
                                         "scored by likelihood")
        rest = [k for k in range(n) if scores[k] is None]
        if rest:
            rest_prompts = [build_prompt(qs[k], evidence[k]) for k in rest]
            for k, prompt, row in zip(rest, rest_prompts, self.generator.score_options(rest_prompts, [options[k] for k in rest])):
                scores[k], prompts[k] = list(row), prompt
                if self.settings.option_scoring == "likelihood":
                    traces[k].append("option scoring: likelihood (one sequence per option)")
        tokens = self.generator.count_tokens([(p.system or "") + p.user for p in prompts if p is not None])
        return [Scored(scores=row or [], prompt_tokens=t, trace=trace) for row, t, trace in zip(scores, tokens, traces)]


def with_support(evidence: Sequence[Evidence], deciding: Sequence[Evidence]) -> list[Evidence]:
    """The evidence, and after it the edges that decided a choice (:meth:`Verdict.deciding`), so the answer shows
    its provenance. A deciding edge already retrieved is replaced by the verdict's copy (keeping its score),
    which says how it supports the choice (direct, or inferred with its path and confidence)."""
    out = list(evidence)
    have = {e.id: k for k, e in enumerate(out)}
    for edge in deciding:
        if edge.id not in have:
            have[edge.id] = len(out)
            out.append(edge)
        elif out[have[edge.id]].support is None:
            out[have[edge.id]] = edge.model_copy(update={"score": out[have[edge.id]].score})
    return out
