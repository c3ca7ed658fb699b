"""A local Bolt server for tests and benchmarks: ArcadeDB (PyPI ``arcadedb-embedded``) with its Bolt plugin.

It speaks Bolt and Neo4j-style Cypher to the official driver, on 127.0.0.1 only. Not for production:
point ``KGRAG_GRAPH_URI`` at a real Neo4j there.

The server runs in a child process (``python -m tests.local_bolt``), so its JVM never lives in the
caller's process: a JVM stopped or torn down inside the test process crashed it now and then (exit 139,
with no Python traceback, since the JVM owns SIGSEGV there). The password reaches the child on its
standard input, never on its command line; the child stops the server when that input closes, so it
also stops when the caller dies.

Example::

    with arcadedb_server(Path("/tmp/arcade"), "s3cret-pass") as uri:
        store = Neo4jGraphStore(uri, user="root", password=SecretStr("s3cret-pass"), database="neo4j")
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kgrag.errors import BackendUnavailableError

READY = "kgrag-local-bolt-ready"
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0

REPO = Path(__file__).resolve().parents[1]  # the child runs `-m tests.local_bolt` from here


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def arcadedb_server(root: Path, password: str) -> Iterator[str]:
    """Start ArcadeDB with its Bolt plugin and a database named ``neo4j`` in a child process; yield the
    bolt:// URI; stop it after."""
    if importlib.util.find_spec("arcadedb_embedded") is None:
        raise BackendUnavailableError("a local Bolt server needs arcadedb-embedded (pip install 'kgrag[test]')")
    root.mkdir(parents=True, exist_ok=True)
    bolt_port, http_port = free_port(), free_port()
    log = root / "server.log"
    with log.open("w") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.local_bolt", "--root", str(root / "databases"),
             "--bolt-port", str(bolt_port), "--http-port", str(http_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=REPO)
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(password + "\n")
        child.stdin.flush()
        _wait_ready(child, log)
        yield f"bolt://127.0.0.1:{bolt_port}"
    finally:
        child.stdin.close()  # the child stops the server when its input closes
        try:
            child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


def _wait_ready(child: subprocess.Popen[str], log: Path) -> None:
    assert child.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 1.0)
        if ready:
            line = child.stdout.readline()
            if line.strip() == READY:
                return
            if not line:  # the child exited before it was ready
                break
    child.kill()
    child.wait()
    raise BackendUnavailableError(
        f"the local ArcadeDB Bolt server did not start (exit {child.returncode}); its log {log} ends:\n{_log_tail(log)}")


def _serve(root: Path, bolt_port: int, http_port: int) -> None:
    """The child: start the server, say it is ready, and stop it when standard input closes."""
    import arcadedb_embedded

    password = sys.stdin.readline().rstrip("\n")
    server = arcadedb_embedded.create_server(
        root_path=str(root),
        root_password=password,
        config={
            "host": "127.0.0.1",
            "http_port": http_port,
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": bolt_port,
        },
    )
    server.start()
    try:
        server.create_database("neo4j")
        print(READY, flush=True)
        while sys.stdin.readline():  # EOF: the parent closed our input, or died
            pass
    finally:
        server.stop()
        sys.stderr.flush()
        os._exit(0)  # not the JVM's teardown at interpreter exit: that is what crashed now and then


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a local ArcadeDB with Bolt (password on stdin).")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--bolt-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args()
    _serve(args.root, args.bolt_port, args.http_port)


if __name__ == "__main__":
    main()
