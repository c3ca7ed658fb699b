"""Generators: transformers (CPU default), any OpenAI-compatible server, vLLM in-process."""

from __future__ import annotations

from kgrag.generators.base import Generation, Generator, Prompt
from kgrag.settings import Settings


def open_generator(settings: Settings) -> Generator:
    """The backend named by ``settings.generator``; heavy imports happen only for the chosen one."""
    if settings.generator == "transformers":
        from kgrag.generators.transformers_backend import TransformersGenerator

        return TransformersGenerator.from_settings(settings)
    if settings.generator == "openai":
        from kgrag.generators.openai_backend import OpenAICompatibleGenerator

        return OpenAICompatibleGenerator.from_settings(settings)
    from kgrag.generators.vllm_backend import VLLMGenerator

    return VLLMGenerator.from_settings(settings)


__all__ = ["Generation", "Generator", "Prompt", "open_generator"]
