"""Corpus statistics for the gate: how often a term occurs, how often two terms occur near each other.

One protocol (:class:`~quco.stats.base.CorpusStats`), one module per backend, chosen by ``settings.stats_uri``:

- ``local:///path/to/index``: :class:`~quco.stats.local.LocalInfiniGramStats`, the Infini-gram engine over an
  index built by :mod:`quco.index_builder` (word-level, case-insensitive; windows in words).
- ``http(s)://...``: :class:`~quco.stats.http.HttpInfiniGramStats`, the public Infini-gram API (its own
  tokenizer, case-sensitive; windows in the index's tokens; frequent clauses are subsampled, so a zero
  can be a false zero).

:func:`open_corpus_stats` opens the configured backend or raises; :func:`open_optional_corpus_stats`
(evidence checks and claim verdicts, which work without counts) gives None only when no source is
configured and no index is at the default place (``<home>/stats``).

Example::

    stats = open_corpus_stats(load_settings(stats_uri="local:///tmp/kgrag-home/stats"))
    stats.count(["metformin", "Takayasu arteritis"])          # [78, 1] on the public corpus
    stats.cooccur([("metformin", "diabetes")], window=1000)   # [21]
"""

from __future__ import annotations

from pathlib import Path

from kgrag.settings import Settings, default_stats_uri
from quco.stats.base import CorpusStats, StatsError, StatsQueryError
from quco.stats.http import PUBLIC_INDEX_TOKENS, HttpInfiniGramStats
from quco.stats.local import LocalInfiniGramStats


def open_corpus_stats(settings: Settings) -> CorpusStats:
    """The backend named by ``settings.stats_uri``: ``local:///path`` or ``http(s)://host/``."""
    uri = settings.stats_uri
    if uri.startswith("local://"):
        return LocalInfiniGramStats(Path(uri[len("local://"):]))
    if uri.startswith(("http://", "https://")):
        return HttpInfiniGramStats(
            uri, settings.stats_index, timeout_s=settings.stats_timeout_s, max_retries=settings.stats_max_retries,
            max_clause_freq=settings.stats_max_clause_freq, total_tokens=settings.stats_total_tokens,
        )
    raise StatsError(f"KGRAG_STATS_URI={uri!r}: must start with local:// (a local index) or http(s):// (the API)")


def open_optional_corpus_stats(settings: Settings) -> CorpusStats | None:
    """The configured statistics, or None when there are none: ``stats_uri`` left at its default
    (``local://<home>/stats``) and nothing there. A source that is configured, or an index at the default
    place, that fails to open raises (its error names the path or URL and the fix)."""
    if settings.stats_uri == default_stats_uri(settings.home) and not (settings.home / "stats").exists():
        return None
    return open_corpus_stats(settings)


__all__ = ["PUBLIC_INDEX_TOKENS", "CorpusStats", "HttpInfiniGramStats", "LocalInfiniGramStats", "StatsError",
           "StatsQueryError", "open_corpus_stats", "open_optional_corpus_stats"]
