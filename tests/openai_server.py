"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, backed by a real transformers model.

It answers ``POST /v1/chat/completions`` (greedy generation, ``stop``, usage; with ``logprobs``/``top_logprobs``
the chosen tokens' log-probabilities and their top alternatives from the model's next-token distribution),
``POST /v1/completions`` with ``echo``/``logprobs`` (per-token log-probabilities and text offsets of
the prompt) and vLLM's ``POST /tokenize`` (the model's own tokenizer; ``tokenize=False`` answers 404 as
servers without it do): the subset of the API that :class:`OpenAICompatibleGenerator` uses, as vLLM does.
Every request body is recorded in ``requests`` (``request_count`` counts them) so tests can check the
request shape and how often a request was sent.

Faults, to test the client against slow or failing servers:

* ``fail_next`` answers that many requests with ``fail_status`` (503) first;
* ``drop_next`` closes that many connections without any answer;
* ``delay_s`` sleeps that long before answering (the request is recorded first);
* ``fault``: ``"malformed_json"`` (a 200 body that is not JSON), ``"empty_choices"`` (``{"choices": []}``),
  ``"no_message"`` (choices without ``message``), ``"no_logprobs"`` (choices without ``logprobs``).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from kgrag.generators.base import Prompt
from kgrag.generators.transformers_backend import TransformersGenerator


FAULTS = (None, "malformed_json", "empty_choices", "no_message", "no_logprobs")


class OpenAITestServer:
    def __init__(self, generator: TransformersGenerator, *, tokenize: bool = True, delay_s: float = 0.0,
                 fault: str | None = None) -> None:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        self.generator = generator
        self.requests: list[tuple[str, dict]] = []
        self.fail_next = 0  # answer this many requests with fail_status first (to test retries)
        self.fail_status = 503
        self.drop_next = 0  # close this many connections without answering
        self.delay_s = delay_s
        self.fault = fault
        self.tokenize = tokenize
        self._lock = threading.Lock()  # one model forward at a time
        self._faults_lock = threading.Lock()
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._faults_lock:
                    server.requests.append((self.path, body))
                    drop = server.drop_next > 0
                    fail = not drop and server.fail_next > 0
                    if drop:
                        server.drop_next -= 1
                    elif fail:
                        server.fail_next -= 1
                if drop:
                    self.close_connection = True
                    return
                if fail:
                    return self._send(server.fail_status, {"error": "busy" if server.fail_status == 503 else "failed"})
                if server.delay_s > 0 and server._closing.wait(server.delay_s):
                    return
                if self.path in ("/v1/chat/completions", "/v1/completions"):
                    if server.fault in ("malformed_json", "empty_choices"):  # no need to run the model
                        return self._send(200, server._apply_fault({"choices": []}))
                    answer = server.chat(body) if self.path == "/v1/chat/completions" else server.completions(body)
                    return self._send(200, server._apply_fault(answer))
                if self.path == "/tokenize" and server.tokenize:
                    return self._send(200, server.tokenize_answer(body))
                self._send(404, {"error": f"no route {self.path}"})

            def _send(self, status: int, payload: dict | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "OpenAITestServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def _apply_fault(self, answer: dict) -> dict | bytes:
        if self.fault == "malformed_json":
            return b"<html>502 Bad Gateway</html>"
        if self.fault == "empty_choices":
            return {"choices": []}
        for choice in answer["choices"]:
            if self.fault == "no_message":
                choice.pop("message", None)
            if self.fault == "no_logprobs":
                choice.pop("logprobs", None)
        return answer

    def tokenize_answer(self, body: dict) -> dict:
        ids = self.generator.tokenizer(body["prompt"], add_special_tokens=body.get("add_special_tokens", True)).input_ids
        return {"count": len(ids), "max_model_len": 8192, "tokens": ids}

    def chat(self, body: dict) -> dict:
        messages = body["messages"]
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = next(m["content"] for m in messages if m["role"] == "user")
        if body.get("logprobs"):
            return self.chat_with_logprobs(Prompt(system=system, user=user), body)
        stop = body.get("stop")
        with self._lock:
            [gen] = self.generator.generate([Prompt(system=system, user=user)], max_tokens=body.get("max_tokens", 16), stop=stop)
        text, stop_reason = gen.text, None
        for s in stop or []:  # OpenAI servers drop the stop string and report it
            if text.endswith(s.strip()):
                text, stop_reason = text[: len(text) - len(s.strip())], s
                break
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": gen.finish_reason, "stop_reason": stop_reason}],
                "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens}}

    @torch.inference_mode()
    def completions(self, body: dict) -> dict:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        tok = self.generator.tokenizer
        choices = []
        for index, text in enumerate(prompts):
            enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
            ids = enc.input_ids
            with self._lock:
                logits = self.generator.model(input_ids=torch.tensor([ids])).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            token_logprobs = [None] + [logprobs[j - 1, ids[j]].item() for j in range(1, len(ids))]
            choices.append({"index": index, "text": text, "finish_reason": "length",
                            "logprobs": {"tokens": tok.convert_ids_to_tokens(ids), "token_logprobs": token_logprobs,
                                         "text_offset": [start for start, _ in enc.offset_mapping]}})
        return {"choices": choices, "usage": {"prompt_tokens": 0, "completion_tokens": 0}}

    @torch.inference_mode()
    def chat_with_logprobs(self, prompt: Prompt, body: dict) -> dict:
        """Greedy reply token by token, each with its log-probability and the ``top_logprobs`` most likely
        alternatives (decoded token text, as vLLM returns them) from the model's next-token distribution."""
        tok = self.generator.tokenizer
        ids = self.generator._prompt_ids(prompt)
        prompt_tokens = len(ids)
        k = int(body.get("top_logprobs") or 0)
        max_tokens = body.get("max_tokens", 16)
        content, reply = [], []

        def entry(token_id: int, logprob: float) -> dict:
            text = tok.decode([token_id])
            return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

        for _ in range(max_tokens):
            with self._lock:
                logits = self.generator.model(input_ids=torch.tensor([ids])).logits[0, -1]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            chosen = int(logprobs.argmax())
            top = torch.topk(logprobs, k) if k else None
            content.append({**entry(chosen, logprobs[chosen].item()),
                            "top_logprobs": [] if top is None else [entry(int(i), v.item()) for v, i in zip(top.values, top.indices)]})
            reply.append(chosen)
            ids = ids + [chosen]
            if chosen == tok.eos_token_id:
                break
        finish = "stop" if reply[-1] == tok.eos_token_id else "length"
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": tok.decode(reply, skip_special_tokens=True)},
                             "logprobs": {"content": content}, "finish_reason": finish, "stop_reason": None}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(reply)}}
