"""TextIndex: real FAISS, real embeddings, bm25s; build, persist, check manifests, search in batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kgrag.indexes.corpus import Passage, deduplicate, load_corpus, load_pubmedqa
from kgrag.encoders.embeddings import SentenceTransformerEmbedder
from kgrag.errors import ArtefactError, IndexMismatchError
from kgrag.settings import Settings, load_settings
from kgrag.indexes.dense import fill_index, new_index
from kgrag.indexes.text_index import (
    FAISS_FILE,
    STORE_FILE,
    TextIndex,
    TextIndexError,
    choose_index_type,
)


class CountingEmbedder:
    """The real embedder, counting how many encode calls reach it."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self.calls = 0

    thread_safe = False

    def encode(self, texts: Sequence[str], *, persist: bool = True) -> np.ndarray:
        self.calls += 1
        return self.inner.encode(texts, persist=persist)

    def encode_once(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, persist=False)


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture()
def settings(tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in ("KGRAG_HOME", "KGRAG_SOURCES_DIR", "KGRAG_TEXT_INDEX_DIR", "KGRAG_TEXT_FUSION", "KGRAG_EMBEDDING_MODEL"):
        monkeypatch.delenv(key, raising=False)
    return load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "text")


@pytest.fixture()
def passages(settings: Settings) -> list[Passage]:
    return load_corpus(settings).passages


@pytest.fixture()
def built(settings: Settings, passages: list[Passage], embedder: SentenceTransformerEmbedder) -> TextIndex:
    return TextIndex.build(passages, settings, embedder=embedder, progress=False)


def test_batch_search_makes_one_embedding_call_and_finds_the_topic(built: TextIndex, settings: Settings) -> None:
    counting = CountingEmbedder(built.embedder)  # type: ignore[arg-type]
    index = TextIndex.load(settings, embedder=counting)
    queries = ["Is HLA-B a risk locus for psoriasis?", "What causes COVID-19?", "Do statins prevent strokes in the elderly?"]
    results = index.search(queries, k=3, fusion="dense")
    assert counting.calls == 1
    assert [hits[0].passage.pmid for hits in results] == ["1002", "3003", "2001"]
    first = results[0]
    assert [h.rank for h in first] == [1, 2, 3] and all(h.retriever == "dense" for h in first)
    assert first[0].score > first[1].score >= first[2].score
    assert 0.3 < first[0].score <= 1.0


def test_manifest_records_what_the_index_was_built_from(built: TextIndex, settings: Settings,
                                                        passages: list[Passage]) -> None:
    manifest = json.loads((settings.text_index_dir / "manifest.json").read_text())
    assert manifest["embedding_model"] == "all-MiniLM-L6-v2"
    assert manifest["dimension"] == 384
    assert manifest["passage_count"] == len(passages) == 11
    assert manifest["index_type"] == "flat" and manifest["bm25"] is True
    assert len(manifest["corpus_checksum"]) == 64 and manifest["build_seconds"] > 0 and manifest["built_at"]
    stats = built.stats()
    assert stats["size_bytes"] > stats["faiss_bytes"] >= 11 * 384 * 4


def test_load_with_another_embedding_model_is_a_clear_error(built: TextIndex, settings: Settings) -> None:
    other = load_settings(home=settings.home, embedding_model="BAAI/bge-small-en")
    with pytest.raises(IndexMismatchError, match=r"built with embedding model 'all-MiniLM-L6-v2'.*'BAAI/bge-small-en'"):
        TextIndex.load(other)


def test_load_against_a_changed_corpus_is_a_clear_error(built: TextIndex, settings: Settings,
                                                        passages: list[Passage], embedder) -> None:
    TextIndex.load(settings, embedder=embedder, corpus=passages)  # same corpus: fine
    changed = passages + [Passage(id="new", text="A passage added after the build.")]
    with pytest.raises(IndexMismatchError, match=r"corpus changed.*11 passages.*12 passages now"):
        TextIndex.load(settings, embedder=embedder, corpus=changed)


def test_edited_passage_store_is_detected(built: TextIndex, settings: Settings, embedder) -> None:
    path = settings.text_index_dir / STORE_FILE
    data = path.read_bytes()
    assert b"Psoriasis" in data
    path.write_bytes(data.replace(b"Psoriasis", b"Eczemaaaa"))  # same size: the checksum sees it
    with pytest.raises(ArtefactError, match=rf"{STORE_FILE}.*checksum.*kgrag build-text-index"):
        TextIndex.load(settings, embedder=embedder)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match=rf"{STORE_FILE}: size .* expected .*kgrag build-text-index"):
        TextIndex.load(settings, embedder=embedder)


