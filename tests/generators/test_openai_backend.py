"""OpenAICompatibleGenerator against real local HTTP servers: timeouts that scale with the prompt and are never
re-sent, retries only where the server never took the request (or answered 5xx/429), clear errors for malformed
answers, exact token counts from /tokenize (with the estimate as fallback), and label scoring in one request per
prompt from the real model's next-token distribution."""

from __future__ import annotations

import socket
import time

import pytest
import torch

from kgrag.errors import BackendUnavailableError
from kgrag.generators.base import Prompt
from kgrag.generators.openai_backend import OpenAICompatibleGenerator
from tests.openai_server import OpenAITestServer

TOP_LOGPROBS = 20  # what the client must ask for (vLLM's default --max-logprobs)
SECRET = "sk-test-secret-0123456789"
QUESTION = Prompt(user="Which of these is a gene associated with psoriasis?\nA. HLA-B\nB. water\nC. the moon\n"
                  "Answer with the letter only.")
TRUE_FALSE = Prompt(user="Is the sky blue? Answer True or False.")


def client(base_url: str, **kwargs) -> OpenAICompatibleGenerator:
    """A client with short timeouts and fast backoff, so failure tests take a second at most."""
    options = {"model": "smollm2", "api_key": SECRET, "timeout_s": 30.0, "timeout_per_1k_tokens_s": 0.0,
               "connect_timeout_s": 2.0, "retries": 2, "backoff_s": 0.01}
    return OpenAICompatibleGenerator(base_url, **{**options, **kwargs})


def sent_timeouts(gen: OpenAICompatibleGenerator) -> list[dict]:
    """Records the timeouts httpx actually applies to every request the client sends (retries included)."""
    seen: list[dict] = []
    gen._client.event_hooks["request"].append(lambda request: seen.append(dict(request.extensions["timeout"])))
    return seen


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- timeouts ------------------------------------------------------------------------------------
def test_read_timeout_grows_with_the_prompt(smollm):
    gen = OpenAICompatibleGenerator("http://127.0.0.1:1/v1", model="m", timeout_s=60, timeout_per_1k_tokens_s=30)
    assert gen.read_timeout_s(0) == 60 and gen.read_timeout_s(1000) == 90 and gen.read_timeout_s(4000) == 180

    with OpenAITestServer(smollm, fault="empty_choices") as server:  # answers at once, without running the model
        gen = client(server.base_url, timeout_s=5.0, timeout_per_1k_tokens_s=30.0, connect_timeout_s=3.0)
        seen = sent_timeouts(gen)
        for prompt in (Prompt(user="hi"), Prompt(system="s" * 4000, user="u" * 36_000)):  # ~0 and 10,000 tokens
            with pytest.raises(BackendUnavailableError):
                gen.generate([prompt], max_tokens=1)
        gen.count_tokens(["x" * 8000])  # 2,000 tokens, on /tokenize
    assert [t["connect"] for t in seen] == [3.0, 3.0, 3.0]
    assert seen[0]["read"] == pytest.approx(5.0, abs=0.05)
    assert seen[1]["read"] == pytest.approx(5.0 + 30.0 * 10.0, abs=0.1)
    assert seen[2]["read"] == pytest.approx(5.0 + 30.0 * 2.0)


