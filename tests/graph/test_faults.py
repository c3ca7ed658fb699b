"""Faults in graph builds: a build never touches the live graph; readers refuse a graph they must not serve.

Embedded store: builds go to ``graph.lbug.staging`` and are swapped in with a manifest; a build that
fails or is SIGKILLed part way leaves the previous graph serving with the same counts. Bolt store
(ArcadeDB here): a build marker in the store, ``building`` while a build runs. Readers
(``open_serving_graph``, hence ``Pipeline.from_settings`` and ``kgrag ask``) refuse an empty,
half-built, marked-building or manifest-mismatched graph, naming the fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrag.cli import app
from kgrag.errors import GraphStoreError
from kgrag.graph.ladybug_store import LadybugGraphStore
from kgrag.graph.schema import BuildMarker, EdgeRecord, NodeRecord
from kgrag.graph.serving import FIX, check_serving, manifest_path, open_serving_graph, read_manifest
from kgrag.graph.staging import staged_build, staging_path
from kgrag.answer.pipeline import _open_built_graph
from kgrag.settings import load_settings
from tests.graph.test_contract import bolt_uri, PASSWORD  # noqa: F401  (session fixture: a real ArcadeDB)
from tests.kgrag_env import use_kgrag_env
from tests.graph_loaders.test_build import sources  # noqa: F401  (fixture: a tiny sources mirror)

NODES = [NodeRecord(id="DOID:8893", label="Disease", name="psoriasis"),
         NodeRecord(id="NCBIGene:3106", label="Gene", name="HLA-B")]
EDGES = [EdgeRecord(source_id="DOID:8893", type="ASSOCIATES_DaG", target_id="NCBIGene:3106", sources=["GWAS"])]


@pytest.fixture()
def home(sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """KGRAG_* for the CLI: the tiny sources mirror and an empty home (graph at <home>/graph.lbug)."""
    use_kgrag_env(monkeypatch, sources=sources, home=tmp_path / "home")
    return tmp_path / "home"


def _build(*args: str) -> str:
    """Run `kgrag build-graph --no-progress ARGS`; return stderr+stdout; fail the test on a non-zero exit."""
    result = CliRunner().invoke(app, ["build-graph", "--no-progress", "--json", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _state(home: Path) -> tuple[dict[str, int], dict[str, int], str, int]:
    """What a reader sees: node and edge counts (through the serving check), the manifest's build id, the file size."""
    store = open_serving_graph(load_settings())
    try:
        schema = check_serving(store)
    finally:
        store.close()
    manifest = read_manifest(home / "graph.lbug")
    assert manifest is not None and len(manifest.accept) == 1
    return schema.node_counts, schema.edge_counts, manifest.accept[0].build_id, (home / "graph.lbug").stat().st_size


def test_a_build_is_published_with_its_manifest(home: Path) -> None:
    report = json.loads(_build("--clear"))
    nodes, edges, build_id, size = _state(home)
    assert nodes == report["node_counts"] and edges == report["edge_counts"] and sum(edges.values()) > 0
    entry = read_manifest(home / "graph.lbug").accept[0]
    assert (entry.size, entry.nodes, entry.edges) == (size, sum(nodes.values()), sum(edges.values()))
    with LadybugGraphStore(home / "graph.lbug", read_only=True) as store:
        marker = store.read_marker()
    assert marker is not None and (marker.state, marker.build_id, marker.clear) == ("complete", build_id, True)
    leftovers = sorted(p.name for p in home.iterdir() if p.name.startswith("graph.lbug"))
    assert leftovers == ["graph.lbug", "graph.lbug.build.lock", "graph.lbug.manifest.json"]
    # a plain build merges into a copy of the live graph: same counts, a new build id
    _build()
    again = _state(home)
    assert again[:2] == (nodes, edges) and again[2] != build_id


