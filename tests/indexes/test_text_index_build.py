"""The streamed text-index build: shards, resume after an interruption, adds, PubMed updates and deletions, filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgrag.indexes.corpus import Passage
from kgrag.indexes.corpus_stream import corpus_stream, passages_stream
from kgrag.indexes.text_filter import TextFilter
from kgrag.indexes.text_index import TextIndex, TextIndexError
from kgrag.indexes.text_index_build import build_text_index
from kgrag.settings import Settings, load_settings
from tests.fakes import HashingEmbedder
from tests.indexes.test_pubmed_xml import article, deletion, write

TOPICS = ["psoriasis skin plaques interleukin", "metformin glucose diabetes liver", "breast cancer BRCA1 mutation",
          "malaria mosquito parasite fever", "asthma airway inhaled steroids", "statins cholesterol stroke prevention"]


def corpus(n: int, prefix: str = "p") -> list[Passage]:
    """``n`` passages about six topics, with years 1990.. and a MeSH term per topic."""
    return [Passage(id=f"{prefix}{i}", pmid=str(1000 + i), text=f"Study {prefix}{i} of {TOPICS[i % 6]} number {i}.",
                    year=1990 + i % 30, mesh=[TOPICS[i % 6].split()[0].title(), "Humans"]) for i in range(n)]


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in ("KGRAG_HOME", "KGRAG_TEXT_INDEX_DIR", "KGRAG_TEXT_FUSION", "KGRAG_TEXT_MESH", "KGRAG_TEXT_YEAR_MIN",
                "KGRAG_TEXT_YEAR_MAX"):
        monkeypatch.delenv(key, raising=False)
    return load_settings(home=tmp_path / "home")


QUERIES = [f"{topic} {i}" for i, topic in enumerate(TOPICS * 3)]


def results(index: TextIndex, fusion: str = "rrf") -> list[list[tuple[str, float]]]:
    return [[(h.passage.id, round(h.score, 5)) for h in hits] for hits in index.search(QUERIES, k=8, fusion=fusion)]


def test_a_sharded_build_equals_a_one_shard_build(settings: Settings, tmp_path: Path) -> None:
    passages = corpus(120)
    embedder = HashingEmbedder()
    report = build_text_index(settings, passages_stream(passages), embedder=embedder, shard_size=25, progress=False)
    assert (report.shards, report.live, report.rows, report.embedded) == (5, 120, 120, 120)
    sharded = TextIndex.load(settings, embedder=embedder, corpus=passages)
    whole_settings = load_settings(home=tmp_path / "whole")
    build_text_index(whole_settings, passages_stream(passages), embedder=embedder, shard_size=1000, progress=False)
    whole = TextIndex.load(whole_settings, embedder=embedder)
    assert sharded.manifest.corpus_checksum == whole.manifest.corpus_checksum
    for fusion in ("dense", "bm25", "rrf"):
        assert results(sharded, fusion) == results(whole, fusion)


def test_an_interrupted_build_resumes_from_its_last_shard(settings: Settings, tmp_path: Path) -> None:
    passages = corpus(130)
    embedder = HashingEmbedder()
    with pytest.raises(KeyboardInterrupt):
        build_text_index(settings, passages_stream(passages), embedder=embedder, shard_size=20, progress=False,
                         stop_after_shards=3)
    assert not settings.text_index_dir.exists()  # nothing published
    from kgrag.health import find_leftovers

    assert [path.name for path, size in find_leftovers(settings) if size > 0] == [".text_index.building"]  # doctor
    embedder.encoded = 0
    report = build_text_index(settings, passages_stream(passages), embedder=embedder, shard_size=20, progress=False)
    assert report.resumed_shards == 3 and report.embedded == 70 and embedder.encoded == 70 and report.live == 130
    resumed = TextIndex.load(settings, embedder=embedder)
    fresh_settings = load_settings(home=tmp_path / "fresh")
    build_text_index(fresh_settings, passages_stream(passages), embedder=embedder, shard_size=20, progress=False)
    fresh = TextIndex.load(fresh_settings, embedder=embedder)
    assert resumed.store.get(range(130)) == fresh.store.get(range(130))  # same passage at every row
    assert results(resumed) == results(fresh)
    assert [p.name for p in settings.text_index_dir.parent.iterdir() if p.name.startswith(".")] == []


def test_a_build_over_other_inputs_does_not_resume(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    embedder = HashingEmbedder()
    with pytest.raises(KeyboardInterrupt):
        build_text_index(settings, passages_stream(corpus(60)), embedder=embedder, shard_size=20, progress=False,
                         stop_after_shards=1)
    report = build_text_index(settings, passages_stream(corpus(50, "q")), embedder=embedder, shard_size=20,
                              progress=False)
    assert report.resumed_shards == 0 and report.live == 50
    assert "starting over" in capsys.readouterr().err


def test_adding_embeds_only_the_new_passages(settings: Settings) -> None:
    embedder = HashingEmbedder()
    build_text_index(settings, passages_stream(corpus(60)), embedder=embedder, shard_size=25, progress=False)
    before = TextIndex.load(settings, embedder=embedder)
    old_rows = before.store.get(range(60))
    embedder.encoded = 0
    extra = corpus(30, "new")
    report = build_text_index(settings, passages_stream(extra), embedder=embedder, shard_size=25, add=True,
                              progress=False)
    assert embedder.encoded == 30 and report.embedded == 30 and report.live == 90 and report.shards == 2
    index = TextIndex.load(settings, embedder=embedder)
    assert index.store.get(range(60)) == old_rows and index.manifest.sources == ["passages in memory"] * 2
    hits = index.search([extra[7].text], k=1, fusion="bm25")[0]
    assert hits[0].passage.id == "new7"
    with pytest.raises(TextIndexError, match="built with 'hashing-test'"):
        build_text_index(settings, passages_stream(extra), embedder=HashingEmbedder(model_name="other"), add=True,
                         progress=False)


def test_adding_to_an_ivfpq_index_keeps_its_quantiser(settings: Settings) -> None:
    embedder = HashingEmbedder()
    build_text_index(settings, passages_stream(corpus(700)), embedder=embedder, index_type="ivfpq", shard_size=200,
                     progress=False)
    first = TextIndex.load(settings, embedder=embedder)
    assert first.manifest.index_type == "ivfpq" and first.manifest.index_params["m"] == 16
    build_text_index(settings, passages_stream(corpus(50, "new")), embedder=embedder, index_type="ivfpq", add=True,
                     progress=False)
    index = TextIndex.load(settings, embedder=embedder)
    assert index.manifest.rows == 750 and index.manifest.index_params == first.manifest.index_params
    hits = index.search(["Study new3 of malaria mosquito parasite fever number 3."], k=3, fusion="dense")[0]
    assert hits[0].passage.id == "new3"
    assert all(-1.0 <= h.score <= 1.0 + 1e-5 for h in hits)  # re-ranked: exact cosines, not PQ estimates
    exact = index.vectors(np.array([hits[0].row])) @ embedder.encode([hits[0].passage.text])[0]
    assert hits[0].score == pytest.approx(float(exact[0]), abs=1e-5)


def test_ivfpq_with_reranking_finds_what_exact_search_finds(settings: Settings, tmp_path: Path) -> None:
    passages = corpus(900)
    embedder = HashingEmbedder()
    build_text_index(settings, passages_stream(passages), embedder=embedder, index_type="ivfpq", progress=False)
    approximate = TextIndex.load(settings, embedder=embedder)
    flat_settings = load_settings(home=tmp_path / "flat")
    build_text_index(flat_settings, passages_stream(passages), embedder=embedder, index_type="flat", progress=False)
    exact = TextIndex.load(flat_settings, embedder=embedder)
    found = [[h.score for h in hits] for hits in approximate.search(QUERIES, k=10, fusion="dense")]
    truth = [[h.score for h in hits] for hits in exact.search(QUERIES, k=10, fusion="dense")]
    # recall by score (passages of one topic tie): a hit counts when it scores at least exact search's 10th
    recall = np.mean([sum(s >= t[-1] - 1e-6 for s in f) / len(t) for f, t in zip(found, truth)])
    assert recall >= 0.9, recall


def test_pubmed_xml_updates_deletions_and_a_malformed_record(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "pubmed"
    folder.mkdir()
    write(folder / "pubmed25n0001.xml.gz",
          article("101", title="Psoriasis genes.", abstract="<AbstractText>IL23R variants in psoriasis.</AbstractText>",
                  mesh=("Psoriasis",)),
          article("102", title="Metformin and cancer.", abstract="<AbstractText>Fewer tumours on metformin."
                  "</AbstractText>", pub_date="<Year>2005</Year>"),
          article("103", title=None),  # malformed: no title, no abstract
          article("104", title="Malaria vaccines.", abstract="<AbstractText>RTS,S trial results.</AbstractText>"))
    write(folder / "pubmed25n0002.xml.gz",
          article("102", title="Metformin and cancer (corrected).", abstract="<AbstractText>No fewer tumours on "
                  "metformin after correction.</AbstractText>", pub_date="<Year>2006</Year>"),
          deletion("104"))
    embedder = HashingEmbedder()
    stream = corpus_stream(settings, folder)
    report = build_text_index(settings, stream, embedder=embedder, shard_size=2, progress=False)
    assert (report.added, report.removals, report.replaced, report.live, report.rows) == (4, 1, 2, 2, 4)
    assert report.problems == [f"{folder / 'pubmed25n0001.xml.gz'}: PMID 103: no title or abstract text"]
    index = TextIndex.load(settings, embedder=embedder)
    hits = index.search(["metformin cancer tumours", "malaria vaccines RTS,S"], k=5, fusion="rrf")
    assert [h.passage.id for h in hits[0]] == ["pubmed:102", "pubmed:101"][:len(hits[0])]
    assert "corrected" in hits[0][0].passage.text and hits[0][0].passage.year == 2006
    assert all(h.passage.id != "pubmed:104" for h in hits[1])  # deleted
    assert index.manifest.passage_count == 2


def test_pubmed_update_file_added_to_an_existing_index(settings: Settings, tmp_path: Path) -> None:
    baseline = write(tmp_path / "pubmed25n0001.xml.gz",
                     article("201", title="Asthma steroids.", abstract="<AbstractText>Inhaled steroids.</AbstractText>"),
                     article("202", title="Statins and stroke.", abstract="<AbstractText>Fewer strokes.</AbstractText>"))
    update = write(tmp_path / "pubmed25n0002.xml.gz",
                   article("201", title="Asthma steroids, revised.", abstract="<AbstractText>Inhaled steroids work."
                           "</AbstractText>"), deletion("202"))
    embedder = HashingEmbedder()
    build_text_index(settings, corpus_stream(settings, baseline), embedder=embedder, progress=False)
    embedder.encoded = 0
    report = build_text_index(settings, corpus_stream(settings, update), embedder=embedder, add=True, progress=False)
    assert embedder.encoded == 1 and report.replaced == 2 and report.live == 1
    index = TextIndex.load(settings, embedder=embedder)
    hits = index.search(["asthma statins stroke steroids"], k=5, fusion="bm25")[0]
    assert [h.passage.id for h in hits] == ["pubmed:201"] and "revised" in hits[0].passage.text


def test_year_and_mesh_filters(settings: Settings) -> None:
    embedder = HashingEmbedder()
    build_text_index(settings, passages_stream(corpus(120)), embedder=embedder, shard_size=50, progress=False)
    index = TextIndex.load(settings, embedder=embedder)
    for fusion in ("dense", "bm25", "rrf"):
        hits = index.search(["study of metformin glucose diabetes"], k=20, fusion=fusion,
                            text_filter=TextFilter(year_min=2000, year_max=2009))[0]
        assert hits and all(2000 <= h.passage.year <= 2009 for h in hits)
        hits = index.search(["study of metformin glucose diabetes"], k=20, fusion=fusion,
                            text_filter=TextFilter(mesh=["psoriasis"]))[0]
        assert hits and all("Psoriasis" in h.passage.mesh for h in hits)
    assert index.search(["anything"], k=5, text_filter=TextFilter(mesh=["No Such Term"])) == [[]]
    filtered = load_settings(home=settings.home, text_year_min=2015, text_mesh="Asthma; Malaria")
    by_settings = TextIndex.load(filtered, embedder=embedder).search(["study"], k=30)[0]
    assert by_settings and all(h.passage.year >= 2015 and h.passage.mesh[0] in ("Asthma", "Malaria")
                               for h in by_settings)
    with pytest.raises(ValueError, match="empty"):
        TextFilter(year_min=2010, year_max=2000)


def test_langchain_retriever_passes_the_filter(settings: Settings) -> None:
    from kgrag.langchain import TextRetriever

    embedder = HashingEmbedder()
    build_text_index(settings, passages_stream(corpus(60)), embedder=embedder, progress=False)
    index = TextIndex.load(settings, embedder=embedder)
    retriever = TextRetriever(index=index, k=10, text_filter=TextFilter(year_min=2010))
    documents = retriever.invoke("asthma airway inhaled steroids")
    assert documents and all(d.metadata["properties"]["year"] >= 2010 for d in documents)


def test_jsonl_stream_reports_bad_lines_and_later_ids_replace_earlier(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join([json.dumps({"id": "a", "text": "first version about asthma"}),
                               "{not json",
                               json.dumps({"id": "b", "text": "malaria"}),
                               json.dumps({"id": "a", "text": "second version about asthma", "year": 2020})]) + "\n")
    embedder = HashingEmbedder()
    report = build_text_index(settings, corpus_stream(settings, path), embedder=embedder, progress=False)
    assert report.live == 2 and report.replaced == 1 and report.problems == [f"{path}:2: not valid JSON (Expecting "
                                                                             "property name enclosed in double quotes)"]
    hits = TextIndex.load(settings, embedder=embedder).search(["asthma version"], k=5, fusion="bm25")[0]
    assert [h.passage.text for h in hits] == ["second version about asthma"]


KILLED_BUILD = """
import sys, time
from pathlib import Path
from kgrag.settings import load_settings
from kgrag.indexes.corpus_stream import corpus_stream
from kgrag.indexes.text_index_build import build_text_index
from tests.fakes import HashingEmbedder

