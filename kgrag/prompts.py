"""Prompt templates (after KG-RAG's), one per task."""

from __future__ import annotations

from collections.abc import Sequence

from kgrag.generators.base import Prompt
from kgrag.types import Evidence, Question

SYSTEM = {
    "free": "You are an expert biomedical researcher. Answer the Question at the end using the Context when it is "
    "relevant and your own knowledge otherwise. Be concise and factual.",
    "true_false": "You are an expert biomedical researcher. Read the Context, then decide whether the Statement at the "
    "end is True or False, considering the context and your own knowledge. Answer with True or False.",
    "mcq": "You are an expert biomedical researcher. Read the Context, then choose the one correct option for the "
    "Question at the end, considering the context and your own knowledge. Answer with the option only.",
    "yes_no_maybe": "You are an expert biomedical researcher. Read the Context, then answer the Question at the end "
    "with yes, no or maybe.",
}


def render_context(evidence: Sequence[Evidence], given: str | None = None) -> str:
    lines = []
    if given:
        lines.append(given.strip())
    for ev in evidence:
        if ev.kind == "text":
            lines.append(f"[PMID {', '.join(ev.sources) or '?'}] {ev.text}")
        else:
            lines.append(ev.text)
    return "\n".join(lines)


def build_prompt(question: Question, evidence: Sequence[Evidence], partial_answer: str = "") -> Prompt:
    context = render_context(evidence, question.context)
    head = f"Context:\n{context}\n\n" if context else ""
    if question.task == "true_false":
        body = f"Statement: {question.text}"
    elif question.options:
        body = f"Question: {question.text}\nOptions: {', '.join(question.options)}"
    else:
        body = f"Question: {question.text}"
    if partial_answer:
        body += f"\n\nAnswer so far: {partial_answer}\nContinue the answer."
    return Prompt(system=SYSTEM[question.task], user=head + body)
