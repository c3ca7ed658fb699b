"""Turn a GGUF model (the packaged SmolLM2, or any ``.gguf`` path) into a directory vLLM loads.

vLLM needs a Hugging Face directory: safetensors weights, ``config.json`` and the tokenizer files.
transformers 5 refuses ``save_pretrained`` on a model loaded from GGUF, so the export loads the GGUF
(dequantised to bfloat16), writes the state dict with safetensors (minus ``lm_head.weight`` when the
embeddings are tied), the config without its ``quantization_config`` and the tokenizer.

The directory is cached under ``<home>/models/<name>``: built in a staging directory beside it, checked
(the files exist, the weights load back with the right tensor count), then published the way every
builder publishes (:func:`kgrag.artefacts.staged_artefact`: a build lock, two renames, the
leftovers of interrupted exports deleted), so a killed export never leaves a half-written model that
vLLM would load. A ``manifest.json`` records the
source file, its size and modification time, and the size of every exported file; a changed source, or an export whose files
no longer have their recorded sizes (truncated, deleted), is exported anew.

Example::

    from kgrag.generators.export import vllm_model_dir
    path = vllm_model_dir(settings)        # <home>/models/smollm2, exported on first use
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from kgrag.errors import BackendUnavailableError
from kgrag.artefacts import staged_artefact
from kgrag.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1


def _gguf_source(model: str) -> Path | None:
    """The GGUF file behind a model setting, or None when the setting names a HF directory or hub model."""
    from kgrag.generators.transformers_backend import resolve_model

    location, gguf_file = resolve_model(model)
    return Path(location) / gguf_file if gguf_file else None


def _slug(model: str) -> str:
    name = Path(model).stem if model.endswith(".gguf") else model
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _source_stamp(source: Path) -> dict:
    stat = source.stat()
    return {"format": FORMAT, "source": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def vllm_model_dir(settings: Settings, *, log=None) -> str:
    """The path or name vLLM should load for ``settings.llm_model``, exporting a GGUF model once if needed."""
    source = _gguf_source(settings.llm_model)
    if source is None:
        return settings.llm_model  # a HF directory or a hub name: vLLM loads it as it is
    target = _target(settings)
    state, found = export_state(settings)
    if state == "ok":
        return str(target)
    if log:
        if state == "damaged":
            log(found)
        log(f"exporting {source.name} for vLLM into {target} (once; about 30 s)")
    export_gguf(source, target, _source_stamp(source))
    return str(target)


def _target(settings: Settings) -> Path:
    return settings.home / "models" / _slug(settings.llm_model)


def export_state(settings: Settings) -> tuple[str, str]:
    """("ok" | "not exported" | "stale" | "damaged", what was found) for the vLLM export of ``settings.llm_model``."""
    source = _gguf_source(settings.llm_model)
    if source is None:
        return "ok", f"{settings.llm_model}: loaded by vLLM as it is (no export)"
    target = _target(settings)
    manifest = _manifest(target)
    if manifest is None:
        return "not exported", f"{source.name} is not exported yet ({target})"
    stamp = _source_stamp(source)
    if {k: manifest.get(k) for k in stamp} != stamp:
        return "stale", f"{target} was exported from another version of {source.name}; it is exported again on first use"
    damaged = _damaged_files(target, manifest.get("files", {}))
    if damaged:
        return "damaged", f"{target}: {', '.join(damaged)} differ from the export's manifest; exported again on first use"
    return "ok", f"{target} (exported from {source.name})"


def _damaged_files(target: Path, sizes: dict[str, int]) -> list[str]:
    """Files of an export whose size is not the one its manifest recorded (or that are missing)."""
    if not sizes:
        return ["(no file sizes in manifest.json)"]
    damaged = []
    for name, size in sizes.items():
        try:
            if (target / name).stat().st_size != size:
                damaged.append(name)
        except OSError:
            damaged.append(name)
    return damaged


def _manifest(target: Path) -> dict | None:
    try:
        return json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def export_gguf(source: Path, target: Path, stamp: dict | None = None) -> Path:
    """Export ``source`` (a .gguf file) to ``target`` through a staging directory; return ``target``."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not source.is_file():
        raise BackendUnavailableError(f"no GGUF file at {source}")
    with staged_artefact(target, kind="vLLM model export", rebuild="kgrag export-llm") as staging:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.bfloat16)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = [type(model).__name__]
        config["torch_dtype"] = config["dtype"] = "bfloat16"
        (staging / "config.json").write_text(json.dumps(config, indent=2, default=str))
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        # check before swapping in: the weights read back whole
        if len(load_file(str(staging / "model.safetensors"))) != len(state):
            raise BackendUnavailableError(f"export of {source} wrote an incomplete model.safetensors")
        files = {f.name: f.stat().st_size for f in staging.iterdir() if f.is_file()}
        (staging / MANIFEST).write_text(json.dumps({**(stamp or _source_stamp(source)), "files": files}))
    return target
