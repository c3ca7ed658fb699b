"""`kgrag doctor`: every check on a real (tiny) home: what passes, what fails, and the fix it names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrag.cli import app
from tests.local_bolt import free_port
from quco.index_builder import build_index, jsonl_texts
from tests.graph_loaders.test_build import sources  # noqa: F401  (fixture: a tiny sources mirror)
from tests.kgrag_env import use_kgrag_env


@pytest.fixture()
def home(sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """An empty home, the tiny sources mirror, graph-only retrieval and no KGRAG_* from the shell."""
    use_kgrag_env(monkeypatch, sources=sources, home=tmp_path / "home")
    monkeypatch.setenv("KGRAG_RETRIEVAL_MODE", "kg")
    return tmp_path / "home"


def doctor(*args: str) -> tuple[int, dict[str, dict], str]:
    """Run `kgrag doctor --json ARGS`: (exit code, checks by name, stderr)."""
    result = CliRunner().invoke(app, ["doctor", "--json", *args])
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    return result.exit_code, checks, result.stderr


def test_an_empty_home_fails_on_the_graph_and_names_the_commands(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, checks, err = doctor()
    assert code == 1 and "graph" in err
    assert checks["graph"]["status"] == "fail" and checks["graph"]["fix"] == "kgrag build-graph --clear"
    assert checks["statistics index"]["status"] == "warn"  # missing, but only the gated mode needs it
    assert checks["statistics index"]["fix"] == "kgrag build-stats-index"
    assert checks["text index"]["status"] == "warn"  # missing, but retrieval is graph-only
    assert checks["edge vectors"]["status"] == "warn" and checks["edge vectors"]["fix"] == "kgrag build-edge-vectors"
    assert checks["llm (transformers)"]["status"] == "ok" and checks["llm (transformers)"]["detail"].endswith(".gguf")
    monkeypatch.setenv("KGRAG_GATE_MODE", "gated")
    monkeypatch.setenv("KGRAG_EDGE_VECTORS", "on")
    checks = doctor()[1]
    assert checks["statistics index"]["status"] == "fail" and checks["edge vectors"]["status"] == "fail"


def test_a_built_home_passes_and_same_size_damage_is_found_by_the_full_check_only(home: Path, fixtures_dir: Path) -> None:
    assert CliRunner().invoke(app, ["build-graph", "--no-progress", "--json"]).exit_code == 0
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), home / "stats")
    code, checks, _ = doctor()
    assert code == 0, checks
    assert checks["graph"]["status"] == "ok" and " edges" in checks["graph"]["detail"]
    assert checks["statistics index"]["status"] == "ok" and "checksummed" in checks["statistics index"]["detail"]

    damaged = home / "stats" / "tokenized.0"
    stat = damaged.stat()
    with damaged.open("r+b") as handle:
        handle.seek(stat.st_size // 2)
        handle.write(b"\xff" * 64)
    os.utime(damaged, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, checks, _ = doctor("--quick")
    assert code == 0 and checks["statistics index"]["status"] == "ok"  # sizes agree: only checksums can see it
    code, checks, err = doctor()
    assert code == 1 and "statistics index" in err
    assert "tokenized.0: checksum mismatch" in checks["statistics index"]["detail"]
    assert checks["statistics index"]["fix"] == "kgrag build-stats-index"


def test_an_unreachable_llm_server_is_named_without_its_credentials(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRAG_GENERATOR", "openai")
    monkeypatch.setenv("KGRAG_LLM_BASE_URL", f"http://alice:s3cret-pw@127.0.0.1:{free_port()}/v1")
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "llm (openai)" in result.output and "127.0.0.1" in result.output and "kgrag serve-llm" in result.output
    assert "s3cret-pw" not in result.output


def test_doctor_reports_leftovers_of_interrupted_builds_and_their_size(home: Path, fixtures_dir: Path) -> None:
    """Issue 25 item 7: what killed builds leave is reported with its size, and the next build deletes it."""
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), home / "stats")
    aside = home / ".stats-old-1"
    aside.mkdir()
    (aside / "table.0").write_bytes(b"x" * 4096)
    (home / ".stats.staging-1-2").mkdir()
    (home / ".text_index-abcd1234").mkdir()  # an older build's staging name
    checks = doctor()[1]
    leftovers = checks["leftovers"]
    assert leftovers["status"] == "warn" and "3 left by interrupted builds, 4,096 bytes" in leftovers["detail"]
    assert f"{aside} (4,096 bytes)" in leftovers["detail"]
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), home / "stats")  # sweeps the stats leftovers
    detail = doctor()[1]["leftovers"]["detail"]
    assert ".stats" not in detail and ".text_index-abcd1234" in detail


def test_doctor_puts_back_a_statistics_index_a_killed_build_set_aside(home: Path, fixtures_dir: Path) -> None:
    build_index(jsonl_texts(fixtures_dir / "quco" / "corpus.jsonl"), home / "stats")
    (home / "stats").rename(home / ".stats-old-1")
    checks = doctor()[1]
    assert checks["statistics index"]["status"] == "ok" and (home / "stats").is_dir()
    assert checks["leftovers"]["status"] == "ok"
