"""The GraphStore contract: the same tests on every backend.

``ladybug``: the embedded LadybugDB store on a temporary file.
``bolt``: the Neo4j driver backend against a real ArcadeDB server (Bolt plugin) started on
127.0.0.1 for the session; the graph is cleared between tests.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from kgrag.errors import GraphStoreError
from kgrag.graph import GraphStore, open_graph_store
from kgrag.graph.ladybug_store import LadybugGraphStore, path_from_uri
from tests.local_bolt import arcadedb_server, free_port
from kgrag.graph.neo4j_store import redact_uri
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.settings import load_settings

PASSWORD = "arcade-Secret-42"
INJECTION = "x'}) DETACH DELETE n //"


@pytest.fixture(scope="session")
def bolt_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ArcadeDB server speaking Bolt on a free local port, with a database named ``neo4j``."""
    if importlib.util.find_spec("arcadedb_embedded") is None:  # not importorskip: the JVM stays out of this process
        pytest.skip("arcadedb-embedded is not installed (pip install -e '.[test]')")
    with arcadedb_server(tmp_path_factory.mktemp("arcadedb"), PASSWORD) as uri:
        yield uri


@pytest.fixture(scope="session")
def bolt_store(bolt_uri: str) -> Iterator[GraphStore]:
    settings = load_settings(graph_uri=bolt_uri, graph_user="root", graph_password=PASSWORD, graph_database="neo4j")
    store = open_graph_store(settings)
    yield store
    store.close()


