"""Graph stores: the :class:`GraphStore` protocol and :func:`open_graph_store`, which picks a backend by URI.

``ladybug:///abs/path/graph.lbug`` opens the embedded LadybugDB store (no server);
``bolt://``, ``bolt+s://``, ``neo4j://``, ``neo4j+s://`` connect to Neo4j (or any Bolt server) with
``settings.graph_user`` / ``graph_password`` / ``graph_database``.

Example::

    from kgrag.graph import open_graph_store
    from kgrag.settings import load_settings
    with open_graph_store(load_settings(graph_uri="ladybug:///tmp/graph.lbug")) as store:
        print(store.schema().node_counts)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrag.errors import GraphStoreError
from kgrag.graph.base import GraphStore

if TYPE_CHECKING:
    from kgrag.settings import Settings

BOLT_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")

__all__ = ["GraphStore", "open_graph_store", "BOLT_SCHEMES"]


def open_graph_store(settings: "Settings", *, read_only: bool = False) -> GraphStore:
    """Open the store named by ``settings.graph_uri`` (backends are imported only when chosen).

    ``read_only`` lets several processes share an embedded graph (answering, evaluating); building
    needs the default read-write store. A Bolt server handles concurrency itself.
    """
    uri = settings.graph_uri
    if uri.startswith("ladybug://"):
        from kgrag.graph.ladybug_store import LadybugGraphStore

        return LadybugGraphStore.from_uri(uri, read_only=read_only)
    if uri.startswith(BOLT_SCHEMES):
        from kgrag.graph.neo4j_store import Neo4jGraphStore

        return Neo4jGraphStore(
            uri,
            user=settings.graph_user,
            password=settings.graph_password,
            database=settings.graph_database,
        )
    raise GraphStoreError(
        f"graph URI scheme {uri.split('://')[0]!r} (KGRAG_GRAPH_URI) names no known backend: "
        "use ladybug:///abs/path, bolt://host:port or neo4j://host:port"
    )
