"""The configured generator, opened on first use: a question the evidence decides never loads the LLM.

``Pipeline.from_settings`` wraps the backend in a :class:`LazyGenerator`. Until something generates or scores,
only what is cheap is done:

* the settings are checked at once (an unknown model file or a missing vLLM fails when the pipeline is built,
  not half-way through a batch);
* ``count_tokens`` (the context-token count of every Answer) loads the model's tokenizer alone, and the
  model, when it is loaded later, reuses that tokenizer (transformers);
* the OpenAI-compatible client holds no model, so it is opened at once.

Example::

    gen = LazyGenerator(settings)
    gen.count_tokens(["psoriasis"])   # the tokenizer only
    gen.loaded                        # False
    gen.generate([Prompt(user="...")], max_tokens=8)   # loads the model now
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from kgrag.generators import open_generator, resolve_generator
from kgrag.generators.base import Generation, Generator, Prompt, TextCallback
from kgrag.settings import Settings


class LazyGenerator:
    """A :class:`~kgrag.generators.base.Generator` that opens ``settings``' backend the first time it is needed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = resolve_generator(settings)
        self._generator: Generator | None = None
        self._tokenizer: Any = None
        if self.backend == "openai":  # a client, no model: nothing to defer
            self._generator = open_generator(settings)
        elif self.backend == "vllm" and importlib.util.find_spec("vllm") is None:
            open_generator(settings)  # raises the install hint now
        elif self.backend == "transformers":
            from kgrag.generators.transformers_backend import resolve_model

            resolve_model(settings.llm_model)  # a missing package or GGUF file is an error now
        self.name = self._generator.name if self._generator is not None else f"{self.backend}:{settings.llm_model}"

    @property
    def loaded(self) -> bool:
        """Whether the backend (the model, or vLLM's engine) has been opened."""
        return self._generator is not None

    def get(self) -> Generator:
        """The backend, opened now if it was not (benchmarks call this to time the start-up apart)."""
        if self._generator is None:
            self._generator = open_generator(self.settings, tokenizer=self._tokenizer)
            self._tokenizer = None
        return self._generator

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None,
                 on_text: TextCallback | None = None) -> list[Generation]:
        if not prompts:
            return []
        streaming = {"on_text": on_text} if on_text is not None else {}
        return self.get().generate(prompts, max_tokens=max_tokens, stop=stop, **streaming)

    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        return self.get().score_options(prompts, options) if prompts else []

    def score_labels(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]]) -> list[list[float]]:
        return self.get().score_labels(prompts, labels) if prompts else []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Counts with the model's own tokenizer; before the model is loaded, with that tokenizer alone."""
        if self._generator is not None:
            return self._generator.count_tokens(texts)
        from kgrag.generators.transformers_backend import load_tokenizer, token_counts

        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.settings.llm_model)
        return token_counts(self._tokenizer, texts)

    def reset_cache(self) -> None:
        """The backend's prefix cache forgotten (vLLM); nothing to forget before it is loaded."""
        if self._generator is not None:
            self._generator.reset_cache()

    def close(self) -> None:
        """Close the backend if it was opened (vLLM's engine, the HTTP client)."""
        if self._generator is not None:
            self._generator.close()

