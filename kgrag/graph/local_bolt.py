"""A local Bolt server for tests and benchmarks: ArcadeDB (PyPI ``arcadedb-embedded``) with its Bolt plugin.

It speaks Bolt and Neo4j-style Cypher to the official driver, on 127.0.0.1 only. Not for production:
point ``KGRAG_GRAPH_URI`` at a real Neo4j there.

Example::

    with arcadedb_server(Path("/tmp/arcade"), "s3cret-pass") as uri:
        store = Neo4jGraphStore(uri, user="root", password=SecretStr("s3cret-pass"), database="neo4j")
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kgrag.errors import BackendUnavailableError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def arcadedb_server(root: Path, password: str) -> Iterator[str]:
    """Start ArcadeDB with its Bolt plugin and a database named ``neo4j``; yield the bolt:// URI; stop it after."""
    try:
        import arcadedb_embedded
    except ImportError as exc:
        raise BackendUnavailableError("a local Bolt server needs arcadedb-embedded (pip install 'kgrag[test]')") from exc
    bolt_port = free_port()
    server = arcadedb_embedded.create_server(
        root_path=str(root),
        root_password=password,
        config={
            "host": "127.0.0.1",
            "http_port": free_port(),
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": bolt_port,
        },
    )
    server.start()
    try:
        server.create_database("neo4j")
        yield f"bolt://127.0.0.1:{bolt_port}"
    finally:
        server.stop()
