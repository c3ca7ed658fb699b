"""The Generator interface: batched generation and option scoring. One module per backend beside this file.

Example::

    from kgrag.generators import open_generator
    gen = open_generator(settings)
    [g] = gen.generate([Prompt(system="Be brief.", user="What is psoriasis?")], max_tokens=32)
    [scores] = gen.score_options([Prompt(user="Is the sky blue?")], [["yes", "no"]])
    [label_scores] = gen.score_labels([Prompt(user="Is the sky blue? A. yes B. no")], [["A", "B"]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


TextCallback = Callable[[int, str], None]
"""Called with (the prompt's index in the batch, the text just generated) as a generation goes (``on_text``)."""


class Generation(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" (a stop sequence), "eos" (the model ended) or "length"


@runtime_checkable
class Generator(Protocol):
    """Every backend takes a whole batch per call."""

    name: str

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None,
                 on_text: TextCallback | None = None) -> list[Generation]:
        """Greedy (temperature from settings) completion of each prompt, stopping at any of ``stop``.

        ``on_text``: called with each prompt's text as it is generated (transformers streams a batch of one token by
        token); a backend that cannot stream calls it once per prompt with the whole text."""
        ...

    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        """Mean log-probability per token of each option as the assistant's reply to its prompt.

        Length-normalised so that long and short options compete fairly; higher is better.
        """
        ...

    def score_labels(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]]) -> list[list[float]]:
        """Log-probability of each label ("A", "B", ... or "True", "False") as the first token of the reply.

        One forward pass (one request) per prompt, however many options: the cheap way to score options
        the prompt lists under labels. A label the backend cannot see (outside a server's top log-probabilities)
        scores ``-inf``; a row of all ``-inf`` means the model put no label among its likely first tokens.
        """
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts with the model's own tokenizer."""
        ...

    def reset_cache(self) -> None:
        """Forget cached prompt prefixes (vLLM's prefix cache; benchmarks time cold prompts with it); a backend
        without such a cache does nothing."""
        ...

    def close(self) -> None:
        """Release what the backend holds open (vLLM's engine, an HTTP client); a backend holding nothing does
        nothing. Once is enough; a second call does nothing."""
        ...


def hand_over(results: list[Generation], on_text: TextCallback | None) -> list[Generation]:
    """``results``, after giving each whole text to ``on_text`` (a backend that does not stream token by token)."""
    if on_text is not None:
        for index, generation in enumerate(results):
            on_text(index, generation.text)
    return results


def label_token_ids(tokenizer, labels: Sequence[str]) -> list[int]:
    """The first token id of each label as the start of a reply; labels must start with distinct tokens."""
    ids = []
    for label in labels:
        encoded = tokenizer.encode(label, add_special_tokens=False)
        if not encoded:
            raise ValueError(f"option label {label!r} encodes to no token")
        ids.append(encoded[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"option labels {list(labels)} do not start with distinct tokens; use letters")
    return ids


def top_logprob_of_labels(top: dict[str, float], labels: Sequence[str]) -> list[float]:
    """Each label's log-probability among a reply's first-token alternatives (token text -> log-probability);
    a token matches a label when it equals it after stripping spaces; absent labels get -inf."""
    best: dict[str, float] = {}
    for token, logprob in top.items():
        key = token.replace("\u0120", " ").replace("\u2581", " ").strip()
        if key and (key not in best or logprob > best[key]):
            best[key] = logprob
    return [best.get(label, float("-inf")) for label in labels]
