"""CorpusStats over a real local Infini-gram index: equal to a brute-force scan of the corpus."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from quco.index_builder import build_index, jsonl_texts
from quco.stats import CorpusStats, LocalInfiniGramStats, StatsError, StatsQueryError, open_corpus_stats

VOCAB = ["alpha", "beta", "gamma", "delta", "kinase", "p53", "il", "6"]
STYLES = [str, str.upper, str.title]


def _random_corpus(seed: int, n_docs: int = 70) -> list[str]:
    """Documents over a tiny vocabulary (so terms co-occur), with case, punctuation and empty docs."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        words = [rng.choice(STYLES)(rng.choice(VOCAB)) for _ in range(rng.choice([0, 1, 3, 8, 15, 30]))]
        seps = [rng.choice([" ", " ", ", ", "-", "; ", ". "]) for _ in words]
        docs.append("".join(w + s for w, s in zip(words, seps)))
    docs.append("!!! ---")  # no words at all
    return docs


def _words(text: str) -> list[str]:
    """Independent of kgrag.text.normalise: ASCII test data, lower case, runs of [a-z0-9]."""
    return re.findall(r"[a-z0-9]+", text.lower())


def _starts(doc: list[str], term: str) -> list[int]:
    t = _words(term)
    return [i for i in range(len(doc) - len(t) + 1) if doc[i : i + len(t)] == t]


def brute_count(docs: list[list[str]], term: str) -> int:
    return sum(len(_starts(d, term)) for d in docs)


def brute_cooccur(docs: list[list[str]], a: str, b: str, window: int) -> int:
    """Occurrences of the rarer term (ties: alphabetically first) with the other within window, same doc."""
    na, nb = brute_count(docs, a), brute_count(docs, b)
    if (nb, " ".join(_words(b))) < (na, " ".join(_words(a))):
        a, b = b, a
    total = 0
    for doc in docs:
        bs = _starts(doc, b)
        total += sum(any(abs(p - q) <= window for q in bs) for p in _starts(doc, a))
    return total


@pytest.fixture(scope="module")
def random_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[list[str]], LocalInfiniGramStats]:
    texts = _random_corpus(seed=7)
    root = tmp_path_factory.mktemp("quco")
    path = root / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    build_index(jsonl_texts(path), root / "idx")
    return [_words(t) for t in texts], LocalInfiniGramStats(root / "idx")


terms = st.lists(st.sampled_from(VOCAB + ["zeta"]), min_size=1, max_size=3).map(" ".join)
cased_terms = st.tuples(terms, st.sampled_from(STYLES)).map(lambda ts: ts[1](ts[0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(term=cased_terms)
def test_count_equals_brute_force(random_index, term: str) -> None:
    docs, stats = random_index
    assert stats.count([term]) == [brute_count(docs, term)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=cased_terms, b=cased_terms, window=st.integers(min_value=1, max_value=40))
def test_cooccur_equals_brute_force_same_document_within_window(random_index, a: str, b: str, window: int) -> None:
    docs, stats = random_index
    expected = brute_cooccur(docs, a, b, window)
    assert stats.cooccur([(a, b)], window) == [expected]
    assert stats.cooccur([(b, a)], window) == [expected]  # symmetric


def test_batches_match_single_queries(random_index) -> None:
    docs, stats = random_index
    batch = ["alpha", "BETA gamma", "zeta", "alpha", "p53 kinase"]
    assert stats.count(batch) == [brute_count(docs, t) for t in batch]
    pairs = [("alpha", "beta"), ("kinase", "il 6"), ("alpha", "beta")]
    assert stats.cooccur(pairs, 5) == [brute_cooccur(docs, a, b, 5) for a, b in pairs]


def test_cooccur_never_crosses_documents_even_when_the_other_term_is_just_before(tmp_path: Path) -> None:
    # Infini-gram's own AND query drops an occurrence of "a" whose nearest "b" on the left lies in
    # the previous document even though a "b" follows in its own document; ours counts it.
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "x b"}\n{"text": "a b"}\n{"text": "b y"}\n{"text": "a z"}\n')
    build_index(jsonl_texts(corpus), tmp_path / "idx")
    stats = LocalInfiniGramStats(tmp_path / "idx")
    assert stats.count(["a", "b"]) == [2, 3]
    assert stats.cooccur([("a", "b")], 100) == [1]  # only the "a" of document 2
    assert stats.cooccur([("x", "y")], 100) == [0]  # 3 tokens apart, but in different documents


def test_matching_ignores_case_and_punctuation(tmp_path: Path, fixtures_dir: Path) -> None:
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), tmp_path / "idx")
    stats = LocalInfiniGramStats(tmp_path / "idx")
    assert isinstance(stats, CorpusStats)
    assert stats.count(["metformin", "METFORMIN", "Crohn's disease", "crohn s disease", "HLA-B*27", "hla b 27"]) == [3, 3, 1, 1, 1, 1]
    assert stats.count(["glucose", "warfarin"]) == [4, 0]  # "warfarin" is not in the vocabulary: 0, not [UNK]
    assert stats.cooccur([("metformin", "type 2 diabetes"), ("metformin", "multiple sclerosis")], 1000) == [1, 0]
    # diabetes (3) is rarer than glucose (4): its occurrences in d1 (4 words from glucose) and d8 (3 words)
    assert stats.cooccur([("glucose", "diabetes")], 1000) == [2]
    assert stats.cooccur([("glucose", "diabetes")], 4) == [2]
    assert stats.cooccur([("glucose", "diabetes")], 3) == [1]
    assert stats.cooccur([("glucose", "diabetes")], 2) == [0]


