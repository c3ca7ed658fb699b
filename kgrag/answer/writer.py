"""Writers: the free-text answer to each question without options.

A writer takes a batch of questions, their links, their pruned evidence and their ranked items and returns one
:class:`~kgrag.types.Reply` per question; the evidence it is given is not changed. Three writers:

* :class:`~kgrag.answer.evidence_writer.EvidenceWriter` (``writer=evidence``, the default): composed from the
  items and the best passages' sentences, no LLM.
* :class:`OneShotWriter` (``writer=llm``, ``gate_mode`` never or always): ONE batched generation call.
* :class:`kgrag.answer.gated_writer.QucoWriter` (``writer=llm``, ``gate_mode=gated``): sentence by sentence, with gate stage 2 after
  each sentence and retrieval for the flagged ones, through the :class:`~kgrag.answer.retriever.Retriever`.

Example::

    writer = OneShotWriter(settings, generator)
    [reply] = writer.write([Question(text="What is psoriasis?")], retriever.link(qs), [evidence])
    reply.text, reply.usage.completion_tokens
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kgrag.generators.base import Generator, TextCallback
from kgrag.answer.prompts import build_prompt
from kgrag.answer.retriever import Linked
from kgrag.settings import Settings
from kgrag.types import AnswerItem, Evidence, Question, Reply, Usage


class Writer(Protocol):
    """Writes the free-text answers of a batch of questions."""

    name: str
    """What the Answer reports as its writer: ``evidence``, ``llm`` or ``llm+gate``."""

    def write(self, qs: Sequence[Question], linked: Sequence[Linked], evidence: Sequence[Sequence[Evidence]],
              items: Sequence[Sequence[AnswerItem]] | None = None, on_text: TextCallback | None = None) -> list[Reply]:
        """One Reply per question; ``on_text(i, text)`` gets question i's text as it is written."""
        ...


class OneShotWriter:
    """Each answer in one generation, all of the batch in ONE call, with the question's evidence as context."""

    name = "llm"

    def __init__(self, settings: Settings, generator: Generator) -> None:
        self.settings = settings
        self.generator = generator

    def write(self, qs: Sequence[Question], linked: Sequence[Linked], evidence: Sequence[Sequence[Evidence]],
              items: Sequence[Sequence[AnswerItem]] | None = None, on_text: TextCallback | None = None) -> list[Reply]:
        if not qs:
            return []
        streaming = {"on_text": on_text} if on_text is not None else {}
        gens = self.generator.generate([build_prompt(q, ev) for q, ev in zip(qs, evidence)],
                                       max_tokens=self.settings.llm_max_new_tokens, **streaming)
        return [Reply(text=g.text, evidence=list(ev), usage=Usage.of_generation(g)) for g, ev in zip(gens, evidence)]