class Slow(HashingEmbedder):
    def encode(self, texts, *, persist=True):
        time.sleep(0.3)
        return super().encode(texts, persist=persist)

settings = load_settings(home=Path(sys.argv[1]))
build_text_index(settings, corpus_stream(settings, Path(sys.argv[2])), embedder=Slow(), shard_size=40, progress=False)
"""


def test_a_build_killed_with_sigkill_resumes_to_the_same_index(settings: Settings, tmp_path: Path) -> None:
    """A real SIGKILL part way (the process gets no chance to clean up), then the same command again."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    path = tmp_path / "corpus.jsonl"
    passages = corpus(400)
    path.write_text("".join(p.model_dump_json(exclude_none=True) + "\n" for p in passages))
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(settings.home), str(path)], cwd=root,
                             env={**os.environ, "PYTHONPATH": str(root)})
    work = settings.text_index_dir.parent / f".{settings.text_index_dir.name}.building" / "passages.sqlite"
    committed, deadline = 0, time.monotonic() + 120
    while committed < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
        try:
            db = sqlite3.connect(f"file:{work}?mode=ro", uri=True)
            try:
                committed = db.execute("SELECT COUNT(*) FROM shards").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            committed = 0
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 3 <= committed < 10, committed  # killed part way, after some shards
    assert not settings.text_index_dir.exists()
    embedder = HashingEmbedder()
    report = build_text_index(settings, corpus_stream(settings, path), embedder=embedder, shard_size=40, progress=False)
    assert report.resumed_shards >= 3 and embedder.encoded == 400 - 40 * report.resumed_shards
    fresh_settings = load_settings(home=tmp_path / "fresh")
    build_text_index(fresh_settings, corpus_stream(fresh_settings, path), embedder=embedder, shard_size=40,
                     progress=False)
    resumed, fresh = TextIndex.load(settings, embedder=embedder), TextIndex.load(fresh_settings, embedder=embedder)
    assert resumed.store.get(range(400)) == fresh.store.get(range(400))
    assert resumed.manifest.corpus_checksum == fresh.manifest.corpus_checksum
    assert results(resumed) == results(fresh)


