"""Linking, context, pruning and answer_batch over a tiny real LadybugDB graph, the real embedder and SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest

from kgrag.retrieval.graph_context import Candidate
from kgrag.errors import QuestionError
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.retrieval.linking import EntityLinker, candidate_spans
from kgrag.answer.pipeline import Pipeline, validate_question
from kgrag.retrieval.pruning import prune
from kgrag.types import Evidence, Question
from tests.conftest import TINY_NODES
from tests.fakes import WrappedGenerator

@pytest.fixture()
def store(tiny_store):
    return tiny_store


@pytest.fixture()
def settings(tmp_settings):
    return tmp_settings.model_copy(update={"retrieval_mode": "kg", "prune_floor": 0.0})


def test_dictionary_linking_longest_match_and_generic_words(store, embedder, settings):
    linker = EntityLinker.from_store(store, embedder, settings)
    [a, b, c, d] = linker.link([
        "Is psoriatic arthritis a kind of disease?",
        "PSORIASIS VULGARIS ASSOCIATES GENE NOD2",
        "Does the cat gene matter in psoriasis?",
        "Does CAT matter in psoriasis?",
    ])
    assert [e.node_id for e in a] == ["DOID:9008"]  # not psoriasis inside it, not the generic 'disease'
    assert {e.node_id for e in b} == {"DOID:8893", "NCBIGene:64127"}
    assert [e.method for e in b if e.node_id == "DOID:8893"] == ["synonym"]
    assert "NCBIGene:847" not in {e.node_id for e in c}  # lower-case English word is not the gene symbol
    assert "NCBIGene:847" in {e.node_id for e in d}


def test_a_span_naming_two_diseases_links_both_and_is_no_claim(store, embedder, settings):
    linker = EntityLinker.from_store(store, embedder, settings)
    [ents] = linker.link(["cherubism is a autosomal dominant disease"])
    assert [e.node_id for e in ents][:2] == ["DOID:0070648", "DOID:1856"]  # the name first, then the synonym
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "evidence"}), store=store, embedder=embedder,
                    generator=_NoLLM())
    [a] = pipe.answer_batch([Question(text="cherubism is a autosomal dominant disease", task="true_false")])
    assert a.abstained  # the is-a edge between the two cherubism nodes does not support the statement


def test_embedding_fallback_links_a_paraphrase(store, embedder, settings):
    linker = EntityLinker.from_store(store, embedder, settings.model_copy(update={"link_embedding_threshold": 0.6}))
    [ents] = linker.link(["Which genes are linked to cancer of the breast?"])
    assert ents and ents[0].node_id == "DOID:1612" and ents[0].method == "embedding"
    assert "cancer of the breast" in candidate_spans("cancer of the breast")


def test_prune_keeps_percentile_floor_and_volume(settings):
    q = np.array([1.0, 0.0])
    sims = [0.9, 0.8, 0.1, 0.7, 0.95]
    vecs = np.array([[s, np.sqrt(1 - s * s)] for s in sims])
    cands = [Candidate(evidence=Evidence(kind="kg", text=f"s{i}", score=0, id=str(i)), group="e1") for i in range(4)]
    cands.append(Candidate(evidence=Evidence(kind="kg", text="opt", score=0, id="o"), group="options"))
    s = settings.model_copy(update={"prune_percentile": 50.0, "prune_floor": 0.75, "context_volume": 10})
    kept, dropped = prune(q, cands, vecs, s)
    assert [e.id for e in kept] == ["o", "0", "1"]  # options first; 0.7 is under the floor 0.75
    assert dropped == 2 and kept[1].score == pytest.approx(0.9)


def test_graph_candidates_build_evidence_only_for_what_pruning_keeps(store, embedder, settings):
    """gather_kg gives sentences; an edge's Evidence (sources, properties, option) is built for kept candidates only."""
    pipe = Pipeline(settings.model_copy(update={"context_volume": 2, "context_budget_tokens": 0}), store=store,
                    embedder=embedder, generator=_NoLLM())
    question = Question(text="Which genes are associated with psoriasis?")
    linked = pipe.retriever.link([question])
    [cands] = pipe.retriever._kg_candidates(linked, [True])  # noqa: SLF001
    assert len(cands) > 2 and all(c._evidence is None for c in cands)  # noqa: SLF001 - nothing built yet
    vectors = pipe.retriever.candidate_vectors([c.text for c in cands])
    qvec = embedder.encode([question.text], persist=False)[0]
    kept, dropped = prune(qvec, cands, vectors, pipe.settings)
    built = [c for c in cands if c._evidence is not None]  # noqa: SLF001
    assert 1 <= len(kept) <= 2 and dropped == len(cands) - len(kept)
    assert sorted(c.text for c in built) == sorted(e.text for e in kept)  # built: exactly the kept ones
    assert all(e.kind == "kg" and e.sources and e.id.count("|") == 2 and -1.0 <= e.score <= 1.0 for e in kept)
    with pytest.raises(ValueError, match="exactly one"):
        Candidate(group="x")