def test_slow_server_gets_one_request_and_a_clear_error(smollm):
    with OpenAITestServer(smollm, delay_s=5.0) as server:
        gen = client(server.base_url, timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as caught:
            gen.generate([Prompt(user="Say hi.")], max_tokens=2)
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # nothing is re-sent later either
        assert server.request_count == 1
    message = str(caught.value)
    assert elapsed < 2.0
    assert f"{server.base_url}/chat/completions" in message and "0.5 s" in message
    assert "KGRAG_LLM_TIMEOUT_S" in message and "KGRAG_LLM_TIMEOUT_PER_1K_TOKENS_S" in message
    assert "still be working" in message and "smaller batch" in message and "faster model" in message
    assert SECRET not in message


def test_slow_server_batch_stops_at_the_first_timeout(smollm):
    with OpenAITestServer(smollm, delay_s=5.0) as server:
        gen = client(server.base_url, timeout_s=0.5, concurrency=1)
        with pytest.raises(BackendUnavailableError, match="did not answer within"):
            gen.generate([Prompt(user=f"Question {i}") for i in range(4)], max_tokens=2)
        assert server.request_count == 1  # the three not yet sent were cancelled


# -- retries -------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [503, 429])
def test_overloaded_answer_then_success_is_retried(smollm, status):
    with OpenAITestServer(smollm) as server:
        server.fail_status, server.fail_next = status, 1
        [g] = client(server.base_url).generate([Prompt(user="Say hi.")], max_tokens=2)
        assert g.text and server.request_count == 2


def test_connection_closed_without_answer_is_retried(smollm):
    with OpenAITestServer(smollm) as server:
        server.drop_next = 2
        [g] = client(server.base_url, retries=2).generate([Prompt(user="Say hi.")], max_tokens=2)
        assert g.text and server.request_count == 3


def test_persistent_5xx_stops_after_the_retries(smollm):
    with OpenAITestServer(smollm) as server:
        server.fail_next = 10
        with pytest.raises(BackendUnavailableError) as caught:
            client(server.base_url, retries=2).generate([Prompt(user="Say hi.")], max_tokens=2)
        assert server.request_count == 3
    message = str(caught.value)
    assert "503 after 3 tries" in message and server.base_url in message and "KGRAG_LLM_RETRIES" in message


def test_connection_refused_is_retried_then_a_clear_error():
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    gen = client(base_url, retries=2)
    attempts = sent_timeouts(gen)
    with pytest.raises(BackendUnavailableError) as caught:
        gen.generate([Prompt(user="hi")], max_tokens=2)
    assert len(attempts) == 3  # one try and llm_retries=2 retries
    message = str(caught.value)
    assert "unreachable after 3 tries" in message and base_url in message
    assert "KGRAG_LLM_BASE_URL" in message and "KGRAG_LLM_RETRIES" in message and SECRET not in message


def test_client_error_is_not_retried(smollm):
    with OpenAITestServer(smollm) as server:
        server.fail_status, server.fail_next = 400, 1
        with pytest.raises(BackendUnavailableError) as caught:
            client(server.base_url).generate([Prompt(user="Say hi.")], max_tokens=2)
        assert server.request_count == 1
    message = str(caught.value)
    assert "rejected the request with 400" in message and "failed" in message and "KGRAG_LLM_MODEL" in message


# -- malformed answers ---------------------------------------------------------------------------
@pytest.mark.parametrize(("fault", "call", "missing"), [
    ("malformed_json", "generate", "not a JSON object"),
    ("empty_choices", "generate", "without any choice"),
    ("no_message", "generate", "without choices[0].message"),
    ("empty_choices", "score_labels", "without any choice"),
    ("no_logprobs", "score_labels", "without choices[0].logprobs.content"),
    ("empty_choices", "score_options", "without any choice"),
    ("no_logprobs", "score_options", "without choices[0].logprobs.token_logprobs"),
])
def test_malformed_answer_is_a_clear_error(smollm, fault, call, missing):
    prompt = Prompt(user="Is HLA-B a gene? A. yes B. no")
    calls = {"generate": lambda gen: gen.generate([prompt], max_tokens=2),
             "score_labels": lambda gen: gen.score_labels([prompt], [["A", "B"]]),
             "score_options": lambda gen: gen.score_options([prompt], [["yes", "no"]])}
    with OpenAITestServer(smollm, fault=fault) as server:
        with pytest.raises(BackendUnavailableError) as caught:
            calls[call](client(server.base_url))
        assert server.request_count == 1  # a malformed answer is not re-sent
    message = str(caught.value)
    assert missing in message and server.base_url in message and SECRET not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None  # no KeyError/JSONDecodeError inside


# -- token counts --------------------------------------------------------------------------------
def test_count_tokens_uses_the_servers_tokenizer(smollm):
    texts = ["Disease psoriasis associates Gene HLA-B.", "rs12345 ΔF508 TNF-α IL-23/IL-17 axis", "a b c d e f g h", ""]
    expected = smollm.count_tokens(texts)
    estimates = [max(1, len(t) // 4) for t in texts]
    assert expected[:3] != estimates[:3]  # so a fallback to the estimate would fail this test
    with OpenAITestServer(smollm) as server:
        gen = client(server.base_url)
        assert gen.count_tokens(texts) == expected
        assert gen.token_counts == "exact"
        assert server.request_count == 3  # the empty text needs no request
        assert all(path == "/tokenize" for path, _ in server.requests)
        assert server.requests[0][1] == {"model": "smollm2", "prompt": texts[0], "add_special_tokens": False}


def test_count_tokens_falls_back_on_a_server_without_tokenize(smollm):
    texts = ["Disease psoriasis associates Gene HLA-B.", "rs12345 ΔF508 TNF-α IL-23/IL-17 axis"]
    with OpenAITestServer(smollm, tokenize=False) as server:
        gen = client(server.base_url)
        name = gen.name
        assert gen.count_tokens(texts) == [len(t) // 4 for t in texts]
        assert gen.token_counts == "approximate" and gen.name == name
        assert server.request_count == 1  # one probe
        assert gen.count_tokens(texts) == [len(t) // 4 for t in texts]
        assert server.request_count == 1  # not probed again


def test_generation_takes_prompt_tokens_from_usage(smollm):
    prompts = [Prompt(user="Say hi."), Prompt(system="Be brief.", user="Name one organ of the human body.")]
    with OpenAITestServer(smollm) as server:
        gen = client(server.base_url)
        generations = gen.generate(prompts, max_tokens=3)
    exact = [len(smollm._prompt_ids(p)) for p in prompts]
    assert [g.prompt_tokens for g in generations] == exact == gen.last_prompt_tokens
    assert all(0 < g.completion_tokens <= 3 for g in generations)


# -- label scoring -------------------------------------------------------------------------------
@torch.inference_mode()
def next_token_logprobs(smollm, prompt: Prompt) -> torch.Tensor:
    ids = smollm._prompt_ids(prompt)
    return torch.log_softmax(smollm.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)


def label_outside_top(smollm, logprobs: torch.Tensor, k: int) -> str:
    """A single-token label the model ranks just below its top k (so a client asking for more alternatives,
    or reading the wrong ones, would score it)."""
    order = torch.argsort(logprobs, descending=True).tolist()
    top = {smollm.tokenizer.decode([i]).strip() for i in order[:k]}
    for i in order[k:k + 100]:
        text = smollm.tokenizer.decode([i]).strip()
        if text.isalpha() and text not in top and smollm.tokenizer.encode(text, add_special_tokens=False) == [i]:
            return text
    raise AssertionError("no single-token label just outside the top alternatives")


def test_score_labels_one_request_per_prompt_from_the_real_distribution(smollm):
    local = [next_token_logprobs(smollm, p) for p in (QUESTION, TRUE_FALSE)]
    outsider = label_outside_top(smollm, local[0], TOP_LOGPROBS)
    labels = [["A", "B", "C", outsider], ["False", "True"]]
    tok = smollm.tokenizer
    expected = [[lp[tok.encode(label, add_special_tokens=False)[0]].item() for label in row]
                for lp, row in zip(local, labels)]

    with OpenAITestServer(smollm) as server:
        gen = client(server.base_url)
        scores = gen.score_labels([QUESTION, TRUE_FALSE], labels)
        assert server.request_count == 2  # one request per prompt, whatever the number of labels
        for path, body in server.requests:
            assert path == "/v1/chat/completions"
            assert body["max_tokens"] == 1 and body["temperature"] == 0.0
            assert body["logprobs"] is True and body["top_logprobs"] == TOP_LOGPROBS
        assert {body["messages"][-1]["content"] for _, body in server.requests} == {QUESTION.user, TRUE_FALSE.user}

    question, true_false = scores
    assert question[:3] == pytest.approx(expected[0][:3], abs=1e-4)
    assert question[3] == float("-inf")  # ranked just below the top 20 the server returns
    assert expected[0][3] > -30  # the label is a likely token all the same: only the cut-off hides it
    assert true_false == pytest.approx(expected[1], abs=1e-4)
    # the label the real model puts first scores highest
    assert max(range(3), key=lambda i: question[i]) == max(range(3), key=lambda i: expected[0][i])
    assert (true_false[1] > true_false[0]) == (expected[1][1] > expected[1][0])
    assert gen.last_prompt_tokens == [len(smollm._prompt_ids(QUESTION)), len(smollm._prompt_ids(TRUE_FALSE))]


def test_score_labels_without_labels_sends_nothing(smollm):
    with OpenAITestServer(smollm) as server:
        assert client(server.base_url).score_labels([QUESTION], [[]]) == [[]]
        assert server.request_count == 0


def test_from_settings_passes_the_timeout_and_retry_settings(tmp_settings):
    settings = tmp_settings.model_copy(update={"llm_base_url": "http://127.0.0.1:1/v1/", "llm_timeout_s": 12.0,
                                               "llm_timeout_per_1k_tokens_s": 7.0, "llm_retries": 5})
    gen = OpenAICompatibleGenerator.from_settings(settings)
    assert (gen.timeout_s, gen.timeout_per_1k_tokens_s, gen.retries) == (12.0, 7.0, 5)
    assert gen.base_url == "http://127.0.0.1:1/v1" and gen.root_url == "http://127.0.0.1:1"
    assert gen.read_timeout_s(2000) == pytest.approx(26.0)
