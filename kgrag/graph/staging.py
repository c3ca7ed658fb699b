"""A graph build that never leaves a half-built graph for readers: :func:`staged_build`.

Embedded store (``ladybug:///x/graph.lbug``): the build writes ``graph.lbug.staging`` beside the
live file (empty with ``clear``; otherwise a copy of the live graph, so a plain build still merges
into it). When the load is done and checked (nodes > 0, edges > 0, counts within what was written),
the staging store is closed (LadybugDB checkpoints on close: no ``.wal`` is left), fsynced, and
swapped in with ``os.replace``; the manifest ``graph.lbug.manifest.json`` names the build id the
file holds (its marker) and the file's size. The manifest first accepts the old and the new build,
then the graph is replaced, then the manifest accepts only the new build: at every moment, and
after a kill at any moment, the live pair passes the reader's check. Readers that have the old file
open keep reading its inode. A killed build leaves only ``graph.lbug.staging`` (and its ``.wal``),
which the next build removes (it says so). One build at a time: ``graph.lbug.build.lock``.

Bolt store (Neo4j, ArcadeDB): there is no file to swap (Neo4j Community has no staging database),
so the build writes the store's build marker with ``state="building"`` before it changes anything
and ``"complete"`` after the check. Readers refuse a graph marked building: on Neo4j a ``--clear``
build is not isolated, it is refused while it runs and after it fails.

Example::

    with staged_build(settings, clear=True, say=print) as build:
        nodes = build.store.load_nodes(records)
        edges = build.store.load_edges(edge_records)
        build.written(nodes, edges)
    # here the new graph is live (or, on any error, the old one still is)
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from kgrag.errors import GraphStoreError
from kgrag.graph.base import GraphStore
from kgrag.graph.schema import BuildMarker, GraphSchema
from kgrag.graph.serving import BuildManifest, ManifestEntry, read_manifest, write_manifest
from kgrag.artefacts import BuildLockedError, build_lock

if TYPE_CHECKING:
    from kgrag.settings import Settings

STAGING_SUFFIX = ".staging"
WAL_SUFFIX = ".wal"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def staging_path(live: Path) -> Path:
    """``/x/graph.lbug`` -> ``/x/graph.lbug.staging``."""
    return live.with_name(live.name + STAGING_SUFFIX)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + WAL_SUFFIX)


@dataclass
class StagedBuild:
    """What the body of :func:`staged_build` writes into, and what it reports having written."""

    store: GraphStore
    marker: BuildMarker
    before: GraphSchema
    nodes_written: int | None = None
    edges_written: int | None = None

    def written(self, nodes: int, edges: int) -> None:
        """Record the loaders' counts; the build's check compares the store with them."""
        self.nodes_written, self.edges_written = nodes, edges


def check_loaded(build: StagedBuild, after: GraphSchema) -> None:
    """Refuse to publish a load that left no nodes or no edges, or more rows than were written."""
    where = build.store.location
    if after.total_nodes == 0 or after.total_edges == 0:
        raise GraphStoreError(f"the build left {after.total_nodes:,} nodes and {after.total_edges:,} edges "
                              f"in {where}; a graph needs both")
    if build.nodes_written is None or build.edges_written is None:
        return
    before = GraphSchema(backend=after.backend, node_counts={}, edge_counts={}) if build.marker.clear else build.before
    # A clear build holds at most what was written; a merge into the previous graph keeps every
    # row it had and adds at most what was written (repeated ids and edges are merged, not added).
    fits = (before.total_nodes <= after.total_nodes <= before.total_nodes + build.nodes_written
            and before.total_edges <= after.total_edges <= before.total_edges + build.edges_written)
    if not fits:
        raise GraphStoreError(
            f"the store at {where} holds {after.total_nodes:,} nodes and {after.total_edges:,} edges, which does not "
            f"match the {build.nodes_written:,} nodes and {build.edges_written:,} edges written "
            f"(before: {before.total_nodes:,} / {before.total_edges:,})")


def _finished(build: StagedBuild, after: GraphSchema) -> BuildMarker:
    return build.marker.model_copy(update={"state": "complete", "finished": _now(),
                                           "nodes": after.total_nodes, "edges": after.total_edges})


@contextmanager
def staged_build(settings: "Settings", *, clear: bool, say: Callable[[str], None]) -> Iterator[StagedBuild]:
    """Open a store to build into; publish it when the body returns and the load checks out (module docstring).

    ``say`` receives notes for stderr (a stale staging file removed, a previous build that did
    not finish). Any error in the body or in the check leaves the live graph as it was (Ladybug)
    or marked as building (Bolt), and is raised.
    """
    marker = BuildMarker(state="building", build_id=uuid.uuid4().hex[:16], started=_now(), clear=clear)
    if settings.graph_uri.startswith("ladybug://"):
        from kgrag.graph.ladybug_store import path_from_uri

        with _ladybug_build(path_from_uri(settings.graph_uri), marker, settings, say) as build:
            yield build
    else:
        with _bolt_build(settings, marker, say) as build:
            yield build


@contextmanager
def _build_lock(live: Path) -> Iterator[None]:
    """The one build lock (:func:`kgrag.artefacts.build_lock`) on ``<graph>.build.lock``."""
    try:
        with build_lock(live, kind="graph", rebuild="kgrag build-graph"):
            yield
    except BuildLockedError as exc:
        raise GraphStoreError(str(exc)) from None


def remove_stale_staging(live: Path, say: Callable[[str], None]) -> None:
    """Delete what a killed build left beside ``live`` (staging file, its WAL, a manifest's temporary file)."""
    staging = staging_path(live)
    leftovers = [staging, _wal(staging), live.with_name(live.name + ".manifest.json.tmp")]
    for path in leftovers:
        if path.exists():
            path.unlink()
            say(f"removed {path}, left by an interrupted build")


def _prepare_staging(live: Path, staging: Path, clear: bool) -> None:
    """Empty staging for ``clear`` or a first build; otherwise a copy of the live graph (and its WAL, if any)."""
    if clear or not live.exists():
        return
    shutil.copyfile(live, staging)
    if _wal(live).exists():  # a writer outside a build did not checkpoint: its log belongs to the graph
        shutil.copyfile(_wal(live), _wal(staging))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _live_entry(live: Path) -> list[ManifestEntry]:
    """The entry the live graph passes the check with now: its manifest's, or (unmarked graph) its size."""
    if not live.exists():
        return []
    previous = read_manifest(live)
    if previous is not None:
        return previous.accept[:1]
    return [ManifestEntry(build_id=None, size=live.stat().st_size, nodes=0, edges=0, finished=_now())]


def publish(live: Path, staging: Path, marker: BuildMarker, fingerprint: str | None) -> None:
    """Swap the closed staging file in: manifest accepting old and new, ``os.replace``, manifest accepting new."""
    if _wal(staging).exists():
        raise GraphStoreError(f"{_wal(staging)} is still there after closing the build; not publishing it")
    _fsync(staging)
    entry = ManifestEntry(build_id=marker.build_id, size=staging.stat().st_size, nodes=marker.nodes,
                          edges=marker.edges, finished=marker.finished or _now(), settings_fingerprint=fingerprint)
    during = [entry, *_live_entry(live)]
    write_manifest(live, BuildManifest(graph=live.name, accept=during))
    if _wal(live).exists():  # never let a stale log be replayed against the new file
        _wal(live).unlink()
    os.replace(staging, live)
    _fsync(live.parent)
    write_manifest(live, BuildManifest(graph=live.name, accept=[entry]))


@contextmanager
def _ladybug_build(live: Path, marker: BuildMarker, settings: "Settings",
                   say: Callable[[str], None]) -> Iterator[StagedBuild]:
    from kgrag.graph.ladybug_store import LadybugGraphStore

    staging = staging_path(live)
    with _build_lock(live):
        remove_stale_staging(live, say)
        try:
            _prepare_staging(live, staging, marker.clear)
            store = LadybugGraphStore(staging)
        except BaseException:
            remove_stale_staging(live, lambda _: None)
            raise
        closed = False
        try:
            build = StagedBuild(store=store, marker=marker, before=store.schema())
            store.write_marker(marker)
            yield build
            after = store.schema()
            check_loaded(build, after)
            done = _finished(build, after)
            store.write_marker(done)
            store.close()
            closed = True
            publish(live, staging, done, settings.fingerprint())
        finally:
            if not closed:
                store.close()
            remove_stale_staging(live, lambda _: None)  # after a failure: the live graph stays as it was


@contextmanager
def _bolt_build(settings: "Settings", marker: BuildMarker, say: Callable[[str], None]) -> Iterator[StagedBuild]:
    from kgrag.graph import open_graph_store

    store = open_graph_store(settings)
    try:
        previous = store.read_marker()
        if previous is not None and previous.state == "building":
            say(f"the previous build of {store.location} (started {previous.started}) did not finish; building again")
        build = StagedBuild(store=store, marker=marker, before=store.schema())
        store.write_marker(marker)
        try:
            yield build
            after = store.schema()
            check_loaded(build, after)
        except BaseException:
            say(f"the graph at {store.location} stays marked as being built: readers refuse it until a build finishes")
            raise
        store.write_marker(_finished(build, after))
    finally:
        store.close()
