"""Runner: configurations, seeded selection, resumable append-only JSONL, and a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.runner import CONFIGS, RunError, config_settings, read_run, run_eval, run_fingerprint, run_path, select_items
from kgrag.settings import load_settings
from kgrag.types import Answer, Question
from tests.fixtures.eval.fake_pipeline import FakePipeline
from tests.kgrag_env import use_kgrag_env

REPO = Path(__file__).resolve().parents[2]
FAKE = "tests.fixtures.eval.fake_pipeline:make_pipeline"
CALLS: list[list[str]] = []


class _Recording(FakePipeline):
    def answer_batch(self, questions: list[Question]) -> list[Answer]:
        CALLS.append([q.id or "" for q in questions])
        return super().answer_batch(questions)


def recording_factory(settings):
    return _Recording(settings)


class _Short:
    def answer_batch(self, questions):
        return []


def short_factory(settings):
    return _Short()


class _FailsSecond(FakePipeline):
    def answer_batch(self, questions):
        if self.calls == 1:
            raise RuntimeError("backend died")
        return super().answer_batch(questions)


def failing_factory(settings):
    return _FailsSecond(settings)


class _Reversed(FakePipeline):
    def answer_batch(self, questions):
        return list(reversed(super().answer_batch(questions)))


def reversed_factory(settings):
    return _Reversed(settings)


@pytest.fixture()
def fx_settings(fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_kgrag_env(monkeypatch)
    return load_settings(home=tmp_path / "home", sources_dir=fixtures_dir / "eval" / "data")


def test_configs_map_to_settings(fx_settings):
    assert config_settings(fx_settings, "no-rag").retrieval_mode == "none"
    gated = config_settings(fx_settings, "gated")
    assert (gated.retrieval_mode, gated.gate_mode) == ("kg+text", "gated")
    assert config_settings(fx_settings, "kg").fingerprint() != config_settings(fx_settings, "text").fingerprint()
    assert set(CONFIGS) == {"no-rag", "kg", "text", "kg+text", "gated"}
    with pytest.raises(RunError, match="unknown configuration 'rag'"):
        config_settings(fx_settings, "rag")


def test_run_writes_every_row_and_resume_skips_done_ids(fx_settings, tmp_path):
    CALLS.clear()
    factory = "tests.eval.test_runner:recording_factory"
    first = run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, limit=3, seed=7, batch_size=2,
                     pipeline_factory=factory, progress=False, log=lambda m: None)
    assert (first.selected, first.new_rows, first.already_done) == (3, 3, 0)
    assert [len(c) for c in CALLS] == [2, 1]
    rows = read_run(first.path).rows
    assert [r.id for r in rows] == [i for c in CALLS for i in c]
    CALLS.clear()
    second = run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, batch_size=4, pipeline_factory=factory,
                      progress=False, log=lambda m: None)
    assert (second.selected, second.already_done, second.new_rows) == (8, 3, 5)
    assert second.path == first.path
    assert not set(i for c in CALLS for i in c) & {r.id for r in rows}
    final = read_run(second.path).rows
    assert sorted(r.id for r in final) == sorted(["tf-0", "tf-1", "tf-2", "tf-4", "tf-7", "tf-8", "tf-10", "tf-17"])
    unparsed = {r.id for r in final if r.parse_failed}
    assert unparsed == {"tf-7", "tf-17"}
    assert all(not r.correct for r in final if r.parse_failed)
    row = next(r for r in final if r.id == "tf-0")
    assert (row.gold, row.parsed, row.parse_method, row.correct) == ("False", "False", "json", True)
    assert row.usage["prompt_tokens"] == 500 and row.timings_ms["total"] == 25.0
    assert row.batch_ms is not None and row.batch_ms >= 0 and row.batch_size in (1, 2, 4)
    meta = json.loads(second.meta_path.read_text())
    assert meta["data_sha256"] and meta["model"] == "smollm2" and meta["pipeline_factory"] == factory
    CALLS.clear()
    third = run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, pipeline_factory=factory, progress=False, log=lambda m: None)
    assert third.new_rows == 0 and CALLS == []


def test_seeded_selection_is_stable_and_differs_from_file_order(fx_settings):
    from eval.datasets import load_dataset

    items = load_dataset(fx_settings, "biomixqa-tf").items
    a = [i.id for i in select_items(items, 4, 1)]
    assert a == [i.id for i in select_items(items, 4, 1)]
    assert [i.id for i in select_items(items, 4, None)] == ["tf-0", "tf-1", "tf-2", "tf-4"]
    assert [i.id for i in select_items(items, None, 1)] != [i.id for i in items]
    with pytest.raises(RunError, match="limit"):
        select_items(items, -1, None)


def test_mcq_rows_keep_evidence_and_context_answer_flag(fx_settings, tmp_path):
    result = run_eval(fx_settings, "biomixqa-mcq", "kg", out_dir=tmp_path, pipeline_factory=FAKE, progress=False, log=lambda m: None)
    rows = {r.id: r for r in read_run(result.path).rows}
    assert rows["mcq-0"].evidence[0].sources == ["PMID:mcq-0"]
    # The fake's evidence names the first option: NOD2 for mcq-0 (gold HLA-B), IGF2BP2 for mcq-4 (gold HLA-B).
    assert rows["mcq-0"].context_holds_answer is False
    assert rows["mcq-1"].context_holds_answer is True  # first option TERT is the gold
    assert rows["mcq-0"].parse_method == "choice"


def test_torn_last_line_is_cut_and_reported_but_a_bad_middle_line_is_an_error(fx_settings, tmp_path):
    messages: list[str] = []
    first = run_eval(fx_settings, "biomixqa-tf", "no-rag", out_dir=tmp_path, limit=2, pipeline_factory=FAKE, progress=False, log=messages.append)
    with first.path.open("ab") as handle:
        handle.write(b'{"id": "tf-2", "datas')
    second = run_eval(fx_settings, "biomixqa-tf", "no-rag", out_dir=tmp_path, limit=4, pipeline_factory=FAKE, progress=False, log=messages.append)
    assert second.torn_tail is not None and any("torn last line" in m for m in messages)
    lines = second.path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["tf-0", "tf-1", "tf-2", "tf-4"]
    broken = second.path.read_text().splitlines()
    broken[1] = "not json"
    second.path.write_text("\n".join(broken) + "\n")
    with pytest.raises(RunError, match="line 2 is not a valid run row"):
        run_eval(fx_settings, "biomixqa-tf", "no-rag", out_dir=tmp_path, pipeline_factory=FAKE, progress=False, log=messages.append)


def test_bad_factory_and_short_batch_are_clear_errors(fx_settings, tmp_path):
    with pytest.raises(RunError, match="must look like"):
        run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, pipeline_factory="nocolon", progress=False, log=lambda m: None)
    with pytest.raises(RunError, match="cannot import"):
        run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, pipeline_factory="no_such_mod:f", progress=False, log=lambda m: None)
    with pytest.raises(RunError, match="returned 0 answers for 2"):
        run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, batch_size=2,
                 pipeline_factory="tests.eval.test_runner:short_factory", progress=False, log=lambda m: None)


def test_pipeline_failure_keeps_written_rows_and_says_how_to_resume(fx_settings, tmp_path):
    messages: list[str] = []
    with pytest.raises(RuntimeError, match="backend died"):
        run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, batch_size=3, pipeline_factory="tests.eval.test_runner:failing_factory",
                 progress=False, log=messages.append)
    assert any("3 rows are saved" in m and "resume" in m for m in messages)
    # A fresh pipeline only fails on its second call; one batch of 5 finishes the run in the same file.
    resumed = run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, batch_size=5, pipeline_factory="tests.eval.test_runner:failing_factory",
                       progress=False, log=messages.append)
    assert (resumed.already_done, resumed.new_rows) == (3, 5)
    assert len({r.id for r in read_run(resumed.path).rows}) == len(read_run(resumed.path).rows) == 8


def test_second_writer_is_refused_and_answers_out_of_order_are_caught(fx_settings, tmp_path):
    import fcntl

    path = run_path(tmp_path, "biomixqa-tf", "kg", run_fingerprint(config_settings(fx_settings, "kg"), FAKE))
    path.parent.mkdir(parents=True)
    with path.with_name(path.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(RunError, match="being written by another run"):
            run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, pipeline_factory=FAKE, progress=False, log=lambda m: None)
    with pytest.raises(RunError, match="came back in the place of"):
        run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, batch_size=2, pipeline_factory="tests.eval.test_runner:reversed_factory",
                 progress=False, log=lambda m: None)


def test_fake_factory_gets_its_own_run_file(fx_settings, tmp_path):
    fake = run_eval(fx_settings, "biomixqa-tf", "kg", out_dir=tmp_path, limit=1, pipeline_factory=FAKE, progress=False, log=lambda m: None)
    real_name = run_path(tmp_path, "biomixqa-tf", "kg", config_settings(fx_settings, "kg").fingerprint())
    assert fake.path != real_name


def _cli(args: list[str], env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "kgrag.cli", "eval", *args]


@pytest.mark.slow
def test_sigkill_midway_then_resume_gives_every_row_exactly_once(fixtures_dir: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGRAG_")}
    env.update(KGRAG_SOURCES_DIR=str(fixtures_dir / "eval" / "data"), KGRAG_HOME=str(tmp_path / "home"), FAKE_PIPELINE_DELAY_S="0.4")
    args = ["--dataset", "biomixqa-tf", "--config", "kg", "--out", str(tmp_path / "runs"), "--pipeline", FAKE,
            "--batch-size", "1", "--no-progress", "--json"]
    proc = subprocess.Popen(_cli(args, env), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_dir = tmp_path / "runs" / "biomixqa-tf"
    deadline = time.monotonic() + 60
    lines = 0
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(run_dir.glob("*.jsonl"))
        lines = files[0].read_bytes().count(b"\n") if files else 0
        if lines >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    path = next(run_dir.glob("*.jsonl"))
    killed_rows = read_run(path).rows
    assert 3 <= len(killed_rows) < 8, "the kill must land midway"
    # Simulate a write cut off by the kill as well: a torn last line must be ignored, not kept.
    with path.open("ab") as handle:
        handle.write(b'{"id": "tf-99", "dataset": "biomix')
    env["FAKE_PIPELINE_DELAY_S"] = "0"
    done = subprocess.run(_cli(args, env), cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torn last line" in done.stderr
    out = json.loads(done.stdout)
    assert out["run"]["already_done"] == len(killed_rows)
    assert out["run"]["new_rows"] == 8 - len(killed_rows)
    raw_lines = path.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in raw_lines]  # every line parses
    assert sorted(ids) == sorted(["tf-0", "tf-1", "tf-2", "tf-4", "tf-7", "tf-8", "tf-10", "tf-17"])
    assert len(ids) == len(set(ids)) == 8
    assert [r.id for r in read_run(path).rows][: len(killed_rows)] == [r.id for r in killed_rows]
    assert out["summary"]["score"]["n"] == 8