def test_a_batch_runs_with_the_cyclic_collector_paused_and_restores_it(store, embedder, settings, monkeypatch):
    import gc

    import kgrag.evidence.checker

    seen: list[bool] = []
    decide = kgrag.evidence.checker.EvidenceChecker.decide
    monkeypatch.setattr(kgrag.evidence.checker.EvidenceChecker, "decide",
                        lambda self, *a, **k: seen.append(gc.isenabled()) or decide(self, *a, **k))
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "evidence"}), store=store, embedder=embedder,
                    generator=_NoLLM())
    question = Question(text="psoriasis associates Gene NOD2", task="true_false")
    assert gc.isenabled()
    pipe.answer_batch([question])
    assert seen == [False] and gc.isenabled()  # off inside the batch, back on after
    gc.disable()
    try:
        pipe.answer_batch([question])
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()
    with pytest.raises(QuestionError):
        pipe.answer_batch([""])
    assert gc.isenabled()


def test_question_vectors_are_embedded_beside_linking_and_match_the_inline_ones(store, embedder, settings, monkeypatch):
    import threading

    pipe = Pipeline(settings.model_copy(update={"selection_mode": "evidence", "ranking": "similarity"}), store=store,
                    embedder=embedder,
                    generator=_NoLLM())
    threads: list[str] = []
    embed = pipe.retriever.query_vectors
    monkeypatch.setattr(pipe.retriever, "query_vectors", lambda qs: threads.append(threading.current_thread().name)
                        or embed(qs))
    question = Question(text="Which genes are associated with psoriasis?", options=["NOD2", "CHEK2"])
    [overlapped] = pipe.answer_batch([question])
    assert len(threads) == 1 and threads[0].startswith("kgrag-query-vectors")
    monkeypatch.setattr(type(embedder), "thread_safe", False)  # an embedder that does not allow it: embedded inline
    [inline] = pipe.answer_batch([question])
    assert threads[1] == threading.current_thread().name
    assert [(e.text, round(e.score, 6)) for e in inline.evidence] == [(e.text, round(e.score, 6)) for e in overlapped.evidence]


def test_a_batch_answers_option_edges_from_the_neighbourhoods_it_fetched(store, embedder, settings, monkeypatch):
    from contextlib import nullcontext

    pipe = Pipeline(settings.model_copy(update={"selection_mode": "evidence"}), store=store, embedder=embedder,
                    generator=_NoLLM())
    questions = [Question(text="Which Gene is associated with psoriasis and myelodysplastic syndrome?",
                          options=["NOD2", "CHEK2", "HLA-B"]),
                 Question(text="Psoriasis associates Gene NOD2", task="true_false")]
    calls: list[str] = []
    for name in ("_fetch_neighbourhood", "_fetch_edges_between"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *args, _real=real, _name=name: calls.append(_name) or _real(*args))
    remembered = pipe.answer_batch(questions)
    # one neighbourhood read; the option edges and the checker's edges come from it
    assert calls == ["_fetch_neighbourhood"]
    monkeypatch.setattr(store, "remembering", nullcontext)
    asked = pipe.answer_batch(questions)
    assert calls[1:] == ["_fetch_neighbourhood", "_fetch_edges_between", "_fetch_edges_between"]
    assert [(a.choice, a.support, [(e.id, e.option, round(e.score, 6)) for e in a.evidence]) for a in remembered] == \
        [(a.choice, a.support, [(e.id, e.option, round(e.score, 6)) for e in a.evidence]) for a in asked]
    assert remembered[0].choice == "HLA-B" and remembered[1].choice == "True"