def test_bad_queries_are_named(random_index) -> None:
    _, stats = random_index
    with pytest.raises(StatsQueryError, match="no letters or digits"):
        stats.count(["!!"])
    with pytest.raises(StatsQueryError, match="empty"):
        stats.count([""])
    with pytest.raises(StatsQueryError, match="list of strings"):
        stats.count("alpha")  # type: ignore[arg-type]
    with pytest.raises(StatsQueryError, match="window"):
        stats.cooccur([("alpha", "beta")], 0)
    with pytest.raises(StatsQueryError, match="pair"):
        stats.cooccur([("alpha",)], 5)  # type: ignore[list-item]


def test_open_corpus_stats_by_uri(tmp_path: Path, tmp_settings, fixtures_dir: Path) -> None:
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), tmp_path / "idx")
    stats = open_corpus_stats(tmp_settings.model_copy(update={"stats_uri": f"local://{tmp_path / 'idx'}"}))
    assert stats.count(["metformin"]) == [3]
    assert stats.total_tokens == sum(len(_words(json.loads(l)["text"])) for l in (fixtures_dir / "quco" / "corpus.jsonl").open())
    with pytest.raises(StatsError, match="build-stats-index"):
        open_corpus_stats(tmp_settings.model_copy(update={"stats_uri": f"local://{tmp_path / 'none'}"}))
    with pytest.raises(StatsError, match="local://"):
        open_corpus_stats(tmp_settings.model_copy(update={"stats_uri": "ftp://x"}))


def test_optional_stats_absent_is_none_configured_and_failing_is_an_error(tmp_path: Path, tmp_settings,
                                                                          fixtures_dir: Path) -> None:
    from quco.stats import open_optional_corpus_stats

    assert open_optional_corpus_stats(tmp_settings) is None  # nothing configured, no index at <home>/stats
    missing = tmp_settings.model_copy(update={"stats_uri": f"local://{tmp_path / 'elsewhere'}"})
    with pytest.raises(StatsError, match=str(tmp_path / "elsewhere")):
        open_optional_corpus_stats(missing)  # configured: its failure is said, naming the path
    (tmp_settings.home / "stats").mkdir(parents=True)
    with pytest.raises(StatsError, match="build-stats-index"):
        open_optional_corpus_stats(tmp_settings)  # something at the default place that does not open
    (tmp_settings.home / "stats").rmdir()
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), tmp_settings.home / "stats")
    assert open_optional_corpus_stats(tmp_settings).count(["metformin"]) == [3]  # type: ignore[union-attr]