def test_an_index_of_the_old_format_asks_for_a_rebuild(built: TextIndex, settings: Settings, embedder) -> None:
    manifest = settings.text_index_dir / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 1}))
    with pytest.raises(TextIndexError, match="format 1.*rebuild it with `kgrag build-text-index`"):
        TextIndex.load(settings, embedder=embedder)


def test_missing_index_names_the_command(settings: Settings, embedder) -> None:
    with pytest.raises(TextIndexError, match="no text index at .*kgrag build-text-index"):
        TextIndex.load(settings, embedder=embedder)


def test_bm25_matches_terms_and_returns_nothing_without_overlap(built: TextIndex) -> None:
    hits, none = built.search(["BRCA1 germline mutations", "zzzz qqqq"], k=5, fusion="bm25")
    assert hits[0].passage.pmid == "3001" and hits[0].retriever == "bm25"
    assert all(h.score > 0 for h in hits)
    assert none == []


def test_rrf_fuses_both_rankings(built: TextIndex) -> None:
    query = ["insulin secretion by beta cells"]
    dense = built.search(query, k=11, fusion="dense")[0]
    lexical = built.search(query, k=11, fusion="bm25")[0]
    fused = built.search(query, k=5, fusion="rrf")[0]
    assert len(fused) == 5 and all(h.retriever == "rrf" for h in fused)
    assert fused[0].passage.pmid == "3004"
    top = fused[0].passage.id
    expected = 1 / (60 + next(h.rank for h in dense if h.passage.id == top)) + \
        1 / (60 + next(h.rank for h in lexical if h.passage.id == top))
    assert fused[0].score == pytest.approx(expected)
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)


def test_default_fusion_and_k_come_from_settings(settings: Settings, passages, embedder) -> None:
    tuned = load_settings(home=settings.home, sources_dir=settings.sources_dir, text_top_k=2, text_fusion="bm25")
    index = TextIndex.build(passages, tuned, embedder=embedder, progress=False)
    hits = index.search(["lung cancer smoking"])[0]
    assert len(hits) == 2 and hits[0].retriever == "bm25"


def test_index_without_bm25(settings: Settings, passages, embedder) -> None:
    index = TextIndex.build(passages, settings, embedder=embedder, bm25=False, progress=False)
    assert not (settings.text_index_dir / "bm25").exists()
    hits = TextIndex.load(settings, embedder=embedder).search(["malaria mosquitoes"], k=2, fusion="rrf")[0]
    assert hits and all(h.retriever == "dense" for h in hits)  # fell back, and says so
    with pytest.raises(TextIndexError, match="without BM25"):
        index.search(["malaria"], fusion="bm25")


def test_bad_queries_are_clear_errors(built: TextIndex) -> None:
    with pytest.raises(TextIndexError, match="list of queries"):
        built.search("psoriasis")  # type: ignore[arg-type]
    with pytest.raises(TextIndexError, match="query 1 is empty"):
        built.search(["psoriasis", "  "])
    with pytest.raises(TextIndexError, match="k must be positive"):
        built.search(["psoriasis"], k=0)
    assert built.search([]) == []


def test_k_larger_than_corpus_returns_everything(built: TextIndex) -> None:
    assert len(built.search(["cancer"], k=100, fusion="dense")[0]) == 11


def test_rebuild_reuses_the_embedding_cache(settings: Settings, passages: list[Passage]) -> None:
    from kgrag.indexes.text_index import default_embedder

    first = default_embedder(settings)
    TextIndex.build(passages, settings, embedder=first, progress=False)
    assert first.encoded_count == len(passages)
    second = default_embedder(settings)  # a new process would start like this: empty memory, same disk cache
    TextIndex.build(passages, settings, embedder=second, progress=False)
    assert second.encoded_count == 0
    assert (settings.home / "embeddings").is_dir()


def test_hnsw_index_round_trips(settings: Settings, passages, embedder) -> None:
    TextIndex.build(passages, settings, embedder=embedder, index_type="hnsw", progress=False)
    index = TextIndex.load(settings, embedder=embedder)
    assert index.manifest.index_type == "hnsw" and index.manifest.index_params["M"] == 32
    assert index.search(["HLA-B psoriasis"], k=3, fusion="dense")[0][0].passage.pmid == "1002"


def test_rebuild_replaces_the_old_index_whole(settings: Settings, passages, embedder) -> None:
    TextIndex.build(passages, settings, embedder=embedder, progress=False)
    TextIndex.build(passages[:4], settings, embedder=embedder, bm25=False, progress=False)
    assert sorted(p.name for p in settings.text_index_dir.iterdir()) == ["artefacts.json", FAISS_FILE, "manifest.json",
                                                                         STORE_FILE, "vectors"]
    assert [p.name for p in settings.text_index_dir.parent.iterdir() if p.name.startswith(".")] == []
    assert TextIndex.load(settings, embedder=embedder).manifest.passage_count == 4


