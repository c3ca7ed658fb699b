"""The Generator interface: batched generation and option scoring. One module per backend beside this file.

Example::

    from kgrag.generators import open_generator
    gen = open_generator(settings)
    [g] = gen.generate([Prompt(system="Be brief.", user="What is psoriasis?")], max_tokens=32)
    [scores] = gen.score_options([Prompt(user="Is the sky blue?")], [["yes", "no"]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel


class Prompt(BaseModel):
    """A chat prompt: an optional system message and one user message."""

    system: str | None = None
    user: str

    def messages(self) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": self.user}]

    def plain(self) -> str:
        """A template-free rendering for endpoints that take raw text (OpenAI completions)."""
        head = f"{self.system}\n\n" if self.system else ""
        return f"{head}{self.user}\n\nAnswer:"


class Generation(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" (a stop sequence), "eos" (the model ended) or "length"


@runtime_checkable
class Generator(Protocol):
    """Every backend takes a whole batch per call."""

    name: str

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[Generation]:
        """Greedy (temperature from settings) completion of each prompt, stopping at any of ``stop``."""
        ...

    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        """Mean log-probability per token of each option as the assistant's reply to its prompt.

        Length-normalised so that long and short options compete fairly; higher is better.
        """
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...