def test_a_graph_from_before_the_name_key_table_is_refused_and_a_plain_build_adds_it(home: Path) -> None:
    from kgrag.graph.ladybug_store import KEY_TABLE
    from kgrag.graph.serving import write_manifest

    _build("--clear")
    live = home / "graph.lbug"
    with LadybugGraphStore(live) as store:
        store._run(f"DROP TABLE {KEY_TABLE}")  # a graph an earlier kgrag built: no key table
    manifest = read_manifest(live)
    write_manifest(live, manifest.model_copy(update={"accept": [manifest.accept[0].model_copy(
        update={"size": live.stat().st_size})]}))  # its manifest matches it: only the key table is missing
    with pytest.raises(GraphStoreError, match=f"lacks what its lookups need: the name key table {KEY_TABLE}.*build-graph"):
        open_serving_graph(load_settings())
    _build()  # a plain build copies the live graph and opens the copy read-write: the table is added
    store = open_serving_graph(load_settings())
    try:
        assert store.missing_indexes() == []
        assert [n.id for n in store.find_by_name(["psoriasis"])["psoriasis"]] == ["DOID:8893"]
    finally:
        store.close()


def _failing_edges(after: int):
    """A load_edges that writes nothing and fails once ``after`` edges were read (a build dying part way)."""
    original = LadybugGraphStore.load_edges

    def load_edges(self, edges, batch_size=5000):
        def dying():
            for i, edge in enumerate(edges):
                if i == after:
                    raise GraphStoreError("disk full (simulated)")
                yield edge
        return original(self, dying(), batch_size)
    return load_edges


@pytest.mark.parametrize("clear", [False, True])
def test_a_build_failing_part_way_leaves_the_previous_graph_serving(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     clear: bool) -> None:
    _build("--clear")
    before = _state(home)
    monkeypatch.setattr(LadybugGraphStore, "load_edges", _failing_edges(after=3))
    result = CliRunner().invoke(app, ["build-graph", "--no-progress", *(["--clear"] if clear else [])])
    assert result.exit_code == 1 and "disk full" in result.output
    assert _state(home) == before
    assert not staging_path(home / "graph.lbug").exists()


@pytest.mark.parametrize("clear", [False, True])
def test_a_build_that_wrote_nodes_but_no_edges_is_not_published(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  clear: bool) -> None:
    """The probe's case: nodes written, edges never; the build refuses to publish it."""
    _build("--clear")
    before = _state(home)
    if clear:
        monkeypatch.setattr(LadybugGraphStore, "load_edges", lambda self, edges, batch_size=5000: 0)
    else:  # merging into a copy of the live graph: the copy's edges are dropped, the count check notices
        original = LadybugGraphStore.load_edges

        def drop_edges(self, edges, batch_size=5000):
            self._run("MATCH ()-[r:Edge]->() DELETE r")
            return original(self, [], batch_size)
        monkeypatch.setattr(LadybugGraphStore, "load_edges", drop_edges)
    result = CliRunner().invoke(app, ["build-graph", "--no-progress", *(["--clear"] if clear else [])])
    assert result.exit_code == 1 and "0 edges" in result.output, result.output
    assert _state(home) == before


_KILLABLE = """
import sys, time
from pathlib import Path
from kgrag.graph.ladybug_store import LadybugGraphStore
flag, original = Path(sys.argv[1]), LadybugGraphStore.load_edges
def load_edges(self, edges, batch_size=5000):
    def slow():
        for i, edge in enumerate(edges):
            if i == 2:
                flag.write_text("writing edges")
                time.sleep(600)
            yield edge
    return original(self, slow(), batch_size)
LadybugGraphStore.load_edges = load_edges
from kgrag.cli import app
sys.argv = ["kgrag", "build-graph", "--no-progress", *sys.argv[2:]]
app()
"""


