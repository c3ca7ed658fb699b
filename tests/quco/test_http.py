"""HttpInfiniGramStats against a local HTTP server that mimics the public Infini-gram API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from quco.stats import HttpInfiniGramStats, StatsError, open_corpus_stats

COUNTS = {"metformin": 120, "diabetes": 900, "Takayasu arteritis": 3}
AND = {("metformin", "diabetes"): 55}


class FakeApi:
    """Answers like api.infini-gram.io: {count, approx, latency} or {error}; can fail or stall first."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_first = 0  # answer 503 to this many requests first
        self.delay_s = 0.0
        self.lock = threading.Lock()

    def answer(self, payload: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(payload)
            if self.fail_first > 0:
                self.fail_first -= 1
                return 503, {"error": "busy"}
        time.sleep(self.delay_s)
        if payload.get("index") != "v4_test_llama" or payload.get("query_type") != "count":
            return 200, {"error": f"bad index or query_type: {payload}"}
        query = payload["query"]
        if " AND " in query:
            a, b = query.split(" AND ")
            if not (isinstance(payload.get("max_diff_tokens"), int) and isinstance(payload.get("max_clause_freq"), int)):
                return 200, {"error": "max_diff_tokens and max_clause_freq required"}
            n = AND.get((a, b), AND.get((b, a), 0))
        elif query == "boom":
            return 200, {"error": "query too long"}
        else:
            n = COUNTS.get(query, 0)
        return 200, {"count": n, "approx": False, "latency": 1.5}


@pytest.fixture()
def api() -> Iterator[tuple[str, FakeApi]]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer = fake.answer(body)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client timed out and left
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", fake
    server.shutdown()
    server.server_close()


def _stats(url: str, **kw) -> HttpInfiniGramStats:
    return HttpInfiniGramStats(url, "v4_test_llama", total_tokens=10**9, backoff_s=0.01, **kw)


def test_counts_and_and_queries_follow_the_api(api) -> None:
    url, fake = api
    stats = _stats(url, max_clause_freq=1234)
    assert stats.count(["metformin", "Takayasu arteritis", "warfarin"]) == [120, 3, 0]
    assert stats.cooccur([("metformin", "diabetes"), ("metformin", "Takayasu arteritis")], 700) == [55, 0]
    and_queries = [r for r in fake.requests if " AND " in r["query"]]
    assert {r["query"] for r in and_queries} == {"metformin AND diabetes", "metformin AND Takayasu arteritis"}
    assert all(r["max_diff_tokens"] == 700 and r["max_clause_freq"] == 1234 for r in and_queries)


def test_results_are_cached_and_batches_deduplicated(api) -> None:
    url, fake = api
    stats = _stats(url)
    assert stats.count(["metformin", "metformin", "diabetes"]) == [120, 120, 900]
    assert len(fake.requests) == 2
    assert stats.count(["diabetes"]) == [900]
    assert stats.cooccur([("metformin", "diabetes"), ("diabetes", "metformin")], 50) == [55, 55]
    assert len(fake.requests) == 3
    stats.cooccur([("metformin", "diabetes")], 51)  # another window is another query
    assert len(fake.requests) == 4


def test_retries_with_backoff_then_succeeds(api) -> None:
    url, fake = api
    fake.fail_first = 2
    assert _stats(url, max_retries=2).count(["metformin"]) == [120]
    assert len(fake.requests) == 3


def test_gives_up_after_retries_with_a_clear_error(api) -> None:
    url, fake = api
    fake.fail_first = 10
    with pytest.raises(StatsError, match="failed after 3 tries.*HTTP 503"):
        _stats(url, max_retries=2).count(["metformin"])
    assert len(fake.requests) == 3


def test_api_error_is_raised_not_read_as_zero(api) -> None:
    url, fake = api
    with pytest.raises(StatsError, match="query too long"):
        _stats(url).count(["boom"])
    assert len(fake.requests) == 1  # an answered error is not retried


def test_timeout(api) -> None:
    url, fake = api
    fake.delay_s = 0.5
    with pytest.raises(StatsError, match="ReadTimeout"):
        _stats(url, timeout_s=0.05, max_retries=1).count(["metformin"])


def test_unreachable_server(api) -> None:
    with pytest.raises(StatsError, match="ConnectError"):
        _stats("http://127.0.0.1:9/", max_retries=0).count(["metformin"])


def test_open_corpus_stats_http(api, tmp_settings) -> None:
    url, _ = api
    settings = tmp_settings.model_copy(update={"stats_uri": url, "stats_index": "v4_test_llama"})
    with pytest.raises(StatsError, match="KGRAG_STATS_TOTAL_TOKENS"):
        open_corpus_stats(settings)
    stats = open_corpus_stats(settings.model_copy(update={"stats_total_tokens": 5 * 10**9}))
    assert stats.total_tokens == 5 * 10**9
    assert stats.count(["Takayasu arteritis"]) == [3]
