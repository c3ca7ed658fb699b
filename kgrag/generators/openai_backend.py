"""Generator for any OpenAI-compatible server (``vllm serve``, llama.cpp server, TGI, ...).

Requests:

* generation: ``POST {base}/chat/completions``, one request per prompt, sent concurrently;
* label scoring (:meth:`score_labels`): ``POST {base}/chat/completions`` with ``max_tokens=1, temperature=0,
  logprobs=true, top_logprobs=20``, ONE request per prompt (sent concurrently) whatever the number of labels;
  each label scores the log-probability of the first reply token that equals it (spaces stripped) among the
  20 alternatives, ``-inf`` where it is not among them;
* option scoring (:meth:`score_options`): ``POST {base}/completions`` with ``echo=true, logprobs=0,
  max_tokens=1`` over a template-free rendering of the prompt (:meth:`Prompt.plain`), all prompt+option
  strings of the batch in ONE request; the option tokens' log-probabilities are read from ``text_offset``;
* token counts (:meth:`count_tokens`): vLLM's ``POST {root}/tokenize`` (``root`` is the base URL without a
  trailing ``/v1``), one request per text, sent concurrently, so counts come from the server's own tokenizer
  (``token_counts == "exact"``). A server without that route (404/405 on the first probe) gets the estimate
  of 4 characters per token from then on, without probing again (``token_counts == "approximate"``;
  ``None`` until the first count). Generation and label scoring take prompt token counts from the answer's
  ``usage`` (estimated only where a server leaves it out); :attr:`last_prompt_tokens` keeps them per prompt
  of the latest :meth:`generate` or :meth:`score_labels` call.

Timeouts and retries (settings ``llm_timeout_s``, ``llm_timeout_per_1k_tokens_s``, ``llm_retries``):

* each request may connect for ``connect_timeout_s`` (10 s) and then waits for its answer for
  ``llm_timeout_s + llm_timeout_per_1k_tokens_s * prompt_tokens / 1000`` seconds, the prompt tokens
  estimated as the characters of the request's prompt text / 4 (:meth:`read_timeout_s`);
* only failures that mean the server never took the request are retried, ``llm_retries`` times with
  exponential backoff (0.5 s, 1 s, 2 s, ...): connection refused or reset (``ConnectError``), a connect
  timeout, a server that closed the connection without answering (``RemoteProtocolError``), and answers
  with status 5xx or 429;
* a read timeout is NEVER re-sent (the server may still be working on the request, and re-sending
  multiplies its load): it raises :class:`BackendUnavailableError` at once, naming the server, the timeout
  and the settings to change; so do other failures after the request was sent (a connection dropped while
  waiting), any other 4xx (with the status and the first 300 characters of the body), and malformed answers
  (a body that is not JSON, no ``choices``, no ``message``, no ``logprobs``). Messages name the server URL
  with its credentials masked (``user:***@``, ``?api_key=***``; :func:`kgrag.settings.mask_uri`) and never the API key.

Example::

    gen = OpenAICompatibleGenerator("http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")
    gen.generate([Prompt(user="Name a gene linked to psoriasis.")], max_tokens=20)
    gen.score_labels([Prompt(user="Is HLA-B a gene? A. yes B. no")], [["A", "B"]])
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from kgrag.errors import BackendUnavailableError
from kgrag.generators.base import Generation, Prompt, TextCallback, hand_over, top_logprob_of_labels
from kgrag.settings import Settings, mask_text, mask_uri

T = TypeVar("T")
R = TypeVar("R")

CHARS_PER_TOKEN = 4
TOP_LOGPROBS = 20  # vLLM's default --max-logprobs
# failures where the server never took the request: safe to send again
_NOT_RECEIVED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
_TIMEOUT_HINT = ("raise KGRAG_LLM_TIMEOUT_S or KGRAG_LLM_TIMEOUT_PER_1K_TOKENS_S, send a smaller batch, "
                 "or use a faster model or server")
_API_HINT = ("check that KGRAG_LLM_BASE_URL points at an OpenAI-compatible API (such as `vllm serve`, "
             "usually ending in /v1) and that KGRAG_LLM_MODEL names a model it serves")


class _Skipped(Exception):
    """A request of a batch not sent because an earlier one failed."""


def estimate_tokens(text: str) -> int:
    """The 4-characters-per-token estimate (at least 1 token)."""
    return max(1, len(text) // CHARS_PER_TOKEN)


def _prompt_text(payload: dict) -> str:
    """The prompt text of a chat, completions or tokenize request body."""
    parts = [m.get("content") or "" for m in payload.get("messages", ()) if isinstance(m, dict)]
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        parts.append(prompt)
    elif isinstance(prompt, list):
        parts.extend(p for p in prompt if isinstance(p, str))
    return "\n".join(p for p in parts if isinstance(p, str))


def _display_url(url: str) -> str:
    """The URL with its credentials masked (user:***@, ?api_key=***), for names and messages."""
    return mask_uri(url)


def _usage_tokens(data: dict, key: str) -> int | None:
    usage = data.get("usage")
    value = usage.get(key) if isinstance(usage, dict) else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class OpenAICompatibleGenerator:
    """Talks to an OpenAI-compatible HTTP endpoint; see the module docstring for timeouts and retries.

    ``timeout_s`` is the base read timeout, ``timeout_per_1k_tokens_s`` is added per 1,000 (estimated) prompt
    tokens of a request, ``retries`` re-sends a request that never reached the server or got 5xx/429.
    """

    def __init__(self, base_url: str, *, model: str, api_key: str = "EMPTY", temperature: float = 0.0,
                 timeout_s: float = 60.0, timeout_per_1k_tokens_s: float = 30.0, connect_timeout_s: float = 10.0,
                 retries: int = 2, backoff_s: float = 0.5, concurrency: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        self.model = model
        self.name = f"openai:{model}@{_display_url(self.base_url)}"
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.timeout_per_1k_tokens_s = timeout_per_1k_tokens_s
        self.connect_timeout_s = connect_timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.concurrency = max(1, concurrency)
        self.token_counts: str | None = None  # "exact" (server /tokenize) or "approximate"; None until first count
        self.last_prompt_tokens: list[int] = []  # per prompt of the latest generate/score_labels call
        self._secret = api_key if api_key and api_key != "EMPTY" else None
        self._client = httpx.Client(headers={"Authorization": f"Bearer {api_key}"})

    @classmethod
    def from_settings(cls, settings: Settings) -> "OpenAICompatibleGenerator":
        return cls(settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key.get_secret_value(),
                   temperature=settings.llm_temperature, timeout_s=settings.llm_timeout_s,
                   timeout_per_1k_tokens_s=settings.llm_timeout_per_1k_tokens_s, retries=settings.llm_retries)

    def reset_cache(self) -> None:
        """The server's prefix cache is the server's: nothing to forget here."""

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    # -- HTTP ------------------------------------------------------------------------------------
    def read_timeout_s(self, prompt_tokens: int) -> float:
        """Seconds to wait for the answer to a request whose prompt has ``prompt_tokens`` tokens."""
        return self.timeout_s + self.timeout_per_1k_tokens_s * max(0, prompt_tokens) / 1000

    def _clean(self, text: str) -> str:
        """``text`` (a server's answer, an exception) with the API key and URL credentials masked."""
        return mask_text(text, [self._secret] if self._secret else [])

    def _post(self, url: str, payload: dict, *, absent_ok: bool = False) -> dict | None:
        """POST ``payload`` as JSON and return the JSON object answered; ``None`` for 404/405 when ``absent_ok``."""
        shown = _display_url(url)
        tokens = len(_prompt_text(payload)) // CHARS_PER_TOKEN
        read = self.read_timeout_s(tokens)
        timeout = httpx.Timeout(read, connect=self.connect_timeout_s)
        tries = self.retries + 1
        n_tries = f"{tries} {'try' if tries == 1 else 'tries'}"
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                response = self._client.post(url, json=payload, timeout=timeout)
            except httpx.ReadTimeout as exc:
                raise BackendUnavailableError(
                    f"LLM server {shown} did not answer within {read:.1f} s (read timeout = KGRAG_LLM_TIMEOUT_S "
                    f"{self.timeout_s:g} s + KGRAG_LLM_TIMEOUT_PER_1K_TOKENS_S {self.timeout_per_1k_tokens_s:g} s "
                    f"per 1,000 prompt tokens, about {tokens} here). The request was not re-sent: the server may "
                    f"still be working on it. To fix: {_TIMEOUT_HINT}.") from exc
            except _NOT_RECEIVED as exc:
                if last:
                    raise BackendUnavailableError(
                        f"LLM server {shown} unreachable after {n_tries} ({type(exc).__name__}: "
                        f"{self._clean(str(exc)) or 'no detail'}). Check that the server is running (`vllm serve`, "
                        f"`kgrag serve-llm`) and that KGRAG_LLM_BASE_URL is right; KGRAG_LLM_RETRIES sets the "
                        f"retries.") from exc
            except httpx.TransportError as exc:  # the request may have reached the server: not re-sent
                raise BackendUnavailableError(
                    f"LLM server {shown} failed after the request was sent ({type(exc).__name__}: "
                    f"{self._clean(str(exc)) or 'no detail'}); not re-sent, as the server may still be working on "
                    f"it. Check the server's log; if it is overloaded, {_TIMEOUT_HINT}.") from exc
            else:
                status = response.status_code
                if absent_ok and status in (404, 405):
                    return None
                if status == 429 or status >= 500:
                    if last:
                        raise BackendUnavailableError(
                            f"LLM server {shown} answered {status} after {n_tries}: "
                            f"{self._clean(response.text[:300])!r}. The server is overloaded or failing: check its "
                            f"log, send a smaller batch, or raise KGRAG_LLM_RETRIES.")
                elif status >= 400:
                    raise BackendUnavailableError(
                        f"LLM server {shown} rejected the request with {status}: {self._clean(response.text[:300])!r}. "
                        f"Check KGRAG_LLM_MODEL (a model the server serves), KGRAG_LLM_API_KEY, and that the prompt "
                        f"fits the server's context (its max model length; the context part is KGRAG_CONTEXT_BUDGET_TOKENS).")
                else:
                    return self._json(response, shown)
            time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def _json(self, response: httpx.Response, shown: str) -> dict:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise BackendUnavailableError(
                f"LLM server {shown} answered {response.status_code} with a body that is not a JSON object "
                f"({self._clean(response.text[:300])!r}); {_API_HINT}.")
        return data

    def _malformed(self, shown: str, missing: str, hint: str = _API_HINT) -> BackendUnavailableError:
        return BackendUnavailableError(f"LLM server {_display_url(shown)} answered without {missing}; {hint}.")

    def _first_choice(self, data: dict, url: str) -> dict:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._malformed(url, f"any choice (got 'choices': {str(choices)[:100]})")
        return choices[0]

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` on up to ``concurrency`` threads, in order. After the first error no further request
        is sent (the ones in flight end by themselves), and the first error in item order is raised."""
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        failed = threading.Event()

        def guarded(item: T) -> R:
            if failed.is_set():
                raise _Skipped
            try:
                return fn(item)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            futures = [pool.submit(guarded, item) for item in items]
        errors = [f.exception() for f in futures]
        error = next((e for e in errors if e is not None and not isinstance(e, _Skipped)), None)
        if error is not None:
            raise error
        return [f.result() for f in futures]

    # -- Generator protocol ----------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None,
                 on_text: TextCallback | None = None) -> list[Generation]:
        """See :meth:`Generator.generate`; ``on_text`` gets each whole text when it is back (no token streaming here)."""
        return hand_over(self._generate(prompts, max_tokens=max_tokens, stop=stop), on_text)

    def _generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[Generation]:
        url = f"{self.base_url}/chat/completions"

        def one(prompt: Prompt) -> Generation:
            payload: dict[str, Any] = {"model": self.model, "messages": prompt.messages(), "max_tokens": max_tokens,
                                       "temperature": self.temperature}
            if stop:
                payload["stop"] = list(stop)
            data = self._post(url, payload)
            choice = self._first_choice(data, url)
            message = choice.get("message")
            if not isinstance(message, dict):
                raise self._malformed(url, "choices[0].message")
            text = message.get("content") or ""
            if not isinstance(text, str):
                raise self._malformed(url, "a text in choices[0].message.content")
            # OpenAI servers drop the stop string (vLLM names it in stop_reason); keep it so sentences stay whole
            finish = choice.get("finish_reason")
            if finish == "stop":
                if stop and choice.get("stop_reason") in stop:
                    text += choice["stop_reason"]
                else:
                    finish = "eos"
            prompt_tokens = _usage_tokens(data, "prompt_tokens")
            completion_tokens = _usage_tokens(data, "completion_tokens")
            return Generation(
                text=text.strip(),
                prompt_tokens=prompt_tokens if prompt_tokens is not None else estimate_tokens(_prompt_text(payload)),
                completion_tokens=completion_tokens if completion_tokens is not None else (estimate_tokens(text) if text else 0),
                finish_reason=finish)

        results = self._map(one, prompts)
        self.last_prompt_tokens = [g.prompt_tokens for g in results]
        return results

    def score_labels(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]]) -> list[list[float]]:
        """Log-probability of each label as the reply's first token: one request per prompt (top 20 alternatives)."""
        url = f"{self.base_url}/chat/completions"
        hint = (f"label scoring needs chat log-probabilities (logprobs=true, top_logprobs={TOP_LOGPROBS}); use a server "
                f"that returns them (vLLM does, with --max-logprobs >= {TOP_LOGPROBS}, its default) or "
                "KGRAG_OPTION_SCORING=likelihood")

        def one(item: tuple[Prompt, Sequence[str]]) -> tuple[list[float], int]:
            prompt, labs = item
            if not labs:
                return [], 0
            payload = {"model": self.model, "messages": prompt.messages(), "max_tokens": 1, "temperature": 0.0,
                       "logprobs": True, "top_logprobs": TOP_LOGPROBS}
            data = self._post(url, payload)
            choice = self._first_choice(data, url)
            logprobs = choice.get("logprobs")
            content = logprobs.get("content") if isinstance(logprobs, dict) else None
            if not isinstance(content, list) or not content or not isinstance(content[0], dict):
                raise self._malformed(url, "choices[0].logprobs.content (the first token's log-probabilities)", hint)
            alternatives = content[0].get("top_logprobs")
            if not isinstance(alternatives, list) or not alternatives:
                raise self._malformed(url, "choices[0].logprobs.content[0].top_logprobs", hint)
            top: dict[str, float] = {}
            for alt in [content[0], *alternatives]:
                token, logprob = (alt.get("token"), alt.get("logprob")) if isinstance(alt, dict) else (None, None)
                if isinstance(token, str) and isinstance(logprob, (int, float)) and not math.isnan(logprob):
                    top[token] = max(top.get(token, float("-inf")), float(logprob))
            tokens = _usage_tokens(data, "prompt_tokens")
            return top_logprob_of_labels(top, labs), tokens if tokens is not None else estimate_tokens(_prompt_text(payload))

        results = self._map(one, list(zip(prompts, labels)))
        self.last_prompt_tokens = [tokens for _, tokens in results]
        return [scores for scores, _ in results]

    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        bases, texts = [], []
        for prompt, opts in zip(prompts, options):
            base = prompt.plain()
            for option in opts:
                bases.append(len(base))
                texts.append(f"{base} {option}")
        if not texts:
            return [[] for _ in prompts]
        url = f"{self.base_url}/completions"
        hint = ("option scoring reads the prompt's log-probabilities (echo=true, logprobs=0); use a server that "
                "returns them (vLLM does) or KGRAG_OPTION_SCORING=label")
        data = self._post(url, {"model": self.model, "prompt": texts, "max_tokens": 1, "echo": True,
                                "logprobs": 0, "temperature": 0.0})
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise self._malformed(url, f"any choice (got 'choices': {str(choices)[:100]})")
        by_index = {c.get("index", i): c for i, c in enumerate(choices) if isinstance(c, dict)}
        flat = []
        for i, start in enumerate(bases):
            choice = by_index.get(i)
            if choice is None:
                raise self._malformed(url, f"a choice with index {i} (sent {len(texts)} prompts)")
            logprobs = choice.get("logprobs")
            token_logprobs = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
            offsets = logprobs.get("text_offset") if isinstance(logprobs, dict) else None
            if not isinstance(token_logprobs, list) or not isinstance(offsets, list):
                raise self._malformed(url, f"choices[{i}].logprobs.token_logprobs and text_offset", hint)
            values = [lp for lp, off in zip(token_logprobs, offsets)
                      if isinstance(off, int) and start <= off < len(texts[i]) and isinstance(lp, (int, float))]
            flat.append(sum(values) / len(values) if values else float("-inf"))
        result, cursor = [], 0
        for opts in options:
            result.append(flat[cursor:cursor + len(opts)])
            cursor += len(opts)
        return result

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Exact counts from the server's ``/tokenize``; the 4-characters estimate where the server has none."""
        texts = list(texts)
        if self.token_counts == "approximate" or not texts:
            return [estimate_tokens(t) for t in texts]
        url = f"{self.root_url}/tokenize"

        def one(text: str) -> int | None:
            if not text:
                return 0
            data = self._post(url, {"model": self.model, "prompt": text, "add_special_tokens": False}, absent_ok=True)
            if data is None:
                return None
            count = data.get("count")
            if isinstance(count, int) and not isinstance(count, bool):
                return count
            if isinstance(data.get("tokens"), list):
                return len(data["tokens"])
            raise self._malformed(url, "'count' or 'tokens' in the /tokenize answer",
                                  "check that KGRAG_LLM_BASE_URL points at a vLLM-compatible server")

        counts: list[int | None] = [None] * len(texts)
        todo = list(range(len(texts)))
        if self.token_counts is None:  # probe with the first non-empty text before sending the rest
            first = next((i for i in todo if texts[i]), None)
            if first is None:
                return [0] * len(texts)
            counts[first] = one(texts[first])
            if counts[first] is None:
                self.token_counts = "approximate"
                return [estimate_tokens(t) for t in texts]
            self.token_counts = "exact"
            todo.remove(first)
        for i, count in zip(todo, self._map(one, [texts[i] for i in todo])):
            counts[i] = count
        if any(c is None for c in counts):  # the route vanished (another server behind the URL)
            self.token_counts = "approximate"
            return [estimate_tokens(t) for t in texts]
        return counts  # type: ignore[return-value]