@pytest.fixture(params=["ladybug", "bolt"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    if request.param == "ladybug":
        settings = load_settings(home=tmp_path, graph_uri=f"ladybug://{tmp_path / 'graph.lbug'}")
        opened = open_graph_store(settings)
        yield opened
        opened.close()
    else:
        shared = request.getfixturevalue("bolt_store")
        shared.clear()
        yield shared


def node(node_id: str, label: str, name: str, **extra: object) -> NodeRecord:
    return NodeRecord(id=node_id, label=label, name=name, **extra)


def edge(source: str, edge_type: str, target: str, sources: list[str] | None = None, **props: object) -> EdgeRecord:
    return EdgeRecord(source_id=source, type=edge_type, target_id=target, sources=sources or ["test"], properties=props)


NODES = [
    node("DOID:8893", "Disease", "psoriasis", synonyms=["Psoriasis vulgaris"], xrefs=["UMLS:C0033860"], sources=["DO"], properties={"definition": "skin, \"red\" [scaly]"}),
    node("DOID:9008", "Disease", "psoriatic arthritis"),
    node("DOID:8778", "Disease", "Crohn's disease", synonyms=["regional enteritis"]),
    node("NCBIGene:3106", "Gene", "HLA-B", synonyms=["HLAB"]),
    node("NCBIGene:7015", "Gene", "TERT"),
    node("NCBIGene:1", "Gene", "A1BG"),
    node("DB00331", "Compound", "Metformin"),
]
EDGES = [
    edge("DOID:8893", "ASSOCIATES_DaG", "NCBIGene:3106", ["GWAS"], pvalue=1e-8),
    edge("DOID:8893", "ASSOCIATES_DaG", "NCBIGene:7015", ["DISEASES"]),
    edge("DOID:8893", "ASSOCIATES_DaG", "NCBIGene:1", ["DisGeNET"]),
    edge("DOID:9008", "ASSOCIATES_DaG", "NCBIGene:3106", ["DisGeNET"], score=0.4),
    edge("DOID:9008", "ISA_DiD", "DOID:8893", ["Disease Ontology"]),
    edge("DB00331", "TREATS_CtD", "DOID:8778", ["Hetionet"]),
    edge("DOID:8778", "ASSOCIATES_DaG", "NCBIGene:7015", ["GWAS"]),
]


@pytest.fixture()
def loaded(store: GraphStore) -> GraphStore:
    assert store.load_nodes(NODES, batch_size=3) == len(NODES)
    assert store.load_edges(EDGES, batch_size=4) == len(EDGES)
    return store


def by_key(views):
    return {v.key: v for v in views}


# --- loading and lookup by id -------------------------------------------------------------------


def test_round_trip_nodes(loaded: GraphStore) -> None:
    got = loaded.get_nodes(["NCBIGene:3106", "DOID:8893", "missing:1"])
    assert {n.id: n for n in got} == {n.id: n for n in NODES if n.id in {"NCBIGene:3106", "DOID:8893"}}


def test_schema_counts(loaded: GraphStore) -> None:
    schema = loaded.schema()
    assert schema.node_counts == {"Compound": 1, "Disease": 3, "Gene": 3}
    assert schema.edge_counts == {"ASSOCIATES_DaG": 5, "ISA_DiD": 1, "TREATS_CtD": 1}
    assert (schema.total_nodes, schema.total_edges) == (7, 7)


def test_reload_is_idempotent_and_updates(loaded: GraphStore) -> None:
    before = loaded.schema()
    assert loaded.load_nodes(NODES) == len(NODES)
    assert loaded.load_edges(EDGES) == len(EDGES)
    assert loaded.schema() == before
    renamed = node("NCBIGene:7015", "Gene", "telomerase reverse transcriptase", synonyms=["TERT"], properties={"chr": "5"})
    loaded.load_nodes([renamed])
    assert loaded.get_nodes(["NCBIGene:7015"]) == [renamed]
    assert loaded.schema() == before


def test_duplicates_within_one_batch(store: GraphStore) -> None:
    first, last = node("G:1", "Gene", "first"), node("G:1", "Gene", "last", synonyms=["final"])
    assert store.load_nodes([first, node("G:2", "Gene", "other"), last]) == 2
    assert store.get_nodes(["G:1"]) == [last]
    assert store.find_by_name(["first"])["first"] == []
    assert [n.id for n in store.find_by_name(["final"])["final"]] == ["G:1"]


def test_duplicate_edge_merges_sources_and_properties(loaded: GraphStore) -> None:
    again = edge("DOID:8893", "ASSOCIATES_DaG", "NCBIGene:3106", ["DisGeNET", "GWAS"], score=0.9)
    same_batch = [again, edge("DOID:8893", "ASSOCIATES_DaG", "NCBIGene:3106", ["HPO"], pvalue=1e-9)]
    assert loaded.load_edges(same_batch) == 1
    found = by_key(loaded.edges_between(["DOID:8893"], ["NCBIGene:3106"]))
    merged = found["DOID:8893|ASSOCIATES_DaG|NCBIGene:3106"]
    assert merged.sources == ["GWAS", "DisGeNET", "HPO"]
    assert merged.properties == {"pvalue": 1e-9, "score": 0.9}
    assert loaded.schema().edge_counts["ASSOCIATES_DaG"] == 5


def test_missing_endpoint_edge_is_not_written(loaded: GraphStore) -> None:
    batch = [edge("DOID:8893", "ASSOCIATES_DaG", "NCBIGene:404"), edge("nowhere", "TREATS_CtD", "DOID:8893"), edge("DOID:8778", "RESEMBLES_DrD", "DOID:9008")]
    assert loaded.load_edges(batch) == 1
    assert loaded.schema().total_edges == len(EDGES) + 1
    assert loaded.get_nodes(["NCBIGene:404", "nowhere"]) == []


def test_many_small_batches(store: GraphStore) -> None:
    nodes = [node(f"G:{i}", "Gene", f"gene {i}") for i in range(25)]
    edges = [edge(f"G:{i}", "INTERACTS_GiG", f"G:{(i + 1) % 25}") for i in range(25)]
    assert store.load_nodes([*nodes, node("G:0", "Gene", "gene zero")], batch_size=4) == 26
    assert store.get_nodes(["G:0"])[0].name == "gene zero"
    assert store.load_edges(edges + edges[:5], batch_size=7) == 30
    assert store.schema().edge_counts == {"INTERACTS_GiG": 25}
    with pytest.raises(ValueError, match="batch_size"):
        store.load_nodes(nodes, batch_size=0)


def test_text_survives_storage(store: GraphStore) -> None:
    odd = node(
        "ODD:1",
        "Disease",
        'comma, "quote" \\ back\nnew line [br] é {brace}',
        synonyms=["a,b", "it's", "[x]", "", "   "],
        xrefs=[],
        properties={"nested": {"list": [1, 2.5, None]}, "text": "x'y\"z"},
    )
    store.load_nodes([odd, node("ODD:2", "Disease", "12345")])
    stored = odd.model_copy(update={"synonyms": ["a,b", "it's", "[x]", "   "]})  # empty strings are not stored
    assert store.get_nodes(["ODD:1", "ODD:2"]) == [stored, node("ODD:2", "Disease", "12345")]


# --- lookup by name -----------------------------------------------------------------------------


def test_find_by_name_synonym_case_and_punctuation(loaded: GraphStore) -> None:
    keys = ["PSORIASIS", "psoriasis-vulgaris", "crohn's disease", "CROHN S DISEASE", "hla b", "unknown thing"]
    found = loaded.find_by_name(keys)
    assert set(found) == set(keys)
    assert [n.id for n in found["PSORIASIS"]] == ["DOID:8893"]
    assert [n.id for n in found["psoriasis-vulgaris"]] == ["DOID:8893"]
    assert [n.id for n in found["crohn's disease"]] == ["DOID:8778"]
    assert [n.id for n in found["CROHN S DISEASE"]] == ["DOID:8778"]
    assert [n.id for n in found["hla b"]] == ["NCBIGene:3106"]
    assert found["unknown thing"] == []
    assert found["PSORIASIS"][0] == NODES[0]


def test_find_by_name_label_filter_and_many_matches(loaded: GraphStore) -> None:
    loaded.load_nodes([node("MONDO:1", "Disease", "HLA-B")])
    both = loaded.find_by_name(["HLA-B"])["HLA-B"]
    assert sorted(n.id for n in both) == ["MONDO:1", "NCBIGene:3106"]
    genes = loaded.find_by_name(["HLA-B"], labels=["Gene"])["HLA-B"]
    assert [n.id for n in genes] == ["NCBIGene:3106"]
    assert loaded.find_by_name(["HLA-B"], labels=["Compound"]) == {"HLA-B": []}
    assert loaded.find_by_name([]) == {}


def test_iter_names(loaded: GraphStore) -> None:
    names = {}
    for row in loaded.iter_names():
        names[row[0]] = row
        assert loaded.get_nodes([row[0]])[0].name == row[2]  # other queries while iterating
    assert names["DOID:8893"] == ("DOID:8893", "Disease", "psoriasis", ["Psoriasis vulgaris"])
    assert len(names) == len(NODES)
    assert {row[0] for row in loaded.iter_names(labels=["Gene"])} == {"NCBIGene:3106", "NCBIGene:7015", "NCBIGene:1"}


# --- neighbourhood and edges between ------------------------------------------------------------


def test_neighbourhood_many_seeds_direction_preserved(loaded: GraphStore) -> None:
    views = by_key(loaded.neighbourhood(["DOID:8778", "DOID:9008", "not:there"]))
    assert set(views) == {
        "DB00331|TREATS_CtD|DOID:8778",
        "DOID:8778|ASSOCIATES_DaG|NCBIGene:7015",
        "DOID:9008|ASSOCIATES_DaG|NCBIGene:3106",
        "DOID:9008|ISA_DiD|DOID:8893",
    }
    treats = views["DB00331|TREATS_CtD|DOID:8778"]
    assert (treats.source.id, treats.source.label, treats.source.name) == ("DB00331", "Compound", "Metformin")
    assert (treats.target.id, treats.target.name) == ("DOID:8778", "Crohn's disease")
    assert treats.sources == ["Hetionet"]
    hla = views["DOID:9008|ASSOCIATES_DaG|NCBIGene:3106"]
    assert hla.properties == {"score": 0.4} and hla.type == "ASSOCIATES_DaG"


def test_neighbourhood_incoming_edges_of_a_gene(loaded: GraphStore) -> None:
    views = loaded.neighbourhood(["NCBIGene:3106"])
    assert {(v.source.id, v.target.id) for v in views} == {("DOID:8893", "NCBIGene:3106"), ("DOID:9008", "NCBIGene:3106")}


def test_neighbourhood_edge_type_filter_and_limit(loaded: GraphStore) -> None:
    only_isa = loaded.neighbourhood(["DOID:8893", "DOID:9008"], edge_types=["ISA_DiD"])
    assert [v.key for v in only_isa] == ["DOID:9008|ISA_DiD|DOID:8893"]
    assert loaded.neighbourhood(["DOID:8893"], edge_types=["TREATS_CtD"]) == []
    assert loaded.neighbourhood(["DOID:8893"], edge_types=[]) == []
    full = loaded.neighbourhood(["DOID:8893"])
    assert len(full) == 4
    limited = loaded.neighbourhood(["DOID:8893", "NCBIGene:7015"], limit_per_node=1)
    assert 1 <= len(limited) <= 2
    assert len(loaded.neighbourhood(["DOID:8893"], limit_per_node=2)) == 2
    assert {v.key for v in loaded.neighbourhood(["DOID:8893"], limit_per_node=2)} <= {v.key for v in full}
    associates = loaded.neighbourhood(["DOID:8893"], edge_types=["ASSOCIATES_DaG"], limit_per_node=10)
    assert {v.target.id for v in associates} == {"NCBIGene:3106", "NCBIGene:7015", "NCBIGene:1"}
    with pytest.raises(ValueError, match="limit_per_node"):
        loaded.neighbourhood(["DOID:8893"], limit_per_node=-1)


def test_iter_edges_of_some_types_only(loaded: GraphStore) -> None:
    every = [v.key for batch in loaded.iter_edges(2) for v in batch]
    isa = [v for batch in loaded.iter_edges(2, edge_types=["ISA_DiD"]) for v in batch]
    assert [v.key for v in isa] == ["DOID:9008|ISA_DiD|DOID:8893"] and len(every) == 7
    assert (isa[0].source.name, isa[0].sources) == ("psoriatic arthritis", ["Disease Ontology"])
    assert sorted(v.key for b in loaded.iter_edges(edge_types=["ISA_DiD", "TREATS_CtD"]) for v in b) == sorted(
        k for k in every if "|ISA_DiD|" in k or "|TREATS_CtD|" in k)
    assert list(loaded.iter_edges(edge_types=[])) == []
    with pytest.raises(ValueError):
        list(loaded.iter_edges(edge_types=["ISA_DiD) DETACH DELETE (n"]))


def test_edges_between_either_direction(loaded: GraphStore) -> None:
    views = by_key(loaded.edges_between(["DOID:8893", "DOID:9008"], ["NCBIGene:3106", "DOID:9008"]))
    assert set(views) == {
        "DOID:8893|ASSOCIATES_DaG|NCBIGene:3106",
        "DOID:9008|ASSOCIATES_DaG|NCBIGene:3106",
        "DOID:9008|ISA_DiD|DOID:8893",
    }
    reverse = loaded.edges_between(["DOID:8778"], ["DB00331", "NCBIGene:1"])
    assert [(v.source.id, v.type, v.target.id) for v in reverse] == [("DB00331", "TREATS_CtD", "DOID:8778")]
    assert loaded.edges_between([], ["DB00331"]) == []
    # the same edges whichever list is the longer (a store may loop over the shorter one), in their true direction
    many = ["NCBIGene:3106", "DOID:9008", "NCBIGene:1", "NCBIGene:64127", "DB00331"]
    one_first, many_first = by_key(loaded.edges_between(["DOID:8893"], many)), by_key(loaded.edges_between(many, ["DOID:8893"]))
    assert len(one_first) >= 3 and "DOID:9008|ISA_DiD|DOID:8893" in one_first
    assert {k: (v.source.id, v.target.id) for k, v in many_first.items()} == \
        {k: (v.source.id, v.target.id) for k, v in one_first.items()}


def _count_fetches(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each database read of ``neighbourhood`` and ``edges_between`` on this store."""
    calls: list[str] = []
    for name in ("_fetch_neighbourhood", "_fetch_edges_between"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *args, _real=real, _name=name: calls.append(_name) or _real(*args))
    return calls


def _edges(views) -> list[tuple[str, str, str, list[str], dict]]:
    return sorted((v.source.id, v.type, v.target.id, v.sources, v.properties) for v in views)


def test_remembering_answers_from_fetched_neighbourhoods_without_a_query(loaded: GraphStore, monkeypatch) -> None:
    pairs = [(["DOID:8893", "DOID:9008"], ["NCBIGene:3106", "DOID:9008", "NCBIGene:7015"]),
             (["NCBIGene:3106", "DB00331"], ["DOID:8893", "DOID:8778"]), (["DOID:8893"], ["DOID:8893"])]
    outside = [_edges(loaded.edges_between(a, b)) for a, b in pairs]
    isa_outside = _edges(loaded.neighbourhood(["DOID:8893"], edge_types=["ISA_DiD"]))
    calls = _count_fetches(loaded, monkeypatch)
    with loaded.remembering():
        seeds = loaded.neighbourhood(["DOID:8893", "DOID:9008", "NCBIGene:404"])  # the last is not in the graph
        assert calls == ["_fetch_neighbourhood"] and len(seeds) == 5
        # both remembered: no query, the same edges in their true direction, with sources and properties
        assert _edges(loaded.edges_between(*pairs[0])) == outside[0] and calls == ["_fetch_neighbourhood"]
        assert _edges(loaded.edges_between(*pairs[2])) == outside[2] and calls == ["_fetch_neighbourhood"]
        assert _edges(loaded.neighbourhood(["DOID:8893"], edge_types=["ISA_DiD"])) == isa_outside
        assert len(loaded.neighbourhood(["DOID:8893"], limit_per_node=2)) == 2
        assert loaded.edges_between(["NCBIGene:404"], ["DOID:8893"]) == [] and calls == ["_fetch_neighbourhood"]
        # one side partly remembered: only the nodes neither side remembers are asked about
        assert _edges(loaded.edges_between(*pairs[1])) == outside[1] and calls[-1] == "_fetch_edges_between"
        # a limited fetch that may have cut a neighbourhood, or a filtered one, is not remembered
        loaded.neighbourhood(["DOID:8778"], limit_per_node=1)
        loaded.neighbourhood(["NCBIGene:7015"], edge_types=["ASSOCIATES_DaG"])
        before = len(calls)
        loaded.edges_between(["DOID:8778", "NCBIGene:7015"], ["DB00331"])
        assert calls[before:] == ["_fetch_edges_between"]
        with loaded.remembering():  # nested: the same memory
            loaded.edges_between(["DOID:9008"], ["NCBIGene:3106"])
            assert calls[before:] == ["_fetch_edges_between"]
    # after the block every call reads the database again
    assert _edges(loaded.edges_between(*pairs[0])) == outside[0] and calls[-1] == "_fetch_edges_between"


def test_remembering_is_per_thread(loaded: GraphStore, monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    calls = _count_fetches(loaded, monkeypatch)
    with loaded.remembering():
        loaded.neighbourhood(["DOID:8893"])
        with ThreadPoolExecutor(1) as other:  # another thread outside any block asks the database
            assert len(other.submit(loaded.edges_between, ["DOID:8893"], ["NCBIGene:1"]).result()) == 1
        assert calls == ["_fetch_neighbourhood", "_fetch_edges_between"]
        assert len(loaded.edges_between(["DOID:8893"], ["NCBIGene:1"])) == 1 and len(calls) == 2


def test_clear(loaded: GraphStore) -> None:
    loaded.clear()
    assert loaded.schema().total_nodes == 0 and loaded.schema().total_edges == 0
    assert loaded.load_nodes(NODES[:2]) == 2
    assert loaded.schema().total_nodes == 2


# --- injection and bad input --------------------------------------------------------------------


def test_injection_is_stored_as_text(loaded: GraphStore) -> None:
    evil = node(INJECTION, "Disease", INJECTION, synonyms=[INJECTION])
    assert loaded.load_nodes([evil]) == 1
    assert loaded.load_edges([edge(INJECTION, "ASSOCIATES_DaG", "NCBIGene:1", [INJECTION], note=INJECTION)]) == 1
    assert loaded.get_nodes([INJECTION]) == [evil]
    assert [n.id for n in loaded.find_by_name([INJECTION])[INJECTION]] == [INJECTION]
    assert loaded.schema().total_nodes == len(NODES) + 1
    assert loaded.schema().total_edges == len(EDGES) + 1
    view = loaded.neighbourhood([INJECTION])[0]
    assert view.sources == [INJECTION] and view.properties == {"note": INJECTION}
    for bad in (f"ASSOCIATES_DaG]-() {INJECTION}", "has space", "1abc"):
        with pytest.raises(ValueError, match="not a valid identifier"):
            loaded.neighbourhood(["DOID:8893"], edge_types=[bad])
        with pytest.raises(ValueError, match="not a valid identifier"):
            loaded.find_by_name(["psoriasis"], labels=[bad])
    with pytest.raises(ValidationError, match="not a valid identifier"):
        edge("DOID:8893", "X]->(m) DETACH DELETE m //", "NCBIGene:1")
    assert loaded.schema().total_nodes == len(NODES) + 1


# --- opening stores -----------------------------------------------------------------------------


def test_ladybug_uri_must_be_absolute() -> None:
    with pytest.raises(GraphStoreError, match="absolute"):
        path_from_uri("ladybug://relative/graph.lbug")
    assert path_from_uri("ladybug:///data/g.lbug") == Path("/data/g.lbug")


def test_ladybug_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "g.lbug"
    with LadybugGraphStore(path) as first:
        first.load_nodes(NODES)
        first.load_edges(EDGES)
    with LadybugGraphStore(path) as second:
        assert second.schema().total_edges == len(EDGES)


def test_ladybug_copy_path(tmp_path: Path) -> None:
    """New rows at or over the copy thresholds go through COPY FROM a CSV: same results as UNWIND."""
    odd = node("ODD:1", "Disease", 'a, "b"\nc', synonyms=["x,y", "[z]", "it's"], properties={"k": "v, \"w\""})
    with LadybugGraphStore(tmp_path / "copy.lbug", node_copy_threshold=1, edge_copy_threshold=1) as store:
        assert store.load_nodes([*NODES, odd]) == len(NODES) + 1
        assert store.load_edges([*EDGES, edge("ODD:1", "ASSOCIATES_DaG", "NCBIGene:1", ["a,b", "c"])]) == len(EDGES) + 1
        assert store.get_nodes(["ODD:1", "DOID:8893"]) == [odd, NODES[0]]
        assert [n.id for n in store.find_by_name(["IT S"])["IT S"]] == ["ODD:1"]
        assert store.load_edges(EDGES) == len(EDGES)
        assert store.schema().total_edges == len(EDGES) + 1
        assert by_key(store.neighbourhood(["ODD:1"]))["ODD:1|ASSOCIATES_DaG|NCBIGene:1"].sources == ["a,b", "c"]
        # Into non-empty tables (the per-batch path), still through COPY at these thresholds.
        late = node("ODD:2", "Gene", "late, \"one\"", synonyms=["x\x1ey", "z"], xrefs=["MESH:D1"])
        assert store.load_nodes([late]) == 1
        assert store.load_edges([edge("ODD:2", "INTERACTS_GiG", "NCBIGene:1", ["", "s"])]) == 1
        assert store.get_nodes(["ODD:2"]) == [late]
        assert store.edges_between(["ODD:2"], ["NCBIGene:1"])[0].sources == ["s"]
        with pytest.raises(ValueError, match="U\\+001F"):
            store.load_nodes([node("ODD:3", "Gene", "bad", synonyms=["a\x1fb"])])


def test_redact_uri() -> None:
    assert redact_uri("neo4j+s://neo4j:Sec-ret@db.example.org:7687/x?a=b") == "neo4j+s://db.example.org:7687/x"
    assert redact_uri("bolt://127.0.0.1:7687") == "bolt://127.0.0.1:7687"


def test_bolt_unreachable_gives_clear_error_without_password() -> None:
    secret = "pw-Never-Shown-9"
    for uri in (f"bolt://127.0.0.1:{free_port()}", f"neo4j://someone:{secret}-in-uri@127.0.0.1:{free_port()}"):
        settings = load_settings(graph_uri=uri, graph_password=secret)
        with pytest.raises(GraphStoreError) as info:
            open_graph_store(settings)
        assert "127.0.0.1" in str(info.value) and secret not in str(info.value)


def test_bolt_wrong_password_gives_clear_error_without_password(bolt_uri: str) -> None:
    secret = "wrong-Secret-77"
    settings = load_settings(graph_uri=bolt_uri, graph_user="root", graph_password=SecretStr(secret), graph_database="neo4j")
    with pytest.raises(GraphStoreError, match="AuthError") as info:
        open_graph_store(settings)
    assert secret not in str(info.value) and PASSWORD not in str(info.value)


def test_ladybug_reload_with_new_label(tmp_path: Path) -> None:
    with LadybugGraphStore(tmp_path / "relabel.lbug") as store:
        store.load_nodes([node("X:1", "Gene", "thing")])
        store.load_nodes([node("X:1", "Protein", "thing")])
        assert store.schema().node_counts == {"Protein": 1}
        assert store.find_by_name(["thing"], labels=["Gene"]) == {"thing": []}


def test_local_bolt_server_runs_in_a_child_without_the_password_on_its_command_line(bolt_uri: str) -> None:
    """The JVM stays out of the test process (it crashed it at teardown now and then), and the password
    reaches the child on its standard input, so ``ps`` never shows it."""
    import sys

    import psutil

    port = str(urlparse_port(bolt_uri))
    children = [p.cmdline() for p in psutil.Process().children() if "tests.local_bolt" in p.cmdline()]
    ours = [cmdline for cmdline in children if port in cmdline]
    assert len(ours) == 1, children
    assert not any(PASSWORD in " ".join(cmdline) for cmdline in children)
    assert "jpype" not in sys.modules and "arcadedb_embedded" not in sys.modules


def urlparse_port(uri: str) -> int:
    from urllib.parse import urlparse

    return int(urlparse(uri).port or 0)


# --- lookups through indexes, never a scan (issue 13 item 2) -------------------------------------


def scans(store: GraphStore, query: str, params: dict) -> list[str]:
    """The parts of the plan that read every node of a table instead of going through an index."""
    plan = store.query_plan(query, params)
    if store.backend == "ladybug":
        # PRIMARY_KEY_SCAN_NODE_TABLE / QUERY_PRIMARY_KEY_LOOKUP are index lookups; a plain
        # SCAN_NODE_TABLE reads the whole table (a hash join's build side is one too).
        return [op for op in re.findall(r"([A-Z_]+)\[\d+\]", plan) if op in ("SCAN_NODE_TABLE", "HASH_JOIN_BUILD")]
    # Neo4j names its scan operators; ArcadeDB marks every node match with the index it used.
    return re.findall(r"AllNodesScan|NodeByLabelScan", plan) + [
        line for line in plan.splitlines() if "MATCH NODE" in line and "[index:" not in line
    ]


def lookup_queries(store: GraphStore) -> dict[str, tuple[str, dict]]:
    if store.backend == "ladybug":
        from kgrag.graph import ladybug_store as module

        seed = module.SEED_EDGES.format(where="")
        typed = module.SEED_EDGES.format(where=module.TYPE_FILTER)
        pair = module.PAIR_EDGES
        pair_params = {"id": "DOID:8893", "b": ["NCBIGene:3106"]}
        seed_params = {"id": "DOID:8893"}
        scan = "MATCH (n:Node) WHERE n.name = $name RETURN n.id"
    else:
        from kgrag.graph import neo4j_store as module

        seed = module.SEED_EDGES.format(where="", edges="es")
        typed = module.SEED_EDGES.format(where=module.TYPE_FILTER, edges="es")
        pair = module.PAIR_EDGES
        pair_params = {"a": ["DOID:8893", "DOID:9008"], "b": ["NCBIGene:3106"]}
        seed_params = {"ids": ["DOID:8893", "DOID:9008"]}
        scan = "MATCH (n:Entity) WHERE n.name = $name RETURN n.id"
    return {
        "ids": (module.ID_LOOKUP, {"ids": ["DOID:8893", "NCBIGene:3106"]}),
        "names": (module.KEY_LOOKUP, {"keys": ["psoriasis", "hla b"]}),
        "neighbourhood": (seed, seed_params),
        "neighbourhood by type": (typed, {**seed_params, "types": ["ASSOCIATES_DaG"]}),
        "edges_between": (pair, pair_params),
        "control: name without index": (scan, {"name": "psoriasis"}),
    }


def test_lookups_go_through_an_index_never_a_scan(loaded: GraphStore) -> None:
    queries = lookup_queries(loaded)
    control = queries.pop("control: name without index")
    assert scans(loaded, *control), "the plan check must see a scan where there is one"
    found = {name: scans(loaded, query, params) for name, (query, params) in queries.items()}
    assert found == {name: [] for name in queries}, {name: loaded.query_plan(*queries[name]) for name in found if found[name]}
    assert loaded.missing_indexes() == []


def test_name_keys_follow_renames_and_shared_names(loaded: GraphStore) -> None:
    loaded.load_nodes([node("MONDO:7", "Gene", "TERT")])  # a second node named TERT
    assert sorted(n.id for n in loaded.find_by_name(["tert"])["tert"]) == ["MONDO:7", "NCBIGene:7015"]
    loaded.load_nodes([node("NCBIGene:7015", "Gene", "telomerase reverse transcriptase")])  # loses the name TERT
    assert [n.id for n in loaded.find_by_name(["tert"])["tert"]] == ["MONDO:7"]
    assert [n.id for n in loaded.find_by_name(["Telomerase reverse-transcriptase"])["Telomerase reverse-transcriptase"]] \
        == ["NCBIGene:7015"]
    loaded.load_nodes([node("NCBIGene:1", "Gene", "A1BG", synonyms=["alpha 1B glycoprotein"])])
    assert [n.id for n in loaded.find_by_name(["alpha-1B glycoprotein"])["alpha-1B glycoprotein"]] == ["NCBIGene:1"]


def test_a_ladybug_graph_without_the_name_key_table_is_refused_then_migrated(tmp_path: Path) -> None:
    from kgrag.graph.ladybug_store import KEY_TABLE
    from kgrag.graph.serving import check_serving

    path = tmp_path / "old.lbug"
    with LadybugGraphStore(path) as store:
        store.load_nodes(NODES)
        store.load_edges(EDGES)
        store._run(f"DROP TABLE {KEY_TABLE}")  # what a graph written before the key table looks like
    with LadybugGraphStore(path, read_only=True) as old:
        assert "NameKey" in old.missing_indexes()[0]
        with pytest.raises(GraphStoreError, match="lacks what its lookups need.*NameKey.*build-graph"):
            check_serving(old)
        with pytest.raises(GraphStoreError, match="missing the name key table NameKey"):
            old.find_by_name(["psoriasis"])
    with LadybugGraphStore(path) as migrated:  # opened read-write: the key table is built from the nodes
        assert migrated.missing_indexes() == []
        assert [n.id for n in migrated.find_by_name(["psoriasis vulgaris"])["psoriasis vulgaris"]] == ["DOID:8893"]
        check_serving(migrated)


def test_a_bolt_graph_without_name_keys_is_refused_then_backfilled(bolt_store: GraphStore) -> None:
    from kgrag.graph.serving import check_serving

    bolt_store.clear()
    bolt_store.load_nodes(NODES)
    bolt_store.load_edges(EDGES)
    bolt_store._write(lambda tx: tx.run("MATCH (k:NameKey) DELETE k").consume())  # a graph loaded before the keys
    assert "NameKey" in bolt_store.missing_indexes()[0]
    with pytest.raises(GraphStoreError, match="lacks what its lookups need.*NameKey.*build-graph"):
        check_serving(bolt_store)
    bolt_store.load_nodes([node("DOID:1", "Disease", "new disease")])  # the next load adds them from every node
    assert bolt_store.missing_indexes() == []
    found = bolt_store.find_by_name(["psoriasis vulgaris", "new disease"])
    assert [n.id for n in found["psoriasis vulgaris"]] == ["DOID:8893"]
    assert [n.id for n in found["new disease"]] == ["DOID:1"]
    bolt_store.clear()
