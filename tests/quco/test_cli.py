"""`kgrag build-stats-index` and `kgrag stats count|cooccur` on a fixture corpus."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kgrag.cli import app


def test_build_then_count_and_cooccur(tmp_path: Path, tmp_settings, fixtures_dir: Path) -> None:
    runner = CliRunner()
    env = {"KGRAG_HOME": str(tmp_path / "home")}
    built = runner.invoke(app, ["build-stats-index", "--corpus", str(fixtures_dir / "quco" / "corpus.jsonl"), "--json"], env=env)
    assert built.exit_code == 0, built.output
    manifest = json.loads(built.output)
    assert manifest["index_dir"] == str((tmp_path / "home" / "stats").resolve())
    assert manifest["doc_count"] == 8 and manifest["total_tokens"] == 79

    counted = runner.invoke(app, ["stats", "count", "Metformin", "Takayasu arteritis", "warfarin", "--json"], env=env)
    assert counted.exit_code == 0, counted.output
    assert [r["count"] for r in json.loads(counted.output)["results"]] == [3, 1, 0]

    co = runner.invoke(app, ["stats", "cooccur", "glucose", "diabetes", "--window", "3", "--json"], env=env)
    assert co.exit_code == 0, co.output
    assert json.loads(co.output)["cooccur"] == 1
    plain = runner.invoke(app, ["stats", "cooccur", "metformin", "multiple sclerosis"], env=env)
    assert plain.exit_code == 0 and plain.output.startswith("0\t")


def test_cli_errors_are_clear(tmp_path: Path, tmp_settings, fixtures_dir: Path) -> None:
    runner = CliRunner()
    env = {"KGRAG_HOME": str(tmp_path / "home")}
    missing = runner.invoke(app, ["stats", "count", "metformin"], env=env)
    assert missing.exit_code == 1 and "build-stats-index" in missing.output  # a missing artefact: exit 1
    bad_path = runner.invoke(app, ["build-stats-index", "--corpus", str(fixtures_dir / "quco" / "corpus.jsonl"),
                                   "--out", str(tmp_path / "offsets")], env=env)
    assert bad_path.exit_code == 1 and "'offset'" in bad_path.output
