"""Test doubles shared by several test modules."""

from __future__ import annotations


class WrappedGenerator:
    """A real generator behind the Generator protocol, every call passed through; subclasses record or change some.

    ``reset_cache`` and ``close`` do nothing: the wrapped generator is the session's and outlives the test."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name

    def generate(self, prompts, *, max_tokens, stop=None, **streaming):
        return self.inner.generate(prompts, max_tokens=max_tokens, stop=stop, **streaming)

    def score_options(self, prompts, options):
        return self.inner.score_options(prompts, options)

    def score_labels(self, prompts, labels):
        return self.inner.score_labels(prompts, labels)

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)

    def reset_cache(self):
        pass

    def close(self):
        pass
