"""Whether a graph may be served: one check for every reader, and the Ladybug build manifest.

A reader (the pipeline, hence ``kgrag ask``, ``kgrag eval`` and the LangChain retrievers) opens the
graph with :func:`open_serving_graph`, which runs :func:`check_serving`. It refuses, with a
:class:`~kgrag.errors.GraphStoreError` that names the graph and the command that fixes it:

- a missing graph file (embedded store);
- a graph whose build marker says ``building`` (a build is running or was killed part way; on
  Neo4j a ``--clear`` build empties the live graph, so readers are refused until it finishes);
- a graph without nodes or without edges;
- a graph without its lookup index or name key table (written before they existed; the store's
  ``missing_indexes`` names the fix);
- an embedded graph whose manifest (``graph.lbug.manifest.json``) names neither the build the file
  holds nor the file's size (the file was replaced, truncated or written to outside a build).

A graph with no marker and no manifest (not built by ``kgrag build-graph``, e.g. a production
SPOKE in Neo4j or a graph a test loaded directly) is served when it is not empty.

Example::

    from kgrag.graph.serving import open_serving_graph
    store = open_serving_graph(load_settings())   # GraphStoreError if the graph may not be served
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, ValidationError

from kgrag.errors import GraphStoreError
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import GraphSchema

if TYPE_CHECKING:
    from kgrag.settings import Settings

FIX = "kgrag build-graph --clear"
_OPEN_ATTEMPTS = 3


class ManifestEntry(BaseModel):
    """One build a graph file may hold: its id (as in the file's marker), size and counts."""

    build_id: str | None = Field(description="The build id in the file's marker; None for a graph without one "
                                             "(one that was live, unmarked, when a build replaced it)")
    size: int = Field(ge=0, description="Bytes of the graph file after the build closed it")
    nodes: int = Field(ge=0)
    edges: int = Field(ge=0)
    finished: str = Field(description="UTC ISO time the build finished")
    settings_fingerprint: str | None = None


class BuildManifest(BaseModel):
    """The sidecar ``<graph>.manifest.json``. ``accept`` lists the builds the file may hold.

    During a swap it names the new build and the previous one (so a reader passes the check on
    either side of ``os.replace``); afterwards only the new one.
    """

    graph: str = Field(description="File name of the graph this manifest describes")
    accept: list[ManifestEntry] = Field(min_length=1)


def manifest_path(graph_path: Path) -> Path:
    """``/x/graph.lbug`` -> ``/x/graph.lbug.manifest.json``."""
    return graph_path.with_name(graph_path.name + ".manifest.json")


def read_manifest(graph_path: Path) -> BuildManifest | None:
    """The manifest beside ``graph_path``, None when there is none; an unreadable one is an error."""
    path = manifest_path(graph_path)
    try:
        return BuildManifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError, json.JSONDecodeError) as exc:
        raise GraphStoreError(f"the graph manifest {path} is unreadable ({exc}); rebuild with `{FIX}`") from None


def write_manifest(graph_path: Path, manifest: BuildManifest) -> None:
    """Write the manifest atomically (temporary file, fsync, ``os.replace``)."""
    path = manifest_path(graph_path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(manifest.model_dump_json(indent=2))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def check_serving(store: GraphStore) -> GraphSchema:
    """Refuse a graph readers must not use (see the module docstring); return its schema when it may be served."""
    where = store.location
    marker = store.read_marker()
    if marker is not None and marker.state != "complete":
        raise GraphStoreError(
            f"the graph at {where} is being built or its build was interrupted (build {marker.build_id}, "
            f"started {marker.started}); wait for the build to finish or run `{FIX}`"
        )
    if missing := store.missing_indexes():
        raise GraphStoreError(f"the graph at {where} lacks what its lookups need: {'; '.join(missing)}")
    schema = store.schema()
    if schema.total_nodes == 0 or schema.total_edges == 0:
        raise GraphStoreError(
            f"the graph at {where} is empty or half-built ({schema.total_nodes:,} nodes, "
            f"{schema.total_edges:,} edges); build it with `{FIX}`"
        )
    if store.path is not None:  # the embedded store's file; Bolt stores have none
        _check_manifest(store.path, marker.build_id if marker is not None else None)
    return schema


def _check_manifest(graph_file: Path, build_id: str | None) -> None:
    """The manifest beside ``graph_file`` must name the build the file holds and the file's size."""
    manifest = read_manifest(graph_file)
    if manifest is None:
        if build_id is not None:
            raise GraphStoreError(f"the graph at {graph_file} has no manifest ({manifest_path(graph_file).name}); "
                                  f"rebuild it with `{FIX}`")
        return  # not built by kgrag build-graph: served like any non-empty graph
    size = graph_file.stat().st_size
    if not any(e.build_id == build_id and e.size == size for e in manifest.accept):
        expected = ", ".join(f"build {e.build_id} of {e.size:,} bytes" for e in manifest.accept)
        raise GraphStoreError(
            f"the graph at {graph_file} does not match its manifest (file: build {build_id}, {size:,} bytes; "
            f"manifest: {expected}); it was replaced or changed outside a build; rebuild it with `{FIX}`"
        )


def _file_identity(settings: "Settings") -> tuple[int, int] | None:
    """(device, inode) of the embedded graph file, None for a Bolt graph; GraphStoreError when missing."""
    if not settings.graph_uri.startswith("ladybug://"):
        return None
    from kgrag.graph.ladybug_store import path_from_uri

    path = path_from_uri(settings.graph_uri)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise GraphStoreError(f"no graph at {path} (KGRAG_GRAPH_URI); build it with `{FIX}`") from None
    return stat.st_dev, stat.st_ino


def open_serving_graph(settings: "Settings") -> GraphStore:
    """Open the configured graph read-only and :func:`check_serving` it; close it and raise if refused.

    A build that swaps the file while this looks (the inode changes) makes it look again, so a
    reader never fails for having read the new manifest beside the old file.
    """
    from kgrag.graph import open_graph_store

    for attempt in range(_OPEN_ATTEMPTS):
        before = _file_identity(settings)
        store = open_graph_store(settings, read_only=True)
        try:
            check_serving(store)
            if _file_identity(settings) == before:
                return store
        except GraphStoreError:
            if _file_identity(settings) == before or attempt == _OPEN_ATTEMPTS - 1:
                store.close()
                raise
        store.close()
    raise GraphStoreError(f"the graph at {settings.graph_uri} was replaced {_OPEN_ATTEMPTS} times while opening; try again")
