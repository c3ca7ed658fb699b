"""How each stage's cost grows with the graph: synthetic graphs with SPOKE's label and edge-type mix.

Each size multiplies the mix of the public graph built from ../shared/data (``bench/scale_mix.json``:
117,231 nodes, 242,473 edges at 1x) and is built and measured in its own process, on LadybugDB and
on the Bolt store (the neo4j driver against a local ArcadeDB server this script starts). Measured:

- build: loading nodes and edges into a fresh store (seconds), its disk, the process's peak RSS;
- linker: building the linking dictionary from the store (``EntityLinker.from_store``), seconds and MB;
- lookups: ``find_by_name`` (32 names) and ``get_nodes`` (32 ids) p50, which must stay flat;
- one-hop: ``neighbourhood`` of 1/32/256 disease seeds (limit 2000) p50/p99;
- option edges: ``edges_between`` of the same seeds and 5 gene options per seed p50/p99;
- cold pruning: a two-disease question with five gene options whose sentences were never embedded:
  ``gather_kg`` + embedding its sentences (all-MiniLM-L6-v2, no cache) + ``prune``, p50 (LadybugDB only:
  the embedding, not the store, is its cost).

Endpoints are drawn with a skew (index = n * u**2: low ids are hubs), so degrees are uneven as in
SPOKE. Results are appended to ``OUT/results.jsonl`` (a size already there is skipped: the bench
resumes); graphs are written under ``OUT/graphs`` and removed after (``--keep`` keeps them). Prints
a table and the log-log growth exponent of each stage (cost ~ edges^k between the smallest and largest
size), and writes a log-log plot (``--plot``). Nothing is asserted.

    python bench/scale.py --sizes 1,4,16 --backends ladybug,bolt --bolt-sizes 1,4 --out /tmp/i13-scale
    python bench/scale.py --report-only --out /tmp/i13-scale --plot docs/pictures/scale.png
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.local_bolt, the test Bolt server
from typing import Any

import numpy as np

MIX = Path(__file__).with_name("scale_mix.json")
SEED_COUNTS = (1, 32, 256)
OPTIONS_PER_SEED = 5
LIMIT = 2000
PASSWORD = "scale-bench-password"


# --- the synthetic graph -------------------------------------------------------------------------


def load_mix(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def node_name(label: str, i: int) -> str:
    return f"{label.lower()} {i}"


def skewed(rng: random.Random, n: int) -> int:
    """An index in [0, n) drawn with density ~ 1/sqrt(x): low indexes are hubs."""
    return min(n - 1, int(n * rng.random() ** 2))


def node_counts(mix: dict[str, Any], scale: float) -> dict[str, int]:
    return {label: max(1, round(count * scale)) for label, count in mix["node_counts"].items()}


def nodes_of(mix: dict[str, Any], scale: float) -> Iterator[Any]:
    from kgrag.graph.schema import NodeRecord

    share = float(mix.get("synonyms_per_node", 0.0))
    for label, count in node_counts(mix, scale).items():
        for i in range(count):
            synonyms = [f"{label.lower()} alias {i}"] if (i * 0.6180339887) % 1 < share else []
            yield NodeRecord(id=f"{label}:{i}", label=label, name=node_name(label, i), synonyms=synonyms,
                             sources=["scale-bench"])


def edges_of(mix: dict[str, Any], scale: float, seed: int) -> Iterator[Any]:
    """Distinct edges of each type between the labels the type joins, endpoints skewed."""
    from kgrag.graph.schema import EDGE_TYPES, EdgeRecord

    counts = node_counts(mix, scale)
    rng = random.Random(seed)
    for edge_type, count in mix["edge_counts"].items():
        source_label, _, target_label = EDGE_TYPES[edge_type]
        n_s, n_t = counts[source_label], counts[target_label]
        wanted = min(round(count * scale), n_s * n_t - (n_s if source_label == target_label else 0))
        seen: set[int] = set()
        while len(seen) < wanted:
            s, t = skewed(rng, n_s), skewed(rng, n_t)
            if (source_label == target_label and s == t) or (key := s * n_t + t) in seen:
                continue
            seen.add(key)
            yield EdgeRecord(source_id=f"{source_label}:{s}", type=edge_type, target_id=f"{target_label}:{t}",
                             sources=["scale-bench"], properties={"score": round(rng.random(), 3)})


def expected_edges(mix: dict[str, Any], scale: float) -> int:
    return sum(round(c * scale) for c in mix["edge_counts"].values())


# --- measuring -----------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    if path.is_file():
        files = [path, path.with_name(path.name + ".wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def latencies(call: Callable[[], object], repeats: int) -> list[float]:
    call()  # warm
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def measure(store: Any, mix: dict[str, Any], scale: float, args: argparse.Namespace, backend: str,
            where: Path) -> dict[str, Any]:
    from kgrag.retrieval.linking import EntityLinker
    from kgrag.settings import load_settings

    row: dict[str, Any] = {"backend": backend, "scale": scale, "load": os.getloadavg()[0]}
    start = time.perf_counter()
    row["nodes"] = store.load_nodes(nodes_of(mix, scale), batch_size=args.batch_size)
    row["nodes_s"] = time.perf_counter() - start
    row["edges"] = store.load_edges(edges_of(mix, scale, args.seed), batch_size=args.batch_size)
    row["build_s"] = time.perf_counter() - start
    row["edges_s"] = row["build_s"] - row["nodes_s"]
    row["build_rss_mb"] = peak_rss_mb()
    row["disk_mb"] = disk_mb(where)
    print(f"  {backend} x{scale:g}: built {row['nodes']:,} nodes, {row['edges']:,} edges in {row['build_s']:.1f} s",
          file=sys.stderr, flush=True)

    settings = load_settings(home=args.out / "home")
    before = rss_mb()
    start = time.perf_counter()
    linker = EntityLinker.from_store(store, None, settings)
    row["linker_s"] = time.perf_counter() - start
    row["linker_mb"] = rss_mb() - before
    del linker

    counts = node_counts(mix, scale)
    rng = random.Random(args.seed + 1)

    def some(label: str, k: int) -> list[str]:
        return [f"{label}:{skewed(rng, counts[label])}" for _ in range(k)]

    names = [node_name(label, rng.randrange(counts[label])) for label in rng.choices(list(counts), k=32)]
    row["name32_p50"] = p(latencies(lambda: store.find_by_name(names), args.repeats), 50)
    row["id32_p50"] = p(latencies(lambda: store.get_nodes(some("Gene", 32)), args.repeats), 50)
    for k in SEED_COUNTS:
        repeats = max(3, args.repeats // max(1, k // 8))
        returned: list[int] = []
        hop = latencies(lambda: returned.append(len(store.neighbourhood(some("Disease", k), limit_per_node=LIMIT))),
                        repeats)
        row[f"hop{k}_edges"] = statistics.mean(returned)
        opt = latencies(lambda: store.edges_between(some("Disease", k), some("Gene", OPTIONS_PER_SEED * k)), repeats)
        row[f"hop{k}_p50"], row[f"hop{k}_p99"] = p(hop, 50), p(hop, 99)
        row[f"opt{k}_p50"], row[f"opt{k}_p99"] = p(opt, 50), p(opt, 99)
    if backend == "ladybug" and args.questions:
        row.update(cold_pruning(store, counts, settings, args))
    row["peak_rss_mb"] = peak_rss_mb()
    row["load_after"] = os.getloadavg()[0]
    return row


def cold_pruning(store: Any, counts: dict[str, int], settings: Any, args: argparse.Namespace) -> dict[str, Any]:
    """gather_kg + embedding every candidate sentence (never seen) + prune, per two-disease MCQ."""
    from kgrag.retrieval.graph_context import gather_kg
    from kgrag.encoders.embeddings import SentenceTransformerEmbedder
    from kgrag.retrieval.pruning import prune
    from kgrag.types import LinkedEntity

    embedder = SentenceTransformerEmbedder(settings.embedding_model, threads=args.embedding_threads,
                                           backend=settings.embedding_backend, home=settings.home,
                                           precision=settings.embedding_precision)
    embedder.encode_once(["warm up the model"])
    rng = random.Random(args.seed + 2)
    fetch, embed, total, sentences = [], [], [], []
    for q in range(args.questions + 1):
        diseases = [skewed(rng, counts["Disease"]) for _ in range(2)]
        genes = [skewed(rng, counts["Gene"]) for _ in range(OPTIONS_PER_SEED)]
        entities = [[LinkedEntity(mention=node_name("Disease", d), node_id=f"Disease:{d}", label="Disease",
                                  name=node_name("Disease", d), method="exact") for d in diseases]]
        options = [{node_name("Gene", g): [f"Gene:{g}"] for g in genes}]
        question = f"Which gene is associated with {node_name('Disease', diseases[0])} and {node_name('Disease', diseases[1])}?"
        start = time.perf_counter()
        candidates = gather_kg(store, entities, options, settings)[0]
        fetched = time.perf_counter()
        vectors = embedder.encode_once([question] + [c.text for c in candidates])
        prune(vectors[0], candidates, vectors[1:], settings)
        done = time.perf_counter()
        if q:  # the first question warms the code paths
            fetch.append((fetched - start) * 1000)
            embed.append((done - fetched) * 1000)
            total.append((done - start) * 1000)
            sentences.append(len(candidates))
    return {"cold_fetch_p50": p(fetch, 50), "cold_prune_p50": p(embed, 50), "cold_total_p50": p(total, 50),
            "cold_sentences_p50": p(sentences, 50)}


def run_one(backend: str, scale: float, args: argparse.Namespace) -> dict[str, Any]:
    """Build and measure one size on one backend (in this process)."""
    mix = load_mix(args.mix)
    graphs = args.out / "graphs"
    graphs.mkdir(parents=True, exist_ok=True)
    if backend == "ladybug":
        from kgrag.graph.ladybug_store import LadybugGraphStore

        path = graphs / f"ladybug-x{scale:g}.lbug"
        for stale in (path, path.with_name(path.name + ".wal")):
            stale.unlink(missing_ok=True)
        try:
            with LadybugGraphStore(path) as store:
                row = measure(store, mix, scale, args, backend, path)
            row["disk_mb"] = max(row["disk_mb"], disk_mb(path))  # checkpointed on close
        finally:
            if not args.keep:
                for f in (path, path.with_name(path.name + ".wal")):
                    f.unlink(missing_ok=True)
        return row
    if backend == "bolt":
        from tests.local_bolt import arcadedb_server
        from kgrag.graph.neo4j_store import Neo4jGraphStore

        root = graphs / f"arcadedb-x{scale:g}"
        shutil.rmtree(root, ignore_errors=True)
        try:
            with arcadedb_server(root, PASSWORD) as uri:
                with Neo4jGraphStore(uri, user="root", password=PASSWORD, database="neo4j") as store:
                    return measure(store, mix, scale, args, backend, root)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    raise SystemExit(f"unknown backend {backend!r} (use ladybug, bolt)")


# --- the report ----------------------------------------------------------------------------------

COLUMNS = [("edges", "edges", "{:,.0f}"), ("build_s", "build s", "{:.1f}"), ("nodes_s", "nodes s", "{:.1f}"),
           ("edges_s", "edges s", "{:.1f}"), ("disk_mb", "disk MB", "{:.0f}"),
           ("peak_rss_mb", "peak RSS MB", "{:.0f}"), ("linker_s", "linker s", "{:.2f}"),
           ("linker_mb", "linker MB", "{:.0f}"), ("name32_p50", "name32", "{:.2f}"), ("id32_p50", "id32", "{:.2f}"),
           *[(f"hop{k}_{q}", f"hop{k} {q}", "{:.1f}") for k in SEED_COUNTS for q in ("edges", "p50", "p99")],
           *[(f"opt{k}_{q}", f"opt{k} {q}", "{:.1f}") for k in SEED_COUNTS for q in ("p50", "p99")],
           ("cold_sentences_p50", "cold sents", "{:.0f}"), ("cold_fetch_p50", "cold fetch", "{:.1f}"),
           ("cold_prune_p50", "cold prune", "{:.1f}"), ("load", "load", "{:.1f}"), ("load_after", "load after", "{:.1f}")]
# The stages whose growth is compared (cost against edges).
STAGES = {"build_s": "build time", "disk_mb": "disk", "peak_rss_mb": "peak RSS", "linker_s": "linker build time",
          "linker_mb": "linker memory", "name32_p50": "name lookup (32)", "id32_p50": "id lookup (32)",
          "hop32_p50": "one-hop fetch, 32 seeds", "hop256_p50": "one-hop fetch, 256 seeds",
          "opt32_p50": "option edges, 32 seeds", "opt256_p50": "option edges, 256 seeds",
          "cold_prune_p50": "cold pruning (embed + prune)"}


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    latest = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            latest[(row["backend"], row["scale"])] = row  # a size measured again: the last run counts
    return list(latest.values())


def growth(rows: list[dict[str, Any]], key: str) -> float | None:
    """k in cost ~ edges^k between the smallest and the largest size with a positive value."""
    points = sorted((r["edges"], r[key]) for r in rows if r.get(key) and r[key] > 0)
    if len(points) < 2 or points[0][0] == points[-1][0]:
        return None
    (e0, c0), (e1, c1) = points[0], points[-1]
    return float(np.log(c1 / c0) / np.log(e1 / e0))


def report(rows: list[dict[str, Any]], plot: Path | None) -> None:
    for backend in sorted({r["backend"] for r in rows}):
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["edges"])
        shown = [(k, title, fmt) for k, title, fmt in COLUMNS if any(k in r for r in mine)]
        cells = [[fmt.format(r[k]) if k in r else "-" for k, _, fmt in shown] for r in mine]
        widths = [max(len(t), *(len(c[i]) for c in cells)) for i, (_, t, _) in enumerate(shown)]
        print(f"\n{backend}: cost against graph size (times in ms unless marked; load, load after = 1-min load average "
              "when the size started and when it was measured)")
        print("  ".join(t.rjust(w) for (_, t, _), w in zip(shown, widths)))
        for c in cells:
            print("  ".join(v.rjust(w) for v, w in zip(c, widths)))
        slopes = {name: g for key, name in STAGES.items() if (g := growth(mine, key)) is not None}
        if slopes:
            print(f"growth exponent k (cost ~ edges^k, {mine[0]['edges']:,} -> {mine[-1]['edges']:,} edges):")
            for name, g in sorted(slopes.items(), key=lambda kv: -kv[1]):
                print(f"  {g:5.2f}  {name}")
            worst = max(slopes, key=slopes.get)
            print(f"grows worst: {worst} (k = {slopes[worst]:.2f})")
    if plot is not None and rows:
        write_plot(rows, plot)
        print(f"\nplot: {plot}")


def write_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Three log-log panels (build, queries, memory); one colour per stage, solid LadybugDB, dashed Bolt."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("build and linker (s)", ["build_s", "linker_s"]),
              ("queries (ms, p50)", ["name32_p50", "id32_p50", "hop32_p50", "hop256_p50", "opt32_p50", "opt256_p50",
                                     "cold_prune_p50"]),
              ("memory and disk (MB)", ["disk_mb", "peak_rss_mb", "linker_mb"])]
    colours = {key: f"C{i}" for i, key in enumerate(k for _, keys in panels for k in keys)}
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.5))
    for ax, (title, keys) in zip(axes, panels):
        for backend, style in (("ladybug", "-o"), ("bolt", "--s")):
            mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["edges"])
            for key in keys:
                points = [(r["edges"], r[key]) for r in mine if r.get(key) and r[key] > 0]
                if points:
                    ax.plot(*zip(*points), style, color=colours[key], label=f"{backend}: {STAGES[key]}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("edges")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.suptitle("kgrag: cost against graph size (synthetic graphs with the public graph's label and edge-type mix; "
                 "solid LadybugDB, dashed Bolt/ArcadeDB)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")


# --- main ----------------------------------------------------------------------------------------


def sizes(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=[1, 4, 16], help="multiples of the public graph (comma list)")
    parser.add_argument("--backends", default="ladybug,bolt", help="comma list of ladybug, bolt")
    parser.add_argument("--bolt-sizes", type=sizes, default=None, help="sizes for bolt (default: --sizes up to 4)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kgrag-scale"), help="results and graphs (not the repo)")
    parser.add_argument("--mix", type=Path, default=MIX)
    parser.add_argument("--mix-from", default=None, help="read the mix from this ladybug:// graph (read-only) first")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=30, help="queries per lookup (fewer for many seeds)")
    parser.add_argument("--questions", type=int, default=8, help="cold-pruning questions per size (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedding-threads", type=int, default=1,
                        help="torch threads for cold pruning (1: on a shared, busy machine two threads spin)")
    parser.add_argument("--keep", action="store_true", help="keep the graphs under OUT/graphs")
    parser.add_argument("--again", action="store_true", help="measure sizes already in OUT/results.jsonl again")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--plot", type=Path, default=None, help="PNG path (default OUT/scale.png)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # backend:scale, run in a child process
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    if args.one:
        backend, scale = args.one.split(":")
        row = run_one(backend, float(scale), args)
        with results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        return
    if args.mix_from:
        from kgrag.graph.ladybug_store import LadybugGraphStore, path_from_uri

        with LadybugGraphStore(path_from_uri(args.mix_from), read_only=True) as store:
            schema = store.schema()
        mix = {**load_mix(args.mix), "node_counts": schema.node_counts, "edge_counts": schema.edge_counts}
        args.mix = args.out / "mix.json"
        args.mix.write_text(json.dumps(mix, indent=1))
    if not args.report_only:
        bolt_sizes = args.bolt_sizes if args.bolt_sizes is not None else [s for s in args.sizes if s <= 4]
        for backend in args.backends.split(","):
            for scale in (args.sizes if backend == "ladybug" else bolt_sizes):
                done = {(r["backend"], r["scale"]) for r in read_results(results)}
                if (backend, scale) in done and not args.again:
                    print(f"{backend} x{scale:g}: already in {results} (skipped; --again to redo)", file=sys.stderr)
                    continue
                print(f"{backend} x{scale:g}: ~{expected_edges(load_mix(args.mix), scale):,} edges "
                      f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
                child = [sys.executable, __file__, "--one", f"{backend}:{scale:g}", "--out", str(args.out),
                         "--mix", str(args.mix), "--batch-size", str(args.batch_size), "--repeats", str(args.repeats),
                         "--questions", str(args.questions), "--seed", str(args.seed),
                         "--embedding-threads", str(args.embedding_threads), *(["--keep"] if args.keep else [])]
                if subprocess.run(child).returncode != 0:
                    print(f"{backend} x{scale:g}: failed (see above); going on", file=sys.stderr)
    report(read_results(results), args.plot or args.out / "scale.png")


if __name__ == "__main__":
    main()
