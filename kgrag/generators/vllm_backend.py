"""Generator on vLLM in-process (``vllm.LLM``), for GPU machines.

vLLM is imported lazily: on a machine without it, :meth:`VLLMGenerator.from_settings` raises
:class:`BackendUnavailableError` with the install hint. The request shaping (chat rendering,
SamplingParams, prompt-logprob scoring) lives in pure functions tested without vLLM.

Example::

    gen = VLLMGenerator.from_settings(load_settings(generator="vllm", llm_model="Qwen/Qwen2.5-7B-Instruct"))
    gen.generate([Prompt(user="Name a gene linked to psoriasis.")], max_tokens=20)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kgrag.errors import BackendUnavailableError
from kgrag.generators.base import Generation, Prompt
from kgrag.settings import Settings


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


def option_scores(prompt_logprobs: Sequence[Sequence[dict | None]], requests: Sequence[dict], spans: Sequence[tuple[int, int]],
                  shape: Sequence[int]) -> list[list[float]]:
    """Mean log-probability of each option's tokens, regrouped per question (``shape`` = options per question)."""
    flat = []
    for logprobs, request, (start, length) in zip(prompt_logprobs, requests, spans):
        ids = request["prompt_token_ids"]
        values = []
        for pos in range(start, start + length):
            entry = logprobs[pos][ids[pos]]
            values.append(entry.logprob if hasattr(entry, "logprob") else float(entry))
        flat.append(sum(values) / max(1, len(values)))
    out, cursor = [], 0
    for n in shape:
        out.append(flat[cursor:cursor + n])
        cursor += n
    return out


def finish_reason(completion: Any) -> str | None:
    """vLLM's reason in our terms: a stop string ("stop"), end of sequence ("eos") or "length"."""
    if completion.finish_reason == "stop":
        return "stop" if isinstance(completion.stop_reason, str) else "eos"
    return completion.finish_reason


class VLLMGenerator:
    """Batched generation and prompt-logprob option scoring with ``vllm.LLM``."""

    def __init__(self, llm: Any, sampling_params_cls: Any, *, model: str, temperature: float = 0.0) -> None:
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self._params = sampling_params_cls
        self.name = f"vllm:{model}"
        self.temperature = temperature

    @classmethod
    def from_settings(cls, settings: Settings) -> "VLLMGenerator":
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise BackendUnavailableError("generator=vllm needs vLLM (pip install 'kgrag[vllm]' on a CUDA machine); "
                                          "or run `vllm serve MODEL` and use generator=openai") from exc
        llm = LLM(model=settings.llm_model, tensor_parallel_size=settings.vllm_tensor_parallel_size)
        return cls(llm, SamplingParams, model=settings.llm_model, temperature=settings.llm_temperature)

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        return self.tokenizer.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=True)

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[Generation]:
        params = self._params(**sampling_kwargs(max_tokens=max_tokens, temperature=self.temperature, stop=stop))
        inputs = [{"prompt_token_ids": self._prompt_ids(p)} for p in prompts]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        return [Generation(text=o.outputs[0].text.strip(), prompt_tokens=len(i["prompt_token_ids"]),
                           completion_tokens=len(o.outputs[0].token_ids), finish_reason=finish_reason(o.outputs[0]))
                for i, o in zip(inputs, outputs)]

    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        prompt_ids = [self._prompt_ids(p) for p in prompts]
        option_ids = [[self.tokenizer.encode(" " + o, add_special_tokens=False) for o in opts] for opts in options]
        requests, spans = scoring_requests(prompt_ids, option_ids)
        params = self._params(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return option_scores([o.prompt_logprobs for o in outputs], requests, spans, [len(o) for o in options])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.tokenizer.encode(t, add_special_tokens=False)) for t in texts]
