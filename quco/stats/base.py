"""The CorpusStats interface, its errors, and the batching and cache every backend shares.

One module per backend beside this file: :mod:`quco.stats.local` (the Infini-gram engine over an
index built by :mod:`quco.index_builder`) and :mod:`quco.stats.http` (the public Infini-gram API).

``cooccur(a, b, window)`` counts the occurrences of the rarer of the two terms (ties: the
alphabetically first normalised term) that have an occurrence of the other term starting within
``window`` tokens of their own start, in the same document; this is what Infini-gram's
``A AND B`` query with ``max_diff_tokens=window`` counts. Both calls are batched and cached.

A lookup that fails raises :class:`StatsError` or an ``OSError`` (a file or connection that failed):
:data:`LOOKUP_FAILURES`. Callers catch those and record the failure; anything else is a bug in a
backend and is raised as what it is, never read as "retrieve" or "unknown".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, runtime_checkable

from kgrag.errors import KgragError
from kgrag.text import normalise


class StatsError(KgragError):
    """A statistics lookup failed (engine error, HTTP error, timeout)."""


class StatsQueryError(StatsError, ValueError):
    """A query is malformed (empty term, no words, bad window)."""


LOOKUP_FAILURES: tuple[type[Exception], ...] = (StatsError, OSError)
"""What a failed lookup raises; the gate and the evidence checker record these and raise anything else."""


@runtime_checkable
class CorpusStats(Protocol):
    """Term counts and co-occurrence counts over a corpus (batched)."""

    total_tokens: int
    description: str

    def count(self, terms: list[str]) -> list[int]:
        """Occurrences of each term (a word or a phrase)."""
        ...

    def cooccur(self, pairs: list[tuple[str, str]], window: int) -> list[int]:
        """For each pair, occurrences of the rarer term with the other within ``window`` tokens, same document."""
        ...


def _check_terms(terms: Sequence[str]) -> None:
    if isinstance(terms, str):
        raise StatsQueryError("terms must be a list of strings, not one string")
    for term in terms:
        if not isinstance(term, str) or not term.strip():
            raise StatsQueryError(f"term {term!r} is empty or not text")


def _check_window(window: int) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        raise StatsQueryError(f"window must be a positive integer number of tokens (got {window!r})")


class _CachedStats:
    """Batching and an LRU cache shared by the backends; subclasses answer uncached unique queries."""

    def __init__(self, cache_size: int = 100_000) -> None:
        self._cache: OrderedDict[Hashable, int] = OrderedDict()
        self._cache_size = cache_size

    def clear_cache(self) -> None:
        """Forget every cached answer (benchmarks of cold lookups; a rebuilt index)."""
        self._cache.clear()

    def _term_key(self, term: str) -> str:
        return normalise(term)

    def _count_many(self, terms: list[str]) -> list[int]:
        raise NotImplementedError

    def _cooccur_many(self, pairs: list[tuple[str, str]], window: int) -> list[int]:
        raise NotImplementedError

    def _cached(self, keys: list[Hashable], queries: list[Any], compute: Callable[[list[Any]], list[int]]) -> list[int]:
        missing: dict[Hashable, Any] = {}
        for key, query in zip(keys, queries):
            if key in self._cache:
                self._cache.move_to_end(key)
            else:
                missing.setdefault(key, query)
        if missing:
            values = compute(list(missing.values()))
            for key, value in zip(missing, values):
                self._cache[key] = int(value)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        result = {key: self._cache[key] for key in keys if key in self._cache}
        if len(result) < len(set(keys)):  # cache smaller than the batch: answer what was evicted now
            lost = [k for k in keys if k not in result]
            result.update(dict(zip(lost, compute([queries[keys.index(k)] for k in lost]))))
        return [result[key] for key in keys]

    def count(self, terms: list[str]) -> list[int]:
        _check_terms(terms)
        keys: list[Hashable] = [("count", self._term_key(t)) for t in terms]
        return self._cached(keys, list(terms), self._count_many)

    def cooccur(self, pairs: list[tuple[str, str]], window: int) -> list[int]:
        _check_window(window)
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise StatsQueryError(f"pair {pair!r} is not a (term, term) tuple")
            _check_terms(list(pair))
        keys: list[Hashable] = [("cooccur", window, *sorted((self._term_key(a), self._term_key(b)))) for a, b in pairs]
        return self._cached(keys, [tuple(p) for p in pairs], lambda qs: self._cooccur_many(qs, window))