def test_build_rejects_an_empty_corpus_and_a_later_id_replaces_an_earlier(settings: Settings, embedder) -> None:
    with pytest.raises(TextIndexError, match="empty corpus"):
        TextIndex.build([], settings, embedder=embedder, progress=False)
    twice = [Passage(id="a", text="one"), Passage(id="b", text="three"), Passage(id="a", text="two")]
    index = TextIndex.build(twice, settings, embedder=embedder, progress=False)
    assert index.manifest.passage_count == 2 and index.manifest.rows == 3
    hits = index.search(["one two three"], k=5, fusion="dense")[0]
    assert sorted(h.passage.text for h in hits) == ["three", "two"]


def test_index_type_by_size() -> None:
    assert choose_index_type(10) == "flat"
    assert choose_index_type(100_000) == "flat"
    assert choose_index_type(500_000) == "ivfpq"
    assert choose_index_type(50_000_000) == "ivfpq"
    assert choose_index_type(10, "hnsw") == "hnsw"
    with pytest.raises(TextIndexError, match="'annoy'"):
        choose_index_type(10, "annoy")


def test_approximate_indexes_agree_with_flat_on_clustered_vectors() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 32))
    vectors = (centres[rng.integers(0, 30, 1500)] + 0.3 * rng.normal(size=(1500, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:100] + 0.01
    def made(kind: str, rows: np.ndarray):
        index, params = new_index(kind, 32, len(rows))
        if kind == "ivfpq":
            index.train(rows)
        fill_index(index, [rows], total=len(rows))
        return index, params

    flat, _ = made("flat", vectors)
    _, truth = flat.search(queries, 10)
    for kind, floor in (("hnsw", 0.9), ("ivfpq", 0.3)):  # IVF-PQ alone; search re-ranks it exactly
        index, params = made(kind, vectors)
        _, found = index.search(queries, 10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
        assert recall >= floor, (kind, recall, params)
    with pytest.raises(TextIndexError, match="ivfpq needs at least"):
        made("ivfpq", vectors[:100])


def test_cli_build_and_search(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from kgrag.cli import app

    monkeypatch.setenv("KGRAG_HOME", str(settings.home))
    monkeypatch.setenv("KGRAG_SOURCES_DIR", str(settings.sources_dir))
    runner = CliRunner()
    result = runner.invoke(app, ["build-text-index", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["live"] == 11 and stats["problems"] == 4 and stats["duplicates"] == 2
    assert stats["passages_per_second"] > 0 and stats["size_bytes"] > 0
    result = runner.invoke(app, ["search", "HLA-B psoriasis", "--k", "2", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and hits[0]["passage"]["pmid"] == "1002" and hits[0]["retriever"] == "rrf"
    result = runner.invoke(app, ["search", "HLA-B psoriasis", "--k", "1"])
    assert result.exit_code == 0 and "PMID 1002" in result.stdout


def test_cli_reports_a_missing_index(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from kgrag.cli import app

    monkeypatch.setenv("KGRAG_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["search", "anything"])
    assert result.exit_code == 1 and "no text index" in result.output


@pytest.mark.integration
def test_real_subset_question_finds_its_own_abstract(shared_data_dir: Path, tmp_path: Path, embedder) -> None:
    """20 PubMedQA test questions among their abstracts and 200 BioASQ snippets: own PMID in the top 10."""
    from kgrag.indexes.corpus import load_bioasq

    settings = load_settings(home=tmp_path, sources_dir=shared_data_dir)
    test_file = shared_data_dir / "pubmedqa" / "pqal_test_unlabelled.json"
    questions = dict(list(json.loads(test_file.read_text()).items())[:20])
    own = [p for p in load_pubmedqa(test_file).passages if p.pmid in questions]
    bioasq_file = sorted(shared_data_dir.glob("bioasq/Task10BGoldenEnriched/*.json"))[0]
    others = load_bioasq(bioasq_file).passages[:200]
    corpus, _ = deduplicate(own + others)
    index = TextIndex.build(corpus, settings, embedder=embedder, progress=False)
    results = index.search([row["QUESTION"] for row in questions.values()], k=10, fusion="rrf")
    found = sum(pmid in {h.passage.pmid for h in hits} for pmid, hits in zip(questions, results))
    assert found / len(questions) >= 0.9


def test_hit_becomes_evidence_with_pmid_provenance(built: TextIndex) -> None:
    hit = built.search(["HLA-B psoriasis"], k=1, fusion="dense")[0][0]
    evidence = hit.to_evidence()
    assert evidence.kind == "text" and evidence.sources == ["PMID:1002"] and evidence.id == hit.passage.id
    assert evidence.text == hit.passage.text and evidence.properties["retriever"] == "dense"
