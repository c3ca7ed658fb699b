"""Corpus statistics for the gate: how often a term occurs, how often two terms occur near each other.

Two backends behind one protocol, chosen by ``settings.stats_uri``:

- ``local:///path/to/index``: :class:`LocalInfiniGramStats`, the Infini-gram engine over an index
  built by :mod:`quco.index_builder` (word-level, case-insensitive; windows in words).
- ``http(s)://...``: :class:`HttpInfiniGramStats`, the public Infini-gram API (its own tokenizer,
  case-sensitive; windows in the index's tokens; frequent clauses are subsampled, so a zero can be
  a false zero).

``cooccur(a, b, window)`` counts the occurrences of the rarer of the two terms (ties: the
alphabetically first normalised term) that have an occurrence of the other term starting within
``window`` tokens of their own start, in the same document; this is what Infini-gram's
``A AND B`` query with ``max_diff_tokens=window`` counts. Both calls are batched and cached.

Example::

    stats = open_corpus_stats(load_settings(stats_uri="local:///tmp/kgrag-home/stats"))
    stats.count(["metformin", "Takayasu arteritis"])          # [78, 1] on the public corpus
    stats.cooccur([("metformin", "diabetes")], window=1000)   # [21]
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from kgrag.artefacts import STATS_INDEX_KIND, STATS_INDEX_REBUILD, verify_on_load, wait_for_swap
from kgrag.errors import ArtefactError, IndexMismatchError, KgragError
from kgrag.settings import Settings
from kgrag.text import normalise
from quco.index_builder import IndexManifest, check_index_path, read_manifest
from quco.tokenizer import WordTokenizer

# Approximate sizes (tokens) of public Infini-gram indexes, for per-billion thresholds; override
# with KGRAG_STATS_TOTAL_TOKENS.
PUBLIC_INDEX_TOKENS: dict[str, int] = {
    "v4_piletrain_llama": 383_000_000_000,
    "v4_dolma-v1_7_llama": 2_600_000_000_000,
    "v4_olmo-mix-1124_llama": 4_600_000_000_000,
}


PREFETCH_MIN_BYTES = 2 << 30


class StatsError(KgragError):
    """A statistics lookup failed (engine error, HTTP error, timeout)."""


class StatsQueryError(StatsError, ValueError):
    """A query is malformed (empty term, no words, bad window)."""


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

    def _cached(self, keys: list[Hashable], queries: list[Any], compute) -> list[int]:
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


class LocalInfiniGramStats(_CachedStats):
    """The Infini-gram engine over a local index built by :func:`quco.index_builder.build_index`.

    ``count`` is the engine's suffix-array ``find``. ``cooccur`` takes both terms' occurrences from
    the engine's ``find`` ranges of the suffix array and joins them by document and distance here,
    rather than with the engine's ``count_cnf``: that one drops an occurrence whose nearest partner
    on the left lies in the previous document even when a partner follows in its own document
    (on the public corpus it counts 6 metformin+diabetes co-occurrences where there are 21),
    and it subsamples frequent clauses. The join is exact and equals a brute-force scan.

    Example::

        stats = LocalInfiniGramStats(Path("/tmp/kgrag-home/stats"))
        stats.count(["Metformin", "metformin"])    # the same count: matching ignores case
    """

    def __init__(self, index_dir: Path, cache_size: int = 100_000) -> None:
        super().__init__(cache_size)
        from infini_gram.engine import InfiniGramEngine  # noqa: PLC0415  (heavy import)

        try:
            self.index_dir = check_index_path(Path(index_dir))
            wait_for_swap(self.index_dir, kind=STATS_INDEX_KIND, rebuild=STATS_INDEX_REBUILD)
            self.manifest: IndexManifest = read_manifest(self.index_dir)
        except ArtefactError:
            raise
        except KgragError as exc:
            raise StatsError(str(exc)) from None
        except ValueError:
            raise ArtefactError(f"{self.index_dir / 'manifest.json'} is damaged; rebuild the statistics index "
                                f"with `{STATS_INDEX_REBUILD}`") from None
        building = self.index_dir.with_name(self.index_dir.name + ".building")
        self.verification = verify_on_load(self.index_dir, kind=STATS_INDEX_KIND, rebuild=STATS_INDEX_REBUILD,
                                           interrupted=[building] if building.exists() else [])
        tok_path = self.index_dir / self.manifest.tokenizer_file
        for name in (tok_path.name, "tokenized.0", "table.0", "offset.0"):
            if not (self.index_dir / name).is_file():
                raise IndexMismatchError(f"stats index {self.index_dir} is incomplete: {name} missing; "
                                         f"rebuild it with `{STATS_INDEX_REBUILD}`")
        try:
            self.tokenizer = WordTokenizer.load(tok_path)
        except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception on a bad file
            raise ArtefactError(f"{tok_path} is damaged or unreadable ({str(exc)[:200]}); rebuild the statistics "
                                f"index with `{STATS_INDEX_REBUILD}`") from None
        if self.tokenizer.vocab_size != self.manifest.vocab_size:
            raise IndexMismatchError(f"{tok_path} has {self.tokenizer.vocab_size} words, the manifest says "
                                     f"{self.manifest.vocab_size}; rebuild the index with `{STATS_INDEX_REBUILD}`")
        self._width = 2 if self.manifest.token_dtype == "u16" else 4
        # The engine's prefetching pays off on indexes larger than memory; on one in the page cache
        # it costs 8x per lookup (0.2 ms against 0.025 ms measured here), so it is off below 2 GiB.
        small = self.manifest.index_bytes < PREFETCH_MIN_BYTES
        prefetch = {"ds_prefetch_depth": 0, "sa_prefetch_depth": 0, "od_prefetch_depth": 0} if small else {}
        try:
            self._engine = InfiniGramEngine(
                index_dir=str(self.index_dir), eos_token_id=0, token_dtype=self.manifest.token_dtype,
                vocab_size=65535 if self._width == 2 else self.manifest.vocab_size + 1, **prefetch,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ArtefactError(f"statistics index {self.index_dir} cannot be opened ({str(exc)[:200]}); rebuild it "
                                f"with `{STATS_INDEX_REBUILD}`") from None
        self._doc_starts = np.fromfile(self.index_dir / "offset.0", dtype=np.uint64).astype(np.int64)
        data_tokens = (self.index_dir / "tokenized.0").stat().st_size // self._width
        self._table = np.memmap(self.index_dir / "table.0", dtype=np.uint8, mode="r")
        self._ptr_size = len(self._table) // data_tokens
        if self._ptr_size * data_tokens != len(self._table) or not 1 <= self._ptr_size <= 8:
            raise IndexMismatchError(f"{self.index_dir / 'table.0'} does not match tokenized.0; rebuild the index "
                                     f"with `{STATS_INDEX_REBUILD}`")
        self._segments: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self.total_tokens = self.manifest.total_tokens
        self.description = f"local infini-gram {self.index_dir} ({self.total_tokens} words, {self.manifest.doc_count} docs)"

    def clear_cache(self) -> None:
        super().clear_cache()
        self._segments.clear()

    def _ids(self, term: str) -> list[int] | None:
        try:
            return self.tokenizer.encode_query(term)
        except ValueError as exc:
            raise StatsQueryError(str(exc)) from None

    def _find(self, term: str) -> tuple[int, int]:
        """The suffix-array rank range [lo, hi) of a term (empty when a word is not in the vocabulary)."""
        key = normalise(term)
        if key in self._segments:
            self._segments.move_to_end(key)
            return self._segments[key]
        ids = self._ids(term)
        if ids is None:
            segment = (0, 0)
        else:
            found = self._engine.find(input_ids=ids)
            if "error" in found:
                raise StatsError(f"infini-gram lookup of {term!r} failed: {found['error']}")
            segment = tuple(int(x) for x in found["segment_by_shard"][0])
        self._segments[key] = segment
        if len(self._segments) > self._cache_size:
            self._segments.popitem(last=False)
        return segment

    def _count_many(self, terms: list[str]) -> list[int]:
        return [hi - lo for lo, hi in map(self._find, terms)]

    def _positions(self, segment: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Sorted start positions (in tokens) of a term's occurrences, and the document of each.

        The suffix array (``table.0``) holds one little-endian pointer of ``ptr_size`` bytes per
        rank; the ranks of a term's occurrences are the range the engine's ``find`` returned.
        """
        lo, hi = segment
        raw = np.zeros((hi - lo, 8), dtype=np.uint8)
        raw[:, : self._ptr_size] = self._table[lo * self._ptr_size : hi * self._ptr_size].reshape(-1, self._ptr_size)
        ptrs = np.sort(raw.view("<u8").ravel().astype(np.int64))
        docs = np.searchsorted(self._doc_starts, ptrs, side="right") - 1
        return ptrs // self._width, docs

    def _cooccur_one(self, a: str, b: str, window: int) -> int:
        seg_a, seg_b = self._find(a), self._find(b)
        na, nb = seg_a[1] - seg_a[0], seg_b[1] - seg_b[0]
        if na == 0 or nb == 0:
            return 0
        if (nb, normalise(b)) < (na, normalise(a)):
            seg_a, seg_b = seg_b, seg_a
        pos_a, doc_a = self._positions(seg_a)
        pos_b, doc_b = self._positions(seg_b)
        right = np.searchsorted(pos_b, pos_a, side="left")  # first b starting at or after each a
        hit = np.zeros(len(pos_a), dtype=bool)
        ok = right < len(pos_b)
        r = right[ok]
        hit[ok] = (doc_b[r] == doc_a[ok]) & (pos_b[r] - pos_a[ok] <= window)
        ok = right > 0
        left = right[ok] - 1
        hit[ok] |= (doc_b[left] == doc_a[ok]) & (pos_a[ok] - pos_b[left] <= window)
        return int(hit.sum())

    def _cooccur_many(self, pairs: list[tuple[str, str]], window: int) -> list[int]:
        return [self._cooccur_one(a, b, window) for a, b in pairs]


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
        self.max_retries, self.backoff_s, self.max_clause_freq = max_retries, backoff_s, max_clause_freq
        self.concurrency = concurrency
        self._client = httpx.Client(timeout=timeout_s)
        tokens = total_tokens or PUBLIC_INDEX_TOKENS.get(index)
        if not tokens:
            raise StatsError(f"size of public index {index!r} unknown; set KGRAG_STATS_TOTAL_TOKENS")
        self.total_tokens = int(tokens)
        self.description = f"infini-gram API {url} index {index}"

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
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise StatsError(f"infini-gram API {self.url} answered HTTP {response.status_code} to {payload['query']!r}")
            try:
                body = response.json()
            except ValueError:
                raise StatsError(f"infini-gram API {self.url} answered non-JSON to {payload['query']!r}") from None
            if "error" in body:
                raise StatsError(f"infini-gram API error for {payload['query']!r}: {body['error']}")
            if not isinstance(body.get("count"), int):
                raise StatsError(f"infini-gram API answer for {payload['query']!r} has no integer count: {body}")
            return body["count"]
        raise StatsError(f"infini-gram API {self.url} failed after {self.max_retries + 1} tries for "
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
