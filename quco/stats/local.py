"""The local backend: the Infini-gram engine over an index built by :func:`quco.index_builder.build_index`.

Word-level and case-insensitive; windows are in words.

Example::

    stats = LocalInfiniGramStats(Path("/tmp/kgrag-home/stats"))
    stats.count(["metformin", "Takayasu arteritis"])
    stats.cooccur([("metformin", "diabetes")], window=1000)
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from kgrag.artefacts import STATS_INDEX_KIND, STATS_INDEX_REBUILD, leftovers, verify_on_load, wait_for_swap
from kgrag.errors import ArtefactError, IndexMismatchError, KgragError
from quco.index_builder import StatsIndexManifest, check_index_path, read_stats_manifest
from kgrag.text import normalise
from quco.stats.base import StatsError, StatsQueryError, _CachedStats
from quco.tokenizer import WordTokenizer

PREFETCH_MIN_BYTES = 2 << 30


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
            self.manifest: StatsIndexManifest = read_stats_manifest(self.index_dir)
        except ArtefactError:
            raise
        except KgragError as exc:
            raise StatsError(str(exc)) from None
        except ValueError:
            raise ArtefactError(f"{self.index_dir / 'manifest.json'} is damaged; rebuild the statistics index "
                                f"with `{STATS_INDEX_REBUILD}`") from None
        self.verification = verify_on_load(self.index_dir, kind=STATS_INDEX_KIND, rebuild=STATS_INDEX_REBUILD,
                                           interrupted=leftovers(self.index_dir))
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
