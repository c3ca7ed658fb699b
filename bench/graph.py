"""Graph store benchmark: load rate and one-hop neighbourhood latency on both backends.

Builds a synthetic SPOKE-style graph (default 20k nodes, 200k edges; ``--scale`` multiplies both),
loads it into each backend and times ``neighbourhood`` for 1, 32 and 256 random seed nodes.
The Bolt backend runs against an ArcadeDB server (PyPI ``arcadedb-embedded``) this script starts
on 127.0.0.1 and stops. Prints a table; nothing is asserted.

    python bench/graph.py                      # 20k nodes, 200k edges, both backends
    python bench/graph.py --scale 0.1 --backends ladybug
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.local_bolt, the test Bolt server

from tests.local_bolt import arcadedb_server, free_port
from kgrag.graph.base import GraphStore
from kgrag.graph.ladybug_store import LadybugGraphStore
from kgrag.graph.neo4j_store import Neo4jGraphStore
from kgrag.graph.schema import EDGE_TYPES, EdgeRecord, NodeRecord

SEED_COUNTS = (1, 32, 256)
LABELS = ("Disease", "Gene", "Compound", "Variant", "Symptom", "Anatomy")


def synthetic_graph(n_nodes: int, n_edges: int, seed: int) -> tuple[list[NodeRecord], list[EdgeRecord]]:
    """Random nodes over SPOKE labels and distinct random edges of the types joining those labels."""
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {label: [] for label in LABELS}
    nodes = []
    for i in range(n_nodes):
        label = LABELS[i % len(LABELS)]
        node_id = f"{label}:{i}"
        by_label[label].append(node_id)
        nodes.append(NodeRecord(id=node_id, label=label, name=f"{label.lower()} {i}", synonyms=[f"syn {i}"], sources=["bench"]))
    types = [(t, s, o) for t, (s, _, o) in EDGE_TYPES.items() if s in by_label and o in by_label]
    keys: set[tuple[str, str, str]] = set()
    edges = []
    while len(edges) < n_edges:
        edge_type, source_label, target_label = rng.choice(types)
        key = (rng.choice(by_label[source_label]), edge_type, rng.choice(by_label[target_label]))
        if key[0] != key[2] and key not in keys:
            keys.add(key)
            edges.append(EdgeRecord(source_id=key[0], type=edge_type, target_id=key[2], sources=["bench"], properties={"score": rng.random()}))
    return nodes, edges


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def latencies(call: Callable[[], object], repeats: int) -> list[float]:
    for _ in range(3):
        call()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def run_backend(name: str, store: GraphStore, nodes: list[NodeRecord], edges: list[EdgeRecord], args: argparse.Namespace) -> dict[str, object]:
    print(f"{name}: loading {len(nodes):,} nodes and {len(edges):,} edges", file=sys.stderr, flush=True)
    start = time.perf_counter()
    store.load_nodes(nodes, batch_size=args.batch_size)
    node_s = time.perf_counter() - start
    start = time.perf_counter()
    written = store.load_edges(edges, batch_size=args.batch_size)
    edge_s = time.perf_counter() - start
    assert written == len(edges), f"{name}: wrote {written} of {len(edges)} edges"
    # Reloading existing edges (idempotent path: every edge is looked up, none rewritten).
    again = edges[: max(1, len(edges) // 10)]
    start = time.perf_counter()
    store.load_edges(again, batch_size=args.batch_size)
    reload_s = time.perf_counter() - start
    rng = random.Random(args.seed + 1)
    ids = [n.id for n in nodes]
    row: dict[str, object] = {
        "backend": name,
        "batch": args.batch_size,
        "nodes/s": len(nodes) / node_s,
        "edges/s": len(edges) / edge_s,
        "reload edges/s": len(again) / reload_s,
    }
    for count in SEED_COUNTS:
        repeats = max(10, args.repeats // max(1, count // 8))
        times = latencies(lambda: store.neighbourhood(rng.sample(ids, count), limit_per_node=args.limit), repeats)
        row[f"{count} p50"] = statistics.median(times)
        row[f"{count} p99"] = percentile(times, 99)
    keys = [f"{n.label.lower()} {n.id.split(':')[1]}" for n in rng.sample(nodes, 32)]
    row["name32 p50"] = statistics.median(latencies(lambda: store.find_by_name(keys), max(10, args.repeats // 10)))
    return row


def print_table(rows: list[dict[str, object]], title: str) -> None:
    columns = list(rows[0])
    cells = [[f"{r[c]:,.0f}" if c.endswith("/s") else f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print(title)
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
    print("load: fresh store; reload: 10% of the edges again (all exist). latency: neighbourhood(k random")
    print("seeds, both directions) in ms; name32: find_by_name(32 keys) p50 in ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies 20k nodes / 200k edges")
    parser.add_argument("--backends", default="ladybug,bolt", help="comma list of ladybug, bolt")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=200, help="queries per seed count (fewer for many seeds)")
    parser.add_argument("--limit", type=int, default=2000, help="limit_per_node")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_nodes, n_edges = int(20_000 * args.scale), int(200_000 * args.scale)
    nodes, edges = synthetic_graph(n_nodes, n_edges, args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgrag-bench-") as tmp:
        for backend in args.backends.split(","):
            if backend == "ladybug":
                with LadybugGraphStore(Path(tmp) / "bench.lbug") as store:
                    rows.append(run_backend("ladybug", store, nodes, edges, args))
            elif backend == "bolt":
                password = "bench-password"
                with arcadedb_server(Path(tmp) / "arcadedb", password) as uri:
                    with Neo4jGraphStore(uri, user="root", password=password, database="neo4j") as store:
                        rows.append(run_backend("bolt (ArcadeDB)", store, nodes, edges, args))
            else:
                parser.error(f"unknown backend {backend!r} (use ladybug, bolt)")
    print_table(rows, f"graph stores: {n_nodes:,} nodes, {n_edges:,} edges, limit_per_node={args.limit}")


if __name__ == "__main__":
    main()
