"""Test helper: a process environment with no KGRAG_* from the shell, for CLI and settings tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def use_kgrag_env(monkeypatch: pytest.MonkeyPatch, *, sources: Path | None = None, home: Path | None = None) -> None:
    """Remove every KGRAG_* variable but KGRAG_EMBEDDING_PRECISION=fp32 and KGRAG_LLM_PRECISION=fp32, then set KGRAG_SOURCES_DIR and KGRAG_HOME
    when given."""
    for key in list(os.environ):
        if key.startswith("KGRAG_"):
            monkeypatch.delenv(key)
    # the same vectors on every CPU (auto would be bf16 on one with AMX); the bf16 tests ask for it
    monkeypatch.setenv("KGRAG_EMBEDDING_PRECISION", "fp32")
    monkeypatch.setenv("KGRAG_LLM_PRECISION", "fp32")  # the same option scores on every CPU
    if sources is not None:
        monkeypatch.setenv("KGRAG_SOURCES_DIR", str(sources))
    if home is not None:
        monkeypatch.setenv("KGRAG_HOME", str(home))