@pytest.mark.parametrize("clear", [False, True])
def test_a_sigkilled_build_leaves_the_previous_graph_and_the_next_build_cleans_up(
        home: Path, tmp_path: Path, clear: bool) -> None:
    _build("--clear")
    before = _state(home)
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(flag), *(["--clear"] if clear else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the build never reached its edges"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert staging_path(home / "graph.lbug").exists()  # nodes were written to staging, the live file untouched
    assert _state(home) == before
    output = _build()
    assert "left by an interrupted build" in output and "graph.lbug.staging" in output
    assert not staging_path(home / "graph.lbug").exists()
    assert _state(home)[:2] == before[:2]


def _ladybug_settings(path: Path):
    return load_settings(home=path.parent, graph_uri=f"ladybug://{path}")


def _refused(settings, *fragments: str) -> str:
    with pytest.raises(GraphStoreError) as caught:
        _open_built_graph(settings)
    message = str(caught.value)
    for fragment in (FIX, *fragments):
        assert fragment in message, message
    return message


def test_readers_refuse_a_missing_an_empty_and_a_half_built_embedded_graph(tmp_path: Path) -> None:
    path = tmp_path / "g.lbug"
    _refused(_ladybug_settings(path), str(path), "no graph")
    LadybugGraphStore(path).close()
    _refused(_ladybug_settings(path), str(path), "0 nodes, 0 edges")
    with LadybugGraphStore(path) as store:
        store.load_nodes(NODES)
    _refused(_ladybug_settings(path), str(path), "2 nodes, 0 edges")
    with LadybugGraphStore(path) as store:
        store.load_edges(EDGES)
        store.write_marker(BuildMarker(state="building", build_id="b1", started="2025-01-01T00:00:00+00:00"))
    _refused(_ladybug_settings(path), str(path), "being built")
    with LadybugGraphStore(path) as store:  # a graph loaded directly (no marker, no manifest) is served
        store._run("MATCH (b:KgragBuild) DELETE b")
    _open_built_graph(_ladybug_settings(path)).close()


def test_a_damaged_embedded_graph_file_is_an_error_naming_the_file_and_the_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "g.lbug"
    with LadybugGraphStore(path) as store:
        store.load_nodes(NODES)
        store.load_edges(EDGES)
    with path.open("r+b") as handle:  # its header overwritten: no longer a LadybugDB file
        handle.write(os.urandom(8192))
    with pytest.raises(GraphStoreError) as info:
        open_serving_graph(_ladybug_settings(path))
    assert str(path) in str(info.value) and "kgrag build-graph --clear" in str(info.value)


def test_readers_refuse_an_embedded_graph_that_disagrees_with_its_manifest(home: Path, tmp_path: Path) -> None:
    _build("--clear")
    live, settings = home / "graph.lbug", load_settings()
    _open_built_graph(settings).close()
    manifest = json.loads(manifest_path(live).read_text())
    manifest["accept"][0]["size"] += 4096
    manifest_path(live).write_text(json.dumps(manifest))
    _refused(settings, str(live), "does not match its manifest")
    manifest["accept"][0]["size"] -= 4096
    manifest_path(live).write_text(json.dumps(manifest))
    _open_built_graph(settings).close()
    # another graph copied over the live file (no marker, or another build's): refused
    other = tmp_path / "other.lbug"
    with LadybugGraphStore(other) as store:
        store.load_nodes(NODES)
        store.load_edges(EDGES)
    os.replace(other, live)
    _refused(settings, str(live), "does not match its manifest")
    manifest_path(live).unlink()  # no manifest, no marker: a graph not built by kgrag, served
    _open_built_graph(settings).close()


def test_kgrag_ask_refuses_a_graph_with_nodes_and_no_edges(home: Path) -> None:
    """The probe: nodes without edges used to answer with "no graph context found" and exit 0."""
    with LadybugGraphStore(home / "graph.lbug") as store:
        store.load_nodes(NODES)
    result = CliRunner().invoke(app, ["ask", "Which genes are associated with psoriasis?"])
    assert result.exit_code != 0
    assert FIX in result.output and "0 edges" in result.output


@pytest.fixture()
def bolt(bolt_uri: str) -> Iterator:  # noqa: F811
    """Settings for the ArcadeDB server, its graph and marker emptied."""
    from kgrag.graph import open_graph_store

    settings = load_settings(graph_uri=bolt_uri, graph_user="root", graph_password=PASSWORD, graph_database="neo4j")
    with open_graph_store(settings) as store:
        store.clear()
        store._write(lambda tx: tx.run("MATCH (b:KgragBuild) DELETE b").consume())
    yield settings


def test_bolt_readers_refuse_a_graph_marked_building(bolt) -> None:
    from kgrag.graph import open_graph_store

    with open_graph_store(bolt) as store:
        store.load_nodes(NODES)
        store.load_edges(EDGES)
        assert store.read_marker() is None
        check_serving(store)  # data and no marker (a graph kgrag did not build): served
        store.write_marker(BuildMarker(state="building", build_id="b1", started="2025-01-01T00:00:00+00:00"))
        assert store.read_marker().state == "building"
        schema = store.schema()
        assert (schema.total_nodes, schema.total_edges) == (2, 1)  # the marker is not a node of the graph
        assert [n for n in store.iter_names()] and all(n[0] != "graph" for n in store.iter_names())
    _refused(bolt, "127.0.0.1", "being built")


def test_bolt_build_marks_building_then_complete_and_a_failed_build_stays_refused(bolt) -> None:
    notes: list[str] = []
    with staged_build(bolt, clear=True, say=notes.append) as build:
        build.store.clear()
        assert build.store.read_marker().state == "building"
        build.written(build.store.load_nodes(NODES), build.store.load_edges(EDGES))
    _open_built_graph(bolt).close()
    from kgrag.graph import open_graph_store

    with open_graph_store(bolt) as store:
        marker = store.read_marker()
    assert (marker.state, marker.nodes, marker.edges) == ("complete", 2, 1)
    with pytest.raises(GraphStoreError, match="simulated"), staged_build(bolt, clear=True, say=notes.append) as build:
        build.store.clear()
        build.store.load_nodes(NODES)
        raise GraphStoreError("simulated failure")
    assert any("readers refuse" in note for note in notes)
    _refused(bolt, "being built")
    with staged_build(bolt, clear=False, say=notes.append) as build:
        build.written(0, build.store.load_edges(EDGES))
    assert any("did not finish" in note for note in notes)
    _open_built_graph(bolt).close()


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("dies_at", [1, 2])
def test_a_build_dying_around_the_swap_leaves_a_graph_that_serves(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   dies_at: int, legacy: bool) -> None:
    """Manifest (old+new), os.replace, manifest (new): dying after step 1 or step 2 leaves a pair that passes."""
    import kgrag.graph.staging as staging

    live = home / "graph.lbug"
    if legacy:  # a graph loaded directly, no marker or manifest
        with LadybugGraphStore(live) as store:
            store.load_nodes(NODES)
            store.load_edges(EDGES)
    else:
        _build("--clear")
    before = check_serving_counts()
    calls, original = [], staging.write_manifest

    def dying(path, manifest):  # dies after the first manifest (1) or after the os.replace that follows it (2)
        calls.append(manifest)
        if len(calls) == 2:
            raise GraphStoreError("killed (simulated)")
        original(path, manifest)
        if dies_at == 1:
            raise GraphStoreError("killed (simulated)")
    monkeypatch.setattr(staging, "write_manifest", dying)
    result = CliRunner().invoke(app, ["build-graph", "--no-progress", "--clear"])
    assert result.exit_code == 1 and "killed (simulated)" in result.output
    after = check_serving_counts()  # passes either way
    with LadybugGraphStore(live, read_only=True) as store:
        marker = store.read_marker()
    if dies_at == 1:
        assert after == before and (marker is None) == legacy
    else:
        assert marker.build_id == calls[0].accept[0].build_id and len(read_manifest(live).accept) == 2
    monkeypatch.setattr(staging, "write_manifest", original)
    _build()
    assert len(read_manifest(live).accept) == 1


def check_serving_counts() -> tuple[int, int]:
    store = open_serving_graph(load_settings())
    try:
        schema = check_serving(store)
    finally:
        store.close()
    return schema.total_nodes, schema.total_edges