def test_reindex_rebuilds_the_dense_index_from_saved_vectors(settings: Settings) -> None:
    passages = corpus(700)
    embedder = HashingEmbedder()
    build_text_index(settings, passages_stream(passages), embedder=embedder, shard_size=300, progress=False)
    flat = TextIndex.load(settings, embedder=embedder)
    before = flat.search(QUERIES, k=1, fusion="dense")
    embedder.encoded = 0
    report = build_text_index(settings, passages_stream([], "reindex"), embedder=embedder, index_type="ivfpq",
                              add=True, retrain=True, progress=False)
    assert embedder.encoded == 0 and report.embedded == 0 and report.index_type == "ivfpq" and report.live == 700
    index = TextIndex.load(settings, embedder=embedder)
    assert index.manifest.index_type == "ivfpq" and index.manifest.corpus_checksum == flat.manifest.corpus_checksum
    after = index.search(QUERIES, k=1, fusion="dense")
    same = sum(a[0].score == pytest.approx(b[0].score, abs=1e-6) for a, b in zip(after, before))
    assert same >= 0.8 * len(QUERIES)  # IVF-PQ (probing 23 of 23 lists, re-ranked) finds exact search's best


def test_reading_a_hit_uses_indexes_not_scans(settings: Settings) -> None:
    """A hit's passage and its MeSH terms are found by row through an index (a scan grows with the corpus)."""
    import sqlite3

    embedder = HashingEmbedder()
    build_text_index(settings, passages_stream(corpus(30)), embedder=embedder, progress=False)
    db = sqlite3.connect(settings.text_index_dir / "passages.sqlite")
    for query in ("SELECT row, term FROM mesh WHERE row IN (?, ?)", "SELECT * FROM passages WHERE row IN (?, ?)",
                  "SELECT row FROM mesh WHERE term IN (?)", "SELECT row FROM passages WHERE live = 0"):
        plan = " ".join(str(step[-1]) for step in db.execute(f"EXPLAIN QUERY PLAN {query}", [1, 2][:query.count("?")]))
        assert "USING" in plan and "INDEX" in plan or "PRIMARY KEY" in plan, (query, plan)  # not a bare "SCAN mesh"
    db.close()
