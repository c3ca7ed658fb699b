"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, backed by a real transformers model.

It answers ``POST /v1/chat/completions`` (greedy generation, ``stop``, usage) and
``POST /v1/completions`` with ``echo``/``logprobs`` (per-token log-probabilities and text offsets of
the prompt), the subset of the API that :class:`OpenAICompatibleGenerator` uses, as vLLM does.
Every request body is recorded in ``requests`` so tests can check the request shape.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from kgrag.generators.base import Prompt
from kgrag.generators.transformers_backend import TransformersGenerator


class OpenAITestServer:
    def __init__(self, generator: TransformersGenerator) -> None:
        self.generator = generator
        self.requests: list[tuple[str, dict]] = []
        self.fail_next = 0  # answer this many requests with 503 first (to test retries)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, body))
                if server.fail_next > 0:
                    server.fail_next -= 1
                    return self._send(503, {"error": "busy"})
                if self.path == "/v1/chat/completions":
                    return self._send(200, server.chat(body))
                if self.path == "/v1/completions":
                    return self._send(200, server.completions(body))
                self._send(404, {"error": f"no route {self.path}"})

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "OpenAITestServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def chat(self, body: dict) -> dict:
        messages = body["messages"]
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = next(m["content"] for m in messages if m["role"] == "user")
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