def test_options_are_capped_at_the_question_boundary(settings):
    """Issue 25 item 5: 10,000 options, or options of 100 kB, are refused at once naming the setting (they hung)."""
    import time

    started = time.perf_counter()
    with pytest.raises(QuestionError, match=r"10000 options; the limit is 26 \(KGRAG_MAX_OPTIONS\)"):
        validate_question("Which?", settings, options=[f"option {i}" for i in range(10_000)])
    with pytest.raises(QuestionError, match=r"option 2 .* has 100000 characters; the limit is 1000 \(KGRAG_MAX_OPTION_CHARS\)"):
        validate_question("Which?", settings, options=["short", "x" * 100_000, "y" * 500])
    assert time.perf_counter() - started < 1.0
    assert len(validate_question("Which?", settings, options=[f"o{i}" for i in range(26)]).options) == 26
    with pytest.raises(QuestionError, match="KGRAG_MAX_OPTIONS"):
        Pipeline.answer(_NoModels(settings), "Which?", options=[str(i) for i in range(27)])  # type: ignore[arg-type]


class _NoModels:
    """Only what Pipeline.answer needs before answering: the limits are checked before any model runs."""

    def __init__(self, settings):
        self.settings = settings

    def answer_batch(self, questions):  # pragma: no cover - never reached: validation refuses first
        raise AssertionError("validation should have refused the question")


def test_every_benchmark_row_passes_the_question_limits(settings, shared_data_dir):
    from eval.datasets import DATASETS, load_dataset
    from kgrag.settings import load_settings

    data = load_settings(home=settings.home, sources_dir=shared_data_dir)
    checked, refused = 0, []
    for name in DATASETS:
        for item in load_dataset(data, name).items:
            checked += 1
            try:
                validate_question(item.question, settings)
            except QuestionError as exc:  # one MedMCQA row has a single option: not a limit's doing
                if "KGRAG_MAX" in str(exc):
                    refused.append((name, item.id, str(exc)))
    assert checked > 8000 and refused == []


def test_validate_question_errors(settings):
    with pytest.raises(QuestionError, match="empty"):
        validate_question("   ", settings)
    with pytest.raises(QuestionError, match="limit"):
        validate_question("x" * (settings.max_question_chars + 1), settings)
    with pytest.raises(QuestionError, match="must be text"):
        validate_question(42, settings)  # type: ignore[arg-type]
    with pytest.raises(QuestionError, match="two non-empty options"):
        validate_question("Which?", settings, options=["A", " "])
    q = validate_question(Question(text="psoriasis is a disease", task="true_false"), settings)
    assert q.options == ["True", "False"]


def test_answer_batch_mcq_with_option_edges_and_provenance(store, embedder, smollm, settings):
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "llm", "writer": "llm"}), store=store, embedder=embedder,
                    generator=smollm)
    questions = [
        Question(text="Out of the given list, which Gene is associated with psoriasis and myelodysplastic syndrome.",
                 options=["NOD2", "CHEK2", "HLA-B"], id="q1"),
        Question(text="psoriatic arthritis is a psoriasis", task="true_false", id="q2"),
        Question(text="What is the capital of France?", id="q3"),
    ]
    a1, a2, a3 = pipe.answer_batch(questions)
    assert a1.task == "mcq" and a1.choice in questions[0].options and set(a1.option_scores) == set(questions[0].options)
    joined = [e for e in a1.evidence if e.option]
    assert joined and joined[0].option == "HLA-B"  # the edge joining an option to the question's diseases comes first
    # HLA-B joins both diseases, so both its edges lead; NOD2 joins one and follows
    assert {e.id for e in joined[:2]} == {"DOID:8893|ASSOCIATES_DaG|NCBIGene:3106", "DOID:0050908|ASSOCIATES_DaG|NCBIGene:3106"}
    assert [e.option for e in joined[2:]] == ["NOD2"]
    assert "GWAS" in joined[0].sources + joined[1].sources
    assert a2.choice in ("True", "False")
    assert any(e.id == "DOID:9008|ISA_DiD|DOID:8893" for e in a2.evidence)
    assert a3.text and a3.choice is None and not a3.entities
    assert any("no graph context found" in t for t in a3.trace)
    for a in (a1, a2, a3):
        assert a.usage.llm_calls == 1 and a.settings["graph_password"] == "***"
        assert {"linking", "graph_fetch", "pruning", "generation"} <= set(a.timings_ms)
    assert a1.usage.context_tokens > 0


def test_sentences_are_embedded_once(store, embedder, smollm, settings):
    pipe = Pipeline(settings, store=store, embedder=embedder, generator=smollm)
    q = Question(text="psoriasis associates which gene?", options=["HLA-B", "CHEK2"])
    pipe.answer_batch([q])
    before = embedder.encoded_count
    pipe.answer_batch([q])
    assert embedder.encoded_count == before  # edge sentences and the question come from the cache


