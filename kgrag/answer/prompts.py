"""Prompt templates (after KG-RAG's), one per task."""

from __future__ import annotations

from collections.abc import Sequence

from kgrag.generators.base import Prompt
from kgrag.types import TASK_OPTIONS, Evidence, Question

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

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


def option_labels(question: Question, options: Sequence[str]) -> list[str] | None:
    """The labels a prompt lists options under for label scoring: the answers themselves for fixed-answer tasks
    (True/False, yes/no/maybe), letters A, B, ... otherwise; None when there are more options than letters."""
    if question.task in TASK_OPTIONS:
        return list(options)
    return list(LETTERS[: len(options)]) if len(options) <= len(LETTERS) else None


def build_prompt(question: Question, evidence: Sequence[Evidence], partial_answer: str = "",
                 labelled: Sequence[str] | None = None) -> Prompt:
    """The prompt for a question; ``labelled`` (options to list under letters, for label scoring) replaces the
    plain option list with one "A. option" line each and asks for the letter."""
    context = render_context(evidence, question.context)
    head = f"Context:\n{context}\n\n" if context else ""
    if question.task == "true_false":
        body = f"Statement: {question.text}"
    elif labelled is not None and question.task not in TASK_OPTIONS:
        lines = "\n".join(f"{letter}. {option}" for letter, option in zip(LETTERS, labelled))
        body = f"Question: {question.text}\nOptions:\n{lines}\nAnswer with the letter of the correct option."
    elif question.options:
        body = f"Question: {question.text}\nOptions: {', '.join(question.options)}"
    else:
        body = f"Question: {question.text}"
    if partial_answer:
        body += f"\n\nAnswer so far: {partial_answer}\nContinue the answer."
    return Prompt(system=SYSTEM[question.task], user=head + body)
