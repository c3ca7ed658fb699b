"""The HTTP backend: the public Infini-gram API (its own tokenizer, case-sensitive; windows in the index's
tokens; frequent clauses are subsampled, so a zero can be a false zero).

Example::

    stats = HttpInfiniGramStats("https://api.infini-gram.io/", index="v4_piletrain_llama")
    stats.cooccur([("metformin", "Takayasu arteritis")], window=1000)
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kgrag.settings import mask_text, mask_uri
from quco.stats.base import StatsError, StatsQueryError, _CachedStats

# Approximate sizes (tokens) of public Infini-gram indexes, for per-billion thresholds; override
# with KGRAG_STATS_TOTAL_TOKENS.
PUBLIC_INDEX_TOKENS: dict[str, int] = {
    "v4_piletrain_llama": 383_000_000_000,
    "v4_dolma-v1_7_llama": 2_600_000_000_000,
    "v4_olmo-mix-1124_llama": 4_600_000_000_000,
}


class HttpInfiniGramStats(_CachedStats):
    """The public Infini-gram API (``POST`` JSON), with retries, backoff and a timeout.

    Example::

        stats = HttpInfiniGramStats("https://api.infini-gram.io/", index="v4_piletrain_llama")
        stats.cooccur([("metformin", "Takayasu arteritis")], window=1000)
    """

    def __init__(
        self,
        url: str,
        index: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_clause_freq: int = 50_000,
        total_tokens: int | None = None,
        concurrency: int = 8,
        cache_size: int = 100_000,
    ) -> None:
        import httpx  # noqa: PLC0415

        super().__init__(cache_size)
        self.url, self.index = url, index
        self.shown = mask_uri(url)  # every message names the API by this: a password in the URL is never written
        self.max_retries, self.backoff_s, self.max_clause_freq = max_retries, backoff_s, max_clause_freq
        self.concurrency = concurrency
        self._client = httpx.Client(timeout=timeout_s)
        tokens = total_tokens or PUBLIC_INDEX_TOKENS.get(index)
        if not tokens:
            raise StatsError(f"size of public index {index!r} unknown; set KGRAG_STATS_TOTAL_TOKENS")
        self.total_tokens = int(tokens)
        self.description = f"infini-gram API {self.shown} index {index}"

    def _term_key(self, term: str) -> str:
        return " ".join(term.split())  # the API is case-sensitive: keep case

    @staticmethod
    def _clause(term: str) -> str:
        words = term.split()
        if not words:
            raise StatsQueryError(f"term {term!r} is empty")
        return " ".join(w.lower() if w in ("AND", "OR") else w for w in words)  # not operators

    def _post(self, payload: dict[str, Any]) -> int:
        import httpx  # noqa: PLC0415

        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {mask_text(str(exc))}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise StatsError(f"infini-gram API {self.shown} answered HTTP {response.status_code} to {payload['query']!r}")
            try:
                body = response.json()
            except ValueError:
                raise StatsError(f"infini-gram API {self.shown} answered non-JSON to {payload['query']!r}") from None
            if "error" in body:
                raise StatsError(f"infini-gram API error for {payload['query']!r}: {body['error']}")
            if not isinstance(body.get("count"), int):
                raise StatsError(f"infini-gram API answer for {payload['query']!r} has no integer count: {body}")
            return body["count"]
        raise StatsError(f"infini-gram API {self.shown} failed after {self.max_retries + 1} tries for "
                         f"{payload['query']!r}: {last}")

    def _post_many(self, payloads: list[dict[str, Any]]) -> list[int]:
        if len(payloads) == 1:
            return [self._post(payloads[0])]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(payloads))) as pool:
            return list(pool.map(self._post, payloads))

    def _count_many(self, terms: list[str]) -> list[int]:
        return self._post_many([{"index": self.index, "query_type": "count", "query": self._clause(t)} for t in terms])

    def _cooccur_many(self, pairs: list[tuple[str, str]], window: int) -> list[int]:
        return self._post_many([
            {"index": self.index, "query_type": "count", "query": f"{self._clause(a)} AND {self._clause(b)}",
             "max_diff_tokens": window, "max_clause_freq": self.max_clause_freq}
            for a, b in pairs
        ])

    def close(self) -> None:
        self._client.close()
