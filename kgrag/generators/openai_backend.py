"""Generator for any OpenAI-compatible server (``vllm serve``, llama.cpp server, TGI, ...).

Generation uses ``POST {base}/chat/completions`` (one request per prompt, sent concurrently);
option scoring uses ``POST {base}/completions`` with ``echo=true, logprobs=0, max_tokens=1`` over a
template-free rendering of the prompt (:meth:`Prompt.plain`), all prompt+option strings of the
batch in ONE request, and reads the option tokens' log-probabilities from ``text_offset``.

Example::

    gen = OpenAICompatibleGenerator("http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")
    gen.generate([Prompt(user="Name a gene linked to psoriasis.")], max_tokens=20)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from kgrag.errors import BackendUnavailableError
from kgrag.generators.base import Generation, Prompt
from kgrag.settings import Settings


class OpenAICompatibleGenerator:
    """Talks to an OpenAI-compatible HTTP endpoint; retries transient failures with backoff."""

    def __init__(self, base_url: str, *, model: str, api_key: str = "EMPTY", temperature: float = 0.0,
                 timeout_s: float = 120.0, retries: int = 3, concurrency: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}@{self.base_url}"
        self.temperature = temperature
        self.retries = retries
        self.concurrency = concurrency
        self._client = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"})

    @classmethod
    def from_settings(cls, settings: Settings) -> "OpenAICompatibleGenerator":
        return cls(settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key.get_secret_value(),
                   temperature=settings.llm_temperature, timeout_s=settings.llm_timeout_s)

    def _post(self, path: str, payload: dict) -> dict:
        url = f"{self.base_url}{path}"
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(url, json=payload)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise BackendUnavailableError(f"LLM server at {url} unreachable: {exc}") from exc
            else:
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        raise BackendUnavailableError(f"LLM server {url} answered {response.status_code}: {response.text[:300]}")
                    return response.json()
                if attempt == self.retries:
                    raise BackendUnavailableError(f"LLM server {url} answered {response.status_code} after {attempt + 1} tries")
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[Generation]:
        def one(prompt: Prompt) -> Generation:
            payload = {"model": self.model, "messages": prompt.messages(), "max_tokens": max_tokens,
                       "temperature": self.temperature}
            if stop:
                payload["stop"] = list(stop)
            data = self._post("/chat/completions", payload)
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            text = choice["message"]["content"] or ""
            # OpenAI servers drop the stop string (vLLM names it in stop_reason); keep it so sentences stay whole
            finish = choice.get("finish_reason")
            if finish == "stop":
                if stop and choice.get("stop_reason") in stop:
                    text += choice["stop_reason"]
                else:
                    finish = "eos"
            return Generation(text=text.strip(), prompt_tokens=usage.get("prompt_tokens", 0),
                              completion_tokens=usage.get("completion_tokens", 0), finish_reason=finish)

        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(one, prompts))

    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        bases, texts = [], []
        for prompt, opts in zip(prompts, options):
            base = prompt.plain()
            for option in opts:
                bases.append(len(base))
                texts.append(f"{base} {option}")
        if not texts:
            return [[] for _ in prompts]
        data = self._post("/completions", {"model": self.model, "prompt": texts, "max_tokens": 1, "echo": True,
                                           "logprobs": 0, "temperature": 0.0})
        by_index = {c["index"]: c for c in data["choices"]}
        flat = []
        for i, start in enumerate(bases):
            logprobs = by_index[i]["logprobs"]
            values = [lp for lp, off in zip(logprobs["token_logprobs"], logprobs["text_offset"])
                      if off >= start and lp is not None and off < len(texts[i])]
            flat.append(sum(values) / len(values) if values else float("-inf"))
        result, cursor = [], 0
        for opts in options:
            result.append(flat[cursor:cursor + len(opts)])
            cursor += len(opts)
        return result

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Approximate (4 characters per token): the server's tokenizer is not available here."""
        return [max(1, len(t) // 4) for t in texts]
