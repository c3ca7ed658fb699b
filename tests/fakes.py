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


class HashingEmbedder:
    """Texts to unit vectors by hashed word counts (texts sharing words are near): deterministic and fast.

    For tests of what is built around an embedder (shards, resumes, adds, filters); retrieval quality is
    tested with the real model.
    """

    thread_safe = True

    def __init__(self, dimension: int = 64, model_name: str = "hashing-test") -> None:
        self.dimension = dimension
        self.model_name = model_name
        self.encoded = 0

    def encode(self, texts, *, persist: bool = True):
        import hashlib
        import re

        import numpy as np

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dimension] += 1.0
            out[i, int(hashlib.md5(text.encode()).hexdigest()[:8], 16) % self.dimension] += 0.01  # ties apart
        self.encoded += len(texts)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def encode_once(self, texts):
        return self.encode(texts, persist=False)