class _NoLLM:
    """A generator that must not be called (evidence mode decides without the LLM)."""

    name = "none"

    def score_options(self, prompts, options):
        raise AssertionError("the LLM was asked in evidence mode")

    def score_labels(self, prompts, labels):
        raise AssertionError("the LLM was asked in evidence mode")

    def generate(self, prompts, *, max_tokens, stop=None):
        raise AssertionError("the LLM was asked in evidence mode")

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

    def reset_cache(self):
        pass

    def close(self):
        pass


def test_evidence_mode_decides_from_the_graph_and_abstains_honestly(store, embedder, settings):
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "evidence"}), store=store, embedder=embedder,
                    generator=_NoLLM())
    mcq, tf_yes, tf_not, tf_none, doid_ok, doid_bad, mcq_none = pipe.answer_batch([
        Question(text="Which Gene is associated with psoriasis and myelodysplastic syndrome?", options=["NOD2", "CHEK2", "HLA-B"]),
        Question(text="Psoriasis associates Gene NOD2", task="true_false"),
        Question(text="psoriasis is not associated with Gene HLA-B", task="true_false"),
        Question(text="breast cancer associates Gene NOD2", task="true_false"),
        Question(text="Disease ontology identifier for psoriasis is DOID:8893", task="true_false"),
        Question(text="Disease ontology identifier for psoriasis is DOID:1612", task="true_false"),
        Question(text="Which Gene is associated with breast cancer?", options=["NOD2", "HLA-B"]),
    ])
    assert mcq.choice == "HLA-B" and not mcq.abstained and mcq.selection_mode == "evidence"
    assert any(e.option == "HLA-B" and e.sources for e in mcq.evidence)
    assert tf_yes.choice == "True" and any("DOID:8893|ASSOCIATES_DaG|NCBIGene:64127" == e.id for e in tf_yes.evidence)
    assert tf_not.choice == "False"
    assert tf_none.choice is None and tf_none.abstained and "unsupported" in tf_none.text
    assert doid_ok.choice == "True" and doid_bad.choice == "False"
    assert mcq_none.choice is None and mcq_none.abstained
    # what decided each answer, in the Answer: direct edges, a stated identifier; nothing where it abstained
    assert (mcq.support, tf_yes.support, tf_not.support, doid_ok.support) == ("direct", "direct", "direct", "identifier")
    assert mcq.support_confidence == 1.0 and tf_none.support is None and mcq_none.support is None
    assert all(e.support == "direct" and e.path == [e.id] for e in tf_yes.evidence if e.id.endswith("NCBIGene:64127"))


def test_a_subtypes_edge_decides_inferred_and_is_marked_in_the_answer(store, embedder, settings):
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "evidence"}), store=store, embedder=embedder,
                    generator=_NoLLM())
    # psoriatic arthritis is a psoriasis: nothing joins psoriasis to CAT directly, its subtype is added here
    store.load_edges([EdgeRecord(source_id="DOID:9008", type="ASSOCIATES_DaG", target_id="NCBIGene:847", sources=["DISEASES"])])
    [a] = pipe.answer_batch([Question(text="Psoriasis associates Gene CAT", task="true_false")])
    assert a.choice == "True" and a.support == "ontology" and a.support_confidence == pytest.approx(0.8)
    [inferred] = [e for e in a.evidence if e.support == "ontology"]
    assert inferred.path == ["DOID:9008|ASSOCIATES_DaG|NCBIGene:847", "DOID:9008|ISA_DiD|DOID:8893"]
    assert "evidence: inferred" in " ".join(a.trace)


def test_llm_plus_evidence_uses_the_llm_only_where_evidence_is_silent(store, embedder, smollm, settings):
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "llm+evidence"}), store=store, embedder=embedder,
                    generator=smollm)
    decided, silent = pipe.answer_batch([
        Question(text="Which Gene is associated with psoriasis and myelodysplastic syndrome?", options=["NOD2", "CHEK2", "HLA-B"]),
        Question(text="Which Gene is associated with lung fibrosis?", options=["NOD2", "CHEK2"]),
    ])
    assert decided.choice == "HLA-B" and decided.option_scores is None and decided.usage.llm_calls == 0
    assert silent.choice in ("NOD2", "CHEK2") and silent.option_scores is not None and silent.usage.llm_calls == 1


