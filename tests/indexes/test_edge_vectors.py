"""The precomputed edge-vector store (build, resume, checks on load, lookup in pruning) and the context budget.

Tiny real LadybugDB graph (tests/answer/test_pipeline.py's), the real all-MiniLM-L6-v2 embedder.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kgrag.retrieval.graph_context import Candidate
from kgrag.indexes.edge_vector_build import build_edge_vectors
from kgrag.indexes.edge_vectors import (
    KEYS_FILE,
    META_FILE,
    REBUILD,
    VECTORS_FILE,
    EdgeVectorsError,
    edge_vectors_dir,
    load,
    open_edge_vectors,
    staging_dir,
)
from kgrag.graph.schema import EdgeRecord, edge_sentence
from kgrag.answer.pipeline import Pipeline
from kgrag.retrieval.pruning import estimate_tokens, prune, prune_detailed
from kgrag.types import Evidence, Question
from tests.graph.test_contract import bolt_store, bolt_uri  # noqa: F401 - the Bolt backend's fixtures
from tests.conftest import TINY_EDGES, TINY_NODES
from tests.answer.test_pipeline import _NoLLM


@pytest.fixture()
def store(tiny_store):
    return tiny_store


@pytest.fixture()
def settings(tmp_settings, tmp_path):
    return tmp_settings.model_copy(update={"retrieval_mode": "kg", "prune_floor": 0.0,
                                           "graph_uri": f"ladybug://{tmp_path / 'g.lbug'}"})


class _Counting:
    """The real embedder, counting the texts it is asked to encode (to prove the store answered)."""

    def __init__(self, inner):
        self.inner, self.model_name, self.dimension = inner, inner.model_name, inner.dimension
        self.texts: list[str] = []

    thread_safe = False

    def encode(self, texts, *, persist=True):
        self.texts.extend(texts)
        return self.inner.encode(texts, persist=persist)

    def encode_once(self, texts):
        return self.encode(texts, persist=False)


def _sentences(store) -> list[str]:
    return [edge_sentence(e) for batch in store.iter_edges(2) for e in batch]


def test_iter_edges_lists_every_edge_in_batches(store):
    batches = list(store.iter_edges(4))
    assert [len(b) for b in batches] == [4, 2]
    assert {e.key for b in batches for e in b} == {e.key for e in TINY_EDGES}


def test_iter_edges_on_the_bolt_backend_gives_the_same_sentences(bolt_store, store):
    bolt_store.clear()
    bolt_store.load_nodes(TINY_NODES)
    bolt_store.load_edges(TINY_EDGES)
    batches = list(bolt_store.iter_edges(4))
    assert [len(b) for b in batches] == [4, 2]
    assert sorted(edge_sentence(e) for b in batches for e in b) == sorted(_sentences(store))
    assert {e.key for b in batches for e in b} == {e.key for e in TINY_EDGES}


def test_store_vectors_equal_the_embedders(store, embedder, settings):
    report = build_edge_vectors(settings, store, embedder, chunk_size=4, progress=False)
    assert (report.edges, report.sentences, report.resumed) == (6, 6, 0)
    assert not staging_dir(edge_vectors_dir(settings)).exists()
    vectors = open_edge_vectors(settings, store, embedder)
    assert vectors is not None and vectors.count == 6 and not vectors.stale
    texts = _sentences(store)
    found, rows = vectors.lookup(texts + ["a sentence of no edge"])
    assert found.tolist() == [True] * 6 + [False]
    np.testing.assert_allclose(rows[:6], embedder.encode(texts), atol=2e-3)
    assert np.allclose(np.linalg.norm(rows[:6], axis=1), 1.0, atol=1e-5) and not rows[6].any()
    assert isinstance(np.load(vectors.directory / VECTORS_FILE, mmap_mode="r"), np.memmap)


def test_pruning_with_the_store_keeps_the_same_evidence_and_embeds_no_sentence(store, embedder, settings):
    build_edge_vectors(settings, store, embedder, progress=False)
    questions = [Question(text="Which genes are associated with psoriasis?"),
                 Question(text="Out of the given list, which Gene is associated with psoriasis and myelodysplastic "
                               "syndrome.", options=["NOD2", "CHEK2", "HLA-B"])]
    results = {}
    for mode in ("off", "on"):
        counting = _Counting(embedder)
        mode_settings = settings.model_copy(update={"edge_vectors": mode, "selection_mode": "evidence",
                                                    "ranking": "similarity"})  # the store serves similarity ranking
        pipe = Pipeline(mode_settings, store=store, embedder=counting, generator=_NoLLM(),
                        edge_vectors=open_edge_vectors(mode_settings, store, counting))
        found = pipe.retriever.retrieve([q.text for q in questions], pipe.retriever.link(questions))
        evidence = [r.evidence for r in found]
        results[mode] = [[(e.id, e.score) for e in ev] for ev in evidence]
        sentences = {t for t in counting.texts if "Provenance of this association" in t}
        assert bool(sentences) == (mode == "off")  # with the store, no edge sentence reaches the embedder
    ids = {mode: [[i for i, _ in ev] for ev in got] for mode, got in results.items()}
    assert ids["on"] == ids["off"] and ids["on"][0]
    scores = {mode: [s for ev in got for _, s in ev] for mode, got in results.items()}
    np.testing.assert_allclose(scores["on"], scores["off"], atol=2e-3)


def test_a_killed_build_resumes_from_its_chunks(store, embedder, settings):
    with pytest.raises(KeyboardInterrupt):
        build_edge_vectors(settings, store, embedder, chunk_size=2, progress=False, stop_after_chunks=2)
    staging = staging_dir(edge_vectors_dir(settings))
    assert len(list(staging.glob("chunk-*.keys.npy"))) == 2 and not edge_vectors_dir(settings).exists()
    report = build_edge_vectors(settings, store, embedder, chunk_size=2, progress=False)
    assert (report.resumed, report.embedded, report.sentences) == (4, 2, 6)
    found, _ = open_edge_vectors(settings, store, embedder).lookup(_sentences(store))
    assert found.all()


def test_missing_store_is_on_demand_in_auto_and_an_error_in_on(store, embedder, settings):
    assert open_edge_vectors(settings, store, embedder) is None
    assert open_edge_vectors(settings.model_copy(update={"edge_vectors": "off"}), store, embedder) is None
    with pytest.raises(EdgeVectorsError, match=f"no edge vectors.*`{REBUILD}`"):
        open_edge_vectors(settings.model_copy(update={"edge_vectors": "on"}), store, embedder)


def test_a_store_of_other_vectors_beside_the_missing_one_is_named_with_its_settings(store, embedder, settings,
                                                                                     capsys):
    build_edge_vectors(settings, store, embedder, progress=False)  # fp32: all-MiniLM-L6-v2
    bf16 = settings.model_copy(update={"embedding_precision": "bf16"})
    bf16_embedder = type("Bf16", (), {"model_name": "all-MiniLM-L6-v2@bf16", "dimension": 384})()
    assert edge_vectors_dir(bf16).name == "all-MiniLM-L6-v2_bf16"
    assert open_edge_vectors(bf16, store, bf16_embedder) is None  # auto: embedded on demand, and said why
    warning = capsys.readouterr().err
    assert "no edge vectors for all-MiniLM-L6-v2@bf16" in warning and "KGRAG_EMBEDDING_PRECISION=fp32" in warning
    with pytest.raises(EdgeVectorsError, match="beside it: all-MiniLM-L6-v2 .*KGRAG_EMBEDDING_PRECISION=fp32"):
        open_edge_vectors(bf16.model_copy(update={"edge_vectors": "on"}), store, bf16_embedder)


def test_damaged_store_is_an_error_naming_the_rebuild(store, embedder, settings):
    build_edge_vectors(settings, store, embedder, progress=False)
    directory = edge_vectors_dir(settings)
    with pytest.raises(EdgeVectorsError, match=f"built with model all-MiniLM-L6-v2.*other-model.*`{REBUILD}`"):
        load(directory, model="other-model", dimension=384)
    data = bytearray((directory / VECTORS_FILE).read_bytes())
    data[-10:] = b"\xff" * 10  # same size, different content: the manifest's checksum catches it
    (directory / VECTORS_FILE).write_bytes(bytes(data))
    with pytest.raises(EdgeVectorsError, match=f"{VECTORS_FILE}: checksum mismatch.*`{REBUILD}`"):
        open_edge_vectors(settings, store, embedder)
    (directory / KEYS_FILE).write_bytes(b"short")
    with pytest.raises(EdgeVectorsError, match=f"{KEYS_FILE}: size 5 bytes"):
        open_edge_vectors(settings, store, embedder)


def test_a_store_of_another_graph_build_warns_in_auto_and_fails_in_on(store, embedder, settings, capsys):
    build_edge_vectors(settings, store, embedder, progress=False)
    store.load_edges([EdgeRecord(source_id="DOID:1612", type="ASSOCIATES_DaG", target_id="NCBIGene:3106",
                                 sources=["GWAS"])])
    vectors = open_edge_vectors(settings, store, embedder)
    assert vectors is not None and vectors.stale and "7 edges" in vectors.describe()
    assert "built from another graph build" in capsys.readouterr().err
    found, _ = vectors.lookup(_sentences(store))
    assert found.sum() == 6  # the new edge's sentence is a miss, embedded on demand
    with pytest.raises(EdgeVectorsError, match=f"another graph build.*`{REBUILD}`.*KGRAG_EDGE_VECTORS=auto"):
        open_edge_vectors(settings.model_copy(update={"edge_vectors": "on"}), store, embedder)


def test_meta_records_model_dimension_count_and_graph(store, embedder, settings):
    build_edge_vectors(settings, store, embedder, progress=False)
    meta = json.loads((edge_vectors_dir(settings) / META_FILE).read_text())
    assert (meta["model"], meta["dimension"], meta["dtype"], meta["count"]) == ("all-MiniLM-L6-v2", 384, "float16", 6)
    assert meta["graph"]["edges"] == 6 and meta["graph"]["backend"] == "ladybug"


# -- the context budget --------------------------------------------------------------------------------------

def _unit(angle: float) -> list[float]:
    return [float(np.cos(angle)), float(np.sin(angle))]


def _kg(i: int, group: str, words: int = 10) -> Candidate:
    return Candidate(group=group, evidence=Evidence(kind="kg", text=" ".join(["gene"] * words) + f" {i}.",
                                                    score=0, id=f"k{i}", option="A" if group == "options" else None))


def test_budget_keeps_option_edges_first_and_respects_the_limit(settings):
    q = np.array([1.0, 0.0])
    cands = [_kg(0, "options"), _kg(1, "options")] + [_kg(i, "e1") for i in range(2, 8)]
    # the option edges are the least similar: only their rank keeps them
    vecs = np.array([_unit(1.2), _unit(1.3)] + [_unit(0.1 * i) for i in range(6)])
    cost = estimate_tokens(cands[2].evidence.text) + 1
    s = settings.model_copy(update={"prune_percentile": 0.0, "context_budget_tokens": 4 * cost})
    result = prune_detailed(q, cands, vecs, s)
    assert [e.id for e in result.evidence] == ["k0", "k1", "k2", "k3"]  # options, then the most similar
    assert result.tokens <= 4 * cost and result.budget_cut == 4 and result.dropped == 4
    assert "cut 4 items" in result.trace(4 * cost)
    unlimited = prune_detailed(q, cands, vecs, s.model_copy(update={"context_budget_tokens": 0}))
    assert len(unlimited.evidence) == 8 and unlimited.budget_cut == 0


def test_budget_ranks_passages_and_sentences_together_by_similarity(settings):
    q = np.array([1.0, 0.0])
    passage = Candidate(group="text", evidence=Evidence(kind="text", text="word " * 40, score=0, id="p1",
                                                        sources=["PMID:1"]))
    cands = [_kg(0, "e1"), _kg(1, "e1"), passage]
    vecs = np.array([_unit(0.5), _unit(0.6), _unit(0.05)])
    cost = estimate_tokens(cands[0].evidence.text) + 1
    passage_cost = estimate_tokens("[PMID PMID:1] " + passage.evidence.text) + 1
    s = settings.model_copy(update={"prune_percentile": 0.0, "context_budget_tokens": passage_cost + cost})
    kept, _ = prune(q, cands, vecs, s)
    assert [e.id for e in kept] == ["k0", "p1"]  # the passage is the most similar; then what still fits


def test_near_duplicate_passages_are_dropped(settings):
    q = np.array([1.0, 0.0, 0.0])
    texts = ["HLA-B is associated with psoriasis in a cohort.", "HLA-B  is associated with PSORIASIS in a cohort.",
             "NOD2 is a gene of Crohn's disease.", "Another study of HLA-B and psoriasis."]
    cands = [Candidate(group="text", evidence=Evidence(kind="text", text=t, score=0, id=f"p{i}",
                                                       sources=[f"PMID:{i}"])) for i, t in enumerate(texts)]
    vecs = np.array([[0.8, 0.6, 0.0], [0.8, 0.6, 0.0], [0.6, 0.0, 0.8], [0.79, 0.61, 0.0]])
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    s = settings.model_copy(update={"text_context_passages": 4})
    result = prune_detailed(q, cands, vecs, s)
    assert [e.id for e in result.evidence] == ["p0", "p2"]  # p1 repeats p0's text, p3 is a cosine ~1 copy
    assert result.near_duplicates == 2


def test_answer_trace_reports_the_budget(store, embedder, settings):
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "evidence", "context_budget_tokens": 30}),
                    store=store, embedder=embedder, generator=_NoLLM())
    answer = pipe.answer("Which genes are associated with psoriasis?", options=["NOD2", "CHEK2"])
    line = next(t for t in answer.trace if t.startswith("context:"))
    assert "budget 30 tokens" in line and "edge_vectors=none (embedded on demand)" in answer.trace
    assert int(re.search(r"~(\d+) tokens \(", line).group(1)) <= 30
