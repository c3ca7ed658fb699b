"""Faults and bad input: secrets masked everywhere, one error boundary for the CLI, input checked at the edge,
malformed or hanging LLM servers named.

Each CLI case asserts one ``error:`` line naming what was wrong, the documented exit code (kgrag.cli.EXIT_CODES),
no traceback (and a traceback with --debug), and that no secret reaches any output or written file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrag.cli import EXIT_CODES, EXIT_FAILED, EXIT_USAGE, app
from kgrag.errors import BackendUnavailableError, QuestionError
from kgrag.generators.base import Prompt
from kgrag.generators.openai_backend import OpenAICompatibleGenerator
from kgrag.settings import load_settings, mask_text, mask_uri
from kgrag.types import Question
from tests.kgrag_env import use_kgrag_env

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.fixtures.eval.fake_pipeline:make_pipeline"
SECRETS = ("secret123", "pw-graph-777", "sk-live-4242", "basic-pw-99")


@pytest.fixture()
def env(fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No KGRAG_* from the shell; the eval fixture data; a home under tmp_path."""
    use_kgrag_env(monkeypatch, sources=fixtures_dir / "eval" / "data", home=tmp_path / "home")
    return tmp_path


@pytest.fixture()
def secret_env(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Secrets in every place a user may put one."""
    monkeypatch.setenv("KGRAG_GRAPH_URI", "bolt://neo4j:secret123@127.0.0.1:1")
    monkeypatch.setenv("KGRAG_GRAPH_PASSWORD", "pw-graph-777")
    monkeypatch.setenv("KGRAG_LLM_API_KEY", "sk-live-4242")
    monkeypatch.setenv("KGRAG_LLM_BASE_URL", "http://bob:basic-pw-99@127.0.0.1:9/v1")
    return env


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def assert_one_error(result, code: int, *needles: str) -> str:
    """One error line holding every needle, exit ``code``, no traceback; returns the line."""
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output, output
    [line] = error_lines(output)
    for needle in needles:
        assert needle in line, line
    return line


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text[:2000]}"


# --- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri, shown", [
    ("bolt://neo4j:secret123@127.0.0.1:1", "bolt://neo4j:***@127.0.0.1:1"),
    ("http://token@host/v1", "http://***@host/v1"),
    ("https://api.example.org/?api_key=abc&q=1", "https://api.example.org/?api_key=***&q=1"),
    ("https://h/x?password=p&Access-Token=t", "https://h/x?password=***&Access-Token=***"),
    ("ladybug:///tmp/graph.lbug", "ladybug:///tmp/graph.lbug"),
    ("local:///tmp/stats", "local:///tmp/stats"),
    ("not a uri", "not a uri"),
])
def test_mask_uri(uri: str, shown: str) -> None:
    assert mask_uri(uri) == shown


def test_mask_text_masks_uris_and_named_secrets() -> None:
    text = "failed: Given URI: 'bolt://neo4j:secret123@127.0.0.1:1' with key sk-live-4242"
    masked = mask_text(text, ["sk-live-4242"])
    assert masked == "failed: Given URI: 'bolt://neo4j:***@127.0.0.1:1' with key ***"


def test_public_settings_mask_every_credential(secret_env: Path) -> None:
    settings = load_settings(stats_uri="https://api.infini-gram.io/?api_key=basic-pw-99")
    public = json.dumps(settings.public_dict())
    assert_no_secret(public)
    data = settings.public_dict()
    assert data["graph_uri"] == "bolt://neo4j:***@127.0.0.1:1"
    assert data["llm_base_url"] == "http://bob:***@127.0.0.1:9/v1"
    assert data["stats_uri"] == "https://api.infini-gram.io/?api_key=***"


def test_eval_writes_and_prints_no_secret(secret_env: Path) -> None:
    out = secret_env / "runs"
    result = CliRunner().invoke(app, ["eval", "--dataset", "biomixqa-tf", "--config", "kg", "--json", "--limit", "3",
                                      "--out", str(out), "--pipeline", FAKE, "--no-progress"])
    assert result.exit_code == 0, result.output
    written = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".meta.json") for p in written)
    assert_no_secret(result.output, *(p.read_text(errors="replace") for p in written))
    meta = json.loads(next(p for p in written if p.name.endswith(".meta.json")).read_text())
    assert meta["settings"]["graph_uri"] == "bolt://neo4j:***@127.0.0.1:1"
    report = CliRunner().invoke(app, ["eval-report", *map(str, out.rglob("*.jsonl")), "--out", str(secret_env / "rep")])
    assert report.exit_code == 0, report.output
    assert_no_secret(report.output, *(p.read_text(errors="replace") for p in (secret_env / "rep").glob("*.*")
                                      if p.suffix in (".json", ".md")))


def test_ask_failing_to_connect_names_the_graph_and_hides_secrets(secret_env: Path) -> None:
    result = CliRunner().invoke(app, ["ask", "--json", "Which genes are linked to psoriasis?"])
    line = assert_one_error(result, EXIT_FAILED, "cannot connect to the graph at bolt://", "127.0.0.1:1",
                            "KGRAG_GRAPH_URI")
    assert "50N42" not in line
    assert_no_secret(result.output)


def test_invalid_setting_is_exit_2_and_masks_the_value(secret_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRAG_GRAPH_URI", "http://neo4j:secret123@127.0.0.1:1")
    result = CliRunner().invoke(app, ["ask", "x?"])
    assert_one_error(result, EXIT_USAGE, "KGRAG_GRAPH_URI")
    assert_no_secret(result.output)


# --- the boundary: bad input, exit codes, --debug ---------------------------------------------------


@pytest.mark.parametrize("args, needles", [
    (["ask", "--task", "bogus", "x?"], ["--task", "bogus", "true_false"]),
    (["eval", "--task", "bogus"], ["--task"]),
    (["eval", "--dataset", "bogus", "--config", "kg", "--pipeline", FAKE], ["unknown dataset 'bogus'"]),
    (["eval", "--dataset", "biomixqa-tf", "--config", "bogus", "--pipeline", FAKE], ["unknown configuration 'bogus'"]),
    (["ask", "--options", "HLA-B,HLA-B", "Which gene?"], ["HLA-B", "same"]),
    (["ask", "--options", "HLA-B, hla-b ,TP53", "Which gene?"], ["HLA-B", "hla-b"]),
    (["nonsense-command"], ["nonsense-command"]),
])
def test_bad_usage_is_one_error_line_and_exit_2(env: Path, args: list[str], needles: list[str]) -> None:
    assert_one_error(CliRunner().invoke(app, args), EXIT_USAGE, *needles)


def test_non_utf8_argument_names_the_argument() -> None:
    def run(*args: bytes) -> subprocess.CompletedProcess:
        code = "import sys; from kgrag.cli import main; sys.argv[0] = 'kgrag'; main()"
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, cwd=ROOT, timeout=120,
                              env={**os.environ, "PYTHONIOENCODING": "utf-8"})

    proc = run(b"ask", b"\xff\xfe psoriasis genes?")
    err = proc.stderr.decode()
    assert proc.returncode == EXIT_USAGE and "Traceback" not in err, err
    [line] = error_lines(err)
    assert "argument 2" in line and "not valid UTF-8" in line and "\\xff\\xfe psoriasis genes?" in line
    proc = run(b"ask", b"--options", b"HLA-B,\xff", b"which gene?")
    [line] = error_lines(proc.stderr.decode())
    assert proc.returncode == EXIT_USAGE and "--options" in line


def test_debug_shows_the_traceback(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["ask", "--options", "a,A", "x?"]
    assert "Traceback" in CliRunner().invoke(app, ["--debug", *args]).output
    monkeypatch.setenv("KGRAG_DEBUG", "1")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE and "Traceback" in result.output and len(error_lines(result.output)) == 1


def broken_pipeline(settings):  # noqa: ANN001 - a pipeline factory for the test below
    raise RuntimeError("something internal broke")


def test_unexpected_error_is_one_line_with_the_debug_hint(env: Path) -> None:
    args = ["eval", "--dataset", "biomixqa-tf", "--config", "kg", "--out", str(env / "runs"),
            "--pipeline", "tests.commands.test_cli_faults:broken_pipeline", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert_one_error(result, EXIT_FAILED, "RuntimeError", "something internal broke", "--debug")


def test_missing_file_argument_is_exit_2(env: Path) -> None:
    result = CliRunner().invoke(app, ["eval-report", str(env / "nope.jsonl")])
    assert_one_error(result, EXIT_USAGE, "nope.jsonl")


def test_exit_codes_are_documented_in_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for code in EXIT_CODES:
        assert f"{code} " in text
    assert "--debug" in text


# --- the library edge: Question ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, needle", [
    ({"text": "\ud800 genes"}, "not valid Unicode"),
    ({"text": "genes?", "options": ["HLA-B", "\udcff"]}, "option 2"),
    ({"text": "genes?", "options": ["HLA-B", " hla-b"]}, "same once case and white space"),
    ({"text": "genes?", "task": "bogus"}, "task"),
])
def test_question_rejects_bad_input(kwargs: dict, needle: str) -> None:
    with pytest.raises(QuestionError, match=needle):
        Question(**kwargs)


def test_pipeline_validation_rejects_a_lone_surrogate(tmp_settings) -> None:
    from kgrag.answer.pipeline import validate_question

    with pytest.raises(QuestionError, match="not valid Unicode"):
        validate_question("\ud800 genes", tmp_settings)


# --- LLM servers that answer badly or never -----------------------------------------------------------


class FixedAnswerServer:
    """Answers every POST with one fixed body (status 200), or never answers (``hang``)."""

    def __init__(self, body: bytes = b"", *, hang: bool = False) -> None:
        self.hang = hang
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if server.hang:
                    server.release.wait(30)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve() -> Iterator:
    servers: list[FixedAnswerServer] = []

    def start(body: bytes = b"", *, hang: bool = False) -> FixedAnswerServer:
        servers.append(FixedAnswerServer(body, hang=hang))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _client(port: int, **kwargs) -> OpenAICompatibleGenerator:
    return OpenAICompatibleGenerator(f"http://bob:basic-pw-99@127.0.0.1:{port}/v1", model="m", api_key="sk-live-4242",
                                     backoff_s=0.01, **kwargs)


@pytest.mark.parametrize("body, call, missing", [
    (b"{not json", "generate", "not a JSON object"),
    (b'{"choices": []}', "generate", "any choice"),
    (b'{"choices": [{"index": 0}]}', "generate", "choices[0].message"),
    (b'{"choices": [{"message": {"content": "A"}}]}', "score_labels", "logprobs"),
    (b'{"choices": [{"index": 0, "text": "x"}]}', "score_options", "logprobs"),
])
def test_malformed_llm_answers_name_the_server_and_what_is_missing(serve, body: bytes, call: str, missing: str) -> None:
    server = serve(body)
    client = _client(server.port)
    prompt = Prompt(user="Is HLA-B a gene? A. yes B. no")
    with pytest.raises(BackendUnavailableError) as info:
        if call == "generate":
            client.generate([prompt], max_tokens=4)
        elif call == "score_labels":
            client.score_labels([prompt], [["A", "B"]])
        else:
            client.score_options([prompt], [["yes", "no"]])
    message = str(info.value)
    assert f"http://bob:***@127.0.0.1:{server.port}" in message and missing in message, message
    assert_no_secret(message)


def test_hanging_llm_server_ends_after_one_read_timeout(serve) -> None:
    server = serve(hang=True)
    client = _client(server.port, timeout_s=1.0, timeout_per_1k_tokens_s=0.0, retries=2)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        client.generate([Prompt(user="Name a gene linked to psoriasis.")], max_tokens=4)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert elapsed < 2.5, f"took {elapsed:.1f} s: a read timeout must not be re-sent"
    assert "did not answer within 1.0 s" in message and "KGRAG_LLM_TIMEOUT_S" in message
    assert f"127.0.0.1:{server.port}" in message
    assert_no_secret(message)


def test_llm_server_refusing_connections_hides_credentials() -> None:
    """Connection refused: the message names the server with its credentials masked."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = _client(port, retries=0)
    with pytest.raises(BackendUnavailableError, match="unreachable") as info:
        client.generate([Prompt(user="x")], max_tokens=1)
    assert_no_secret(str(info.value))


# --- issue 25 item 6: each failure in its exit-code class ---------------------------------------------------------
@pytest.mark.parametrize("text, needles", [
    ("gate_mode: gated\n  retrieval_mode: [kg\n", ["not valid YAML at line 2, column 17", "mapping values are not allowed"]),
    ("- gate_mode\n- gated\n", ["holds a YAML list, not a mapping of setting names"]),
])
def test_a_config_file_that_is_not_yaml_settings_is_exit_2_naming_the_file(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          text: str, needles: list[str]) -> None:
    config = env / "kgrag.yaml"
    config.write_text(text)
    monkeypatch.setenv("KGRAG_CONFIG", str(config))
    line = assert_one_error(CliRunner().invoke(app, ["doctor", "--quick"]), EXIT_USAGE, f"KGRAG_CONFIG={config}", *needles)
    assert "a bug?" not in line


def test_a_full_disk_during_build_text_index_is_a_cannot_write_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills while the index is written: "cannot write ... No space left on device", exit 1, no "a bug?",
    and the previous index still serves."""
    import errno

    from kgrag.indexes import text_index_build

    corpus = env / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": f"Passage {i} on psoriasis and HLA-B."}) + "\n"
                              for i in range(5)))
    runner = CliRunner()
    first = runner.invoke(app, ["build-text-index", "--no-bm25", "--corpus", str(corpus)])
    assert first.exit_code == 0, first.output
    live = env / "home" / "text_index"
    before = sorted((p.name, p.stat().st_size) for p in live.iterdir())

    def full_disk(index, path):  # what writing the FAISS file through a Python file raises on a full disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    writes = text_index_build.write_faiss
    monkeypatch.setattr(text_index_build, "write_faiss", full_disk)
    line = assert_one_error(runner.invoke(app, ["build-text-index", "--no-bm25", "--corpus", str(corpus)]), EXIT_FAILED,
                            "cannot write the text index", "No space left on device", "unchanged")
    assert "a bug?" not in line
    assert sorted((p.name, p.stat().st_size) for p in live.iterdir()) == before
    assert "the same command resumes" in line
    # only the build's committed shards are left, for the resume; the next build finishes and clears them
    assert [p.name for p in live.parent.iterdir() if p.name.startswith(".text_index")] == [".text_index.building"]
    monkeypatch.setattr(text_index_build, "write_faiss", writes)  # room again
    assert runner.invoke(app, ["build-text-index", "--no-bm25", "--corpus", str(corpus)]).exit_code == 0
    assert [p.name for p in live.parent.iterdir() if p.name.startswith(".text_index")] == []


# --- issue 25 items 1 and 2: a credential in any URL setting; statistics that cannot be reached ------------------
URL_SETTINGS = {  # every URL-like setting, with a secret in it (a new URL setting fails the first assertion below)
    "graph_uri": "bolt://neo4j:sec-graph-11@127.0.0.1:1",
    "stats_uri": "https://user:sec-stats-22@127.0.0.1:9/?api_key=sec-key-33",
    "llm_base_url": "http://bob:sec-llm-44@127.0.0.1:9/v1",
}
URL_SECRETS = ("sec-graph-11", "sec-stats-22", "sec-key-33", "sec-llm-44")


def test_a_secret_in_every_url_setting_reaches_no_output_and_no_file(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25 items 1 and 2: the gate's failed lookups name the statistics API masked in stdout, stderr, the run
    file, its metadata and the report; the failure is said on stderr once per run and counted."""
    settings = load_settings()
    url_like = {name for name, value in settings.model_dump(mode="json").items() if isinstance(value, str) and "://" in value}
    assert url_like == set(URL_SETTINGS), "a URL-like setting is missing from URL_SETTINGS: add it with a secret"
    for name, value in URL_SETTINGS.items():
        monkeypatch.setenv(f"KGRAG_{name.upper()}", value)
    monkeypatch.setenv("KGRAG_STATS_MAX_RETRIES", "0")
    monkeypatch.setenv("KGRAG_STATS_TIMEOUT_S", "2")
    monkeypatch.setenv("KGRAG_STATS_TOTAL_TOKENS", "1000000")
    out = env / "runs"
    result = CliRunner().invoke(app, ["eval", "--dataset", "biomixqa-tf", "--config", "gated", "--json", "--limit", "4",
                                      "--batch-size", "2", "--out", str(out), "--no-progress",
                                      "--pipeline", "tests.fixtures.eval.gated_pipeline:make_pipeline"])
    assert result.exit_code == 0, result.output
    written = [p for p in out.rglob("*") if p.is_file()]
    report = CliRunner().invoke(app, ["eval-report", *map(str, out.rglob("*.jsonl")), "--out", str(env / "rep")])
    assert report.exit_code == 0, report.output
    texts = [result.stdout, result.stderr, report.output, *(p.read_text(errors="replace") for p in written),
             *(p.read_text(errors="replace") for p in (env / "rep").glob("*.*") if p.suffix in (".json", ".md"))]
    for text in texts:
        for secret in URL_SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text[:2000]}"
    rows = [json.loads(line) for p in out.rglob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(rows) == 4 and all(row["gate"][0]["failed"] for row in rows)
    assert "infini-gram API https://user:***@127.0.0.1:9/?api_key=***" in rows[0]["gate"][0]["reason"]
    assert result.stderr.count("warning: the gate's statistics") == 1  # once per run, not per question
    assert json.loads(result.stdout)["run"]["gate_failed_rows"] == 4
    meta = json.loads(next(p for p in written if p.name.endswith(".meta.json")).read_text())
    assert meta["gate_failed_rows"] == 4


def test_ask_shows_the_answer_with_every_credential_masked(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kgrag.commands.ask import public_answer
    from kgrag.types import Answer, GateDecision

    monkeypatch.setenv("KGRAG_STATS_URI", URL_SETTINGS["stats_uri"])
    settings = load_settings(gate_mode="gated")
    reason = f"statistics lookup failed (infini-gram API {settings.stats_uri} failed after 4 tries); retrieving"
    answer = Answer(question="Is metformin used for type 2 diabetes?", text="yes",
                    gate=[GateDecision(stage=1, retrieve=True, failed=True, reason=reason)])
    shown = public_answer(answer, settings).model_dump_json()
    assert "sec-stats-22" not in shown and "sec-key-33" not in shown and "user:***@127.0.0.1:9" in shown


def test_unreachable_statistics_can_be_made_an_error(env: Path) -> None:
    from quco.gate import Gate
    from quco.stats import StatsError

    settings = load_settings(stats_uri=URL_SETTINGS["stats_uri"], stats_max_retries=0, stats_timeout_s=2,
                             stats_total_tokens=10**6, stats_failure_policy="error")
    with pytest.raises(StatsError, match=r"KGRAG_STATS_FAILURE_POLICY=error") as caught:
        Gate.from_settings(settings).check_questions([["metformin"]])
    assert "sec-stats-22" not in str(caught.value) and "user:***@127.0.0.1:9" in str(caught.value)