def test_free_text_claims_get_graph_verdicts(store, embedder, settings):
    from kgrag.evidence.checker import EvidenceChecker

    pipe = Pipeline(settings, store=store, embedder=embedder, generator=_NoLLM())
    checker = EvidenceChecker(store)
    text = "Psoriasis is linked to HLA-B. Breast cancer is caused by NOD2."
    sentences = [["Psoriasis is linked to HLA-B.", "Breast cancer is caused by NOD2."]]
    [verdicts] = checker.claims([text], [pipe.retriever.linker.link(sentences[0])], sentences)
    by_pair = {(v.head, v.tail): v for v in verdicts}
    assert by_pair[("psoriasis", "HLA-B")].verdict == "graph" and by_pair[("psoriasis", "HLA-B")].sources == ["GWAS"]
    assert by_pair[("breast cancer", "NOD2")].verdict == "unsupported"


def test_gated_dynamic_loop_records_both_stages(store, embedder, smollm, settings, tmp_path):
    """gate_mode=gated on a real Infini-gram index: stage 1 before retrieval, stage 2 after each sentence."""
    from quco.gate import Gate
    from quco.index_builder import build_index, jsonl_texts
    from quco.stats import LocalInfiniGramStats

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(
        '{"text": "%s"}' % t for t in [
            "Psoriasis is associated with HLA-B in genome-wide studies.",
            "HLA-B alleles and psoriasis risk were studied in families.",
            "Metformin is used for type 2 diabetes.",
        ]) + "\n")
    build_index(jsonl_texts(corpus), tmp_path / "stats")
    gated = settings.model_copy(update={"gate_mode": "gated", "entity_freq_threshold_per_billion": 1e9,
                                        "max_answer_sentences": 2, "writer": "llm"})
    gate = Gate(LocalInfiniGramStats(tmp_path / "stats"), gated)
    pipe = Pipeline(gated, store=store, embedder=embedder, generator=smollm, gate=gate)
    [a] = pipe.answer_batch([Question(text="Which genes are associated with psoriasis?")])
    stage1 = [d for d in a.gate if d.stage == 1]
    assert len(stage1) == 1 and stage1[0].retrieve and "count:psoriasis" in stage1[0].counts
    assert stage1[0].counts["count:psoriasis"] == 2
    assert a.usage.retrievals >= 1 and a.evidence  # stage 1 retrieved graph context
    assert 1 <= len([d for d in a.gate if d.stage == 2]) <= 2  # one check per generated sentence
    assert a.text and a.usage.llm_calls >= 1

    never = Pipeline(gated.model_copy(update={"gate_mode": "never"}), store=store, embedder=embedder, generator=smollm)
    [b] = never.answer_batch([Question(text="Which genes are associated with psoriasis?")])
    assert b.usage.retrievals == 0 and not b.evidence and not b.gate


def test_readers_share_an_embedded_graph_and_cannot_write(tmp_path):
    """The pipeline opens the embedded graph read-only, so several processes can answer at once."""
    import subprocess
    import sys

    from kgrag.errors import GraphStoreError
    from kgrag.graph.ladybug_store import LadybugGraphStore

    path = tmp_path / "g.lbug"
    writer = LadybugGraphStore(path)
    writer.load_nodes(TINY_NODES)
    writer.close()
    reader = LadybugGraphStore(path, read_only=True)
    code = f"from kgrag.graph.ladybug_store import LadybugGraphStore as L; print(L({str(path)!r}, read_only=True).schema().total_nodes)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert other.stdout.strip() == str(len(TINY_NODES)) and reader.schema().total_nodes == len(TINY_NODES)
    with pytest.raises(GraphStoreError, match="read-only"):
        reader.load_nodes([NodeRecord(id="X:1", label="Disease", name="x")])
    reader.close()


def test_a_free_question_gets_a_verdict_for_its_own_claim(store, embedder, smollm, settings):
    pipe = Pipeline(settings.model_copy(update={"llm_max_new_tokens": 8}), store=store, embedder=embedder, generator=smollm)
    [a] = pipe.answer_batch([Question(text="Is psoriasis associated with HLA-B?")])
    [claim] = [c for c in a.claims if c.sentence == "Is psoriasis associated with HLA-B?"]
    assert claim.verdict == "graph" and claim.sources == ["GWAS"] and {claim.head, claim.tail} == {"psoriasis", "HLA-B"}


def test_a_failed_statistics_lookup_is_unknown_not_unsupported(store, embedder, settings):
    from kgrag.evidence.checker import EvidenceChecker

    class BrokenStats:
        def cooccur(self, pairs, window):
            raise OSError("index unreadable")

    pipe = Pipeline(settings, store=store, embedder=embedder, generator=_NoLLM())
    sentences = [["Breast cancer is caused by NOD2.", "Psoriasis is linked to HLA-B."]]
    [verdicts] = EvidenceChecker(store, BrokenStats()).claims(["x"], [pipe.retriever.linker.link(sentences[0])], sentences)
    by_pair = {(v.head, v.tail): v for v in verdicts}
    assert by_pair[("breast cancer", "NOD2")].verdict == "unknown" and "index unreadable" in by_pair[("breast cancer", "NOD2")].note
    assert by_pair[("psoriasis", "HLA-B")].verdict == "graph"  # the graph still decides where it can


def test_a_bug_in_a_statistics_backend_is_raised_not_read_as_unknown(store, embedder, settings):
    from kgrag.evidence.checker import EvidenceChecker

    class BuggyStats:
        def cooccur(self, pairs, window):
            raise TypeError("unsupported operand")

    linker = Pipeline(settings, store=store, embedder=embedder, generator=_NoLLM()).retriever.linker
    sentences = [["Breast cancer is caused by NOD2."]]
    with pytest.raises(TypeError, match="unsupported operand"):
        EvidenceChecker(store, BuggyStats()).claims(["x"], [linker.link(sentences[0])], sentences)


class _Recording(WrappedGenerator):
    """Wraps a real generator; records each scoring call, and can hide every label (as a server's top-20 might)."""

    def __init__(self, inner, *, hide_labels: bool = False) -> None:
        super().__init__(inner)
        self.hide_labels = hide_labels
        self.label_calls: list[tuple[list, list]] = []
        self.option_calls: list[list] = []

    def score_labels(self, prompts, labels):
        self.label_calls.append((list(prompts), [list(row) for row in labels]))
        if self.hide_labels:
            return [[float("-inf")] * len(row) for row in labels]
        return self.inner.score_labels(prompts, labels)

    def score_options(self, prompts, options):
        self.option_calls.append([list(row) for row in options])
        return self.inner.score_options(prompts, options)


def test_label_scoring_is_one_call_per_batch_with_lettered_options(store, embedder, smollm, settings):
    recording = _Recording(smollm)
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "llm", "option_scoring": "label"}), store=store,
                    embedder=embedder, generator=recording)
    mcq, tf = pipe.answer_batch([
        Question(text="Which Gene is associated with psoriasis?", options=["NOD2", "CHEK2", "HLA-B"]),
        Question(text="Psoriasis associates Gene NOD2", task="true_false"),
    ])
    assert len(recording.label_calls) == 1 and recording.option_calls == []
    prompts, labels = recording.label_calls[0]
    assert labels == [["A", "B", "C"], ["True", "False"]]
    assert "A. NOD2\nB. CHEK2\nC. HLA-B" in prompts[0].user and "letter" in prompts[0].user
    assert mcq.choice in ("NOD2", "CHEK2", "HLA-B") and set(mcq.option_scores) == {"NOD2", "CHEK2", "HLA-B"}
    assert mcq.option_scores[mcq.choice] == max(mcq.option_scores.values())
    assert tf.choice in ("True", "False") and "option scoring: label (one request)" in tf.trace
    assert "option_scoring=label" in tf.trace and mcq.usage.llm_calls == 1 and mcq.usage.prompt_tokens > 0


def test_label_scoring_falls_back_to_likelihood_when_no_label_is_likely(store, embedder, smollm, settings):
    recording = _Recording(smollm, hide_labels=True)
    pipe = Pipeline(settings.model_copy(update={"selection_mode": "llm", "option_scoring": "label"}), store=store,
                    embedder=embedder, generator=recording)
    [mcq] = pipe.answer_batch([Question(text="Which Gene is associated with psoriasis?", options=["NOD2", "HLA-B"])])
    assert recording.option_calls == [[["NOD2", "HLA-B"]]]  # one call, one question
    assert any("scored by likelihood" in t for t in mcq.trace)
    assert all(v > float("-inf") for v in mcq.option_scores.values())
    likelihood = Pipeline(settings.model_copy(update={"selection_mode": "llm", "option_scoring": "likelihood"}),
                          store=store, embedder=embedder, generator=_Recording(smollm))
    [again] = likelihood.answer_batch([Question(text="Which Gene is associated with psoriasis?", options=["NOD2", "HLA-B"])])
    assert again.option_scores == pytest.approx(mcq.option_scores) and likelihood.generator.label_calls == []
