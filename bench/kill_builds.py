"""Kill builds at random points; after each kill, the artefact built before must still serve unchanged.

For every artefact kind in ``ARTEFACTS`` (the graph, with and without ``--clear``; the text index and
the statistics index, both built from ``--passages`` passages of the sources' corpus written to a
.jsonl in the temporary home; the edge vectors of the graph just built, a long build on the public
graph, so give them a small ``--sources``), the script

1. builds it once in a fresh ``KGRAG_HOME`` and records what a reader sees (the baseline), then
   once more to time a rebuild (caches filled, as for every later build);
2. N times: starts the build again (alternating the entry's build commands, e.g. with and without
   ``--clear``) in a subprocess, SIGKILLs it after a random delay in [0, 1.2 x build time], and runs
   the entry's reader check: it must pass and see the baseline;
   (``--from-staging``: the delay counts from the moment the staging file appears, in [0, 1.2 x the
   write phase], so most kills hit the write phase);
3. prints one row per kill: the command, when it was killed, whether a staging file was there
   (the kill hit the write phase), whether the build had already finished, and the check.

A kill after the build finished is a normal rebuild from the same sources: the same counts.
Exit status 1 when any check failed.

Usage::

    python bench/kill_builds.py --sources /path/to/mirror --kills 10 [--from-staging]
    python bench/kill_builds.py --sources SMALL_MIRROR --only graph --only edges   # edge vectors need a graph
    KGRAG_SOURCES_DIR=/work/shared/data python bench/kill_builds.py --kills 4 --seed 1
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KGRAG = [sys.executable, "-m", "kgrag.cli"]


@dataclass(frozen=True)
class Artefact:
    """One kind of built artefact: how to build it (variants) and how a reader checks it."""

    name: str
    builds: list[list[str]]  # kgrag sub-command lines, used in turn
    check: Callable[[Path], str]  # home -> what a reader sees (compared with the baseline); raises if refused
    staging: Callable[[Path], list[Path]]  # home -> files a build in progress leaves


@dataclass
class Kill:
    artefact: str
    command: str
    delay_s: float
    staging_seen: bool
    finished: bool
    check_s: float
    seen: str
    ok: bool


def check_graph(home: Path) -> str:
    """What `kgrag ask` checks before answering: the serving graph opens, passes check_serving; its counts."""
    from kgrag.graph.serving import open_serving_graph
    from kgrag.settings import load_settings

    store = open_serving_graph(load_settings(home=home, graph_uri=f"ladybug://{home / 'graph.lbug'}"))
    try:
        schema = store.schema()
    finally:
        store.close()
    return f"{schema.total_nodes} nodes, {schema.total_edges} edges"


def check_text_index(home: Path) -> str:
    """What `kgrag search` and the pipeline load: the verified index, and the top hits of a fixed query."""
    from kgrag.settings import load_settings
    from kgrag.indexes.text_index import TextIndex

    index = TextIndex.load(load_settings(home=home))
    hits = index.search(["Which genes are associated with psoriasis?"], k=3)[0]
    return f"{index.manifest.passage_count} passages, top {[h.passage.pmid for h in hits]}"


def check_stats_index(home: Path) -> str:
    """What the gate reads: the verified local index, and the counts of fixed terms."""
    from kgrag.settings import load_settings
    from quco.stats import open_corpus_stats

    stats = open_corpus_stats(load_settings(home=home))
    try:
        return f"counts {stats.count(['the', 'gene', 'psoriasis'])}"
    finally:
        getattr(stats, "close", lambda: None)()


def check_edge_vectors(home: Path) -> str:
    """What pruning loads with edge_vectors=on: the checked store of this graph build, and its vector sum."""
    from kgrag.indexes.edge_vectors import open_edge_vectors
    from kgrag.encoders.embeddings import embedder_from_settings
    from kgrag.graph.serving import open_serving_graph
    from kgrag.settings import load_settings

    settings = load_settings(home=home, edge_vectors="on")
    store = open_serving_graph(settings)
    try:
        vectors = open_edge_vectors(settings, store, embedder_from_settings(settings, cache=False))
    finally:
        store.close()
    assert vectors is not None
    return f"{vectors.meta.count} sentences, vector sum {float(vectors.vectors.astype('float64').sum()):.4f}"


def edge_vector_staging(home: Path) -> list[Path]:
    root = home / "graph.lbug.edge-vectors"
    return list(root.glob(".*.building")) if root.is_dir() else []


CORPUS = "corpus.jsonl"  # written into the temporary home by write_corpus()

ARTEFACTS = [
    Artefact(
        name="graph",
        builds=[["build-graph", "--no-progress"], ["build-graph", "--no-progress", "--clear"]],
        check=check_graph,
        staging=lambda home: [home / "graph.lbug.staging"],
    ),
    Artefact(
        name="text",
        builds=[["build-text-index", "--corpus", CORPUS]],
        check=check_text_index,
        staging=lambda home: list(home.glob(".text_index.staging-*")),
    ),
    Artefact(
        name="stats",
        builds=[["build-stats-index", "--corpus", CORPUS]],
        check=check_stats_index,
        staging=lambda home: list(home.glob(".stats.staging-*")),
    ),
    # needs the graph built first (the "graph" entry, or --only graph --only edges); on the public graph it is
    # a long build (about 70 min on 2 cores): give a small --sources for it
    Artefact(
        name="edges",
        builds=[["build-edge-vectors", "--force"]],
        check=check_edge_vectors,
        staging=edge_vector_staging,
    ),
]


def write_corpus(home: Path, sources: Path, passages: int) -> None:
    """The first ``passages`` passages of the sources' corpus, as the .jsonl the text and stats builds read."""
    from kgrag.indexes.corpus import load_corpus, write_jsonl
    from kgrag.settings import load_settings

    corpus = load_corpus(load_settings(home=home, sources_dir=sources)).passages[:passages]
    write_jsonl(corpus, home / CORPUS)


def resolved(command: list[str], home: Path) -> list[str]:
    """``command`` with the corpus file name made absolute in ``home``."""
    return [str(home / part) if part == CORPUS else part for part in command]


def run_build(artefact: Artefact, command: list[str], home: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run a build to the end: (seconds in all, seconds until its staging file appeared); raises when it fails."""
    start, staged = time.perf_counter(), None
    proc = subprocess.Popen(KGRAG + command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        if staged is None and any(p.exists() for p in artefact.staging(home)):
            staged = time.perf_counter() - start
        time.sleep(0.02)
    if proc.returncode != 0:
        raise SystemExit(f"the baseline build {' '.join(command)} failed (exit {proc.returncode})")
    total = time.perf_counter() - start
    return total, staged if staged is not None else 0.0


def kill_once(artefact: Artefact, command: list[str], delay_s: float, home: Path, env: dict[str, str],
              baseline: str, *, from_staging: bool) -> Kill:
    """Start ``command``, SIGKILL it ``delay_s`` after its start (or after its staging file appeared) unless it
    finished, then check the reader's view."""
    proc = subprocess.Popen(KGRAG + command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if from_staging:
        while proc.poll() is None and not any(p.exists() for p in artefact.staging(home)):
            time.sleep(0.01)
    deadline, staging_seen = time.perf_counter() + delay_s, False
    while time.perf_counter() < deadline and proc.poll() is None:
        staging_seen = staging_seen or any(p.exists() for p in artefact.staging(home))
        time.sleep(0.02)
    finished = proc.poll() is not None
    staging_seen = staging_seen or any(p.exists() for p in artefact.staging(home))
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    start = time.perf_counter()
    try:
        seen = artefact.check(home)
    except Exception as exc:  # noqa: BLE001 - the refusal is what we report
        seen = f"refused: {type(exc).__name__}: {exc}"
    check_s = time.perf_counter() - start
    shown = " ".join(Path(part).name if "/" in part else part for part in command if part != "--no-progress")
    return Kill(artefact.name, shown, delay_s, staging_seen, finished,
                check_s, seen, seen == baseline)


def print_table(baselines: dict[str, tuple[str, float]], kills: list[Kill]) -> None:
    for name, (seen, seconds) in baselines.items():
        print(f"{name}: rebuild {seconds:.1f} s, reader sees {seen}")
    header = f"{'#':>3} {'artefact':<8} {'command':<26} {'kill at s':>9} {'staging':>7} {'finished':>8} {'check s':>7}  result"
    print(header)
    print("-" * len(header))
    for i, k in enumerate(kills, 1):
        result = "ok (unchanged)" if k.ok else f"FAILED: {k.seen}"
        print(f"{i:>3} {k.artefact:<8} {k.command:<26} {k.delay_s:>9.2f} {'yes' if k.staging_seen else 'no':>7} "
              f"{'yes' if k.finished else 'no':>8} {k.check_s:>7.2f}  {result}")
    bad = sum(not k.ok for k in kills)
    print(f"{len(kills)} kills, {sum(k.staging_seen and not k.finished for k in kills)} during the write phase, "
          f"{sum(k.finished for k in kills)} after the build finished, {bad} failed checks")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, default=os.environ.get("KGRAG_SOURCES_DIR"),
                        help="Sources dir (default: KGRAG_SOURCES_DIR)")
    parser.add_argument("--kills", type=int, default=10, help="Kills per artefact kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-staging", action="store_true",
                        help="Time each kill from the moment the staging file appears (aims at the write phase)")
    parser.add_argument("--only", choices=[a.name for a in ARTEFACTS], action="append", help="Artefact kinds to test")
    parser.add_argument("--passages", type=int, default=2000, help="Passages in the text and stats builds' corpus")
    args = parser.parse_args()
    if args.sources is None:
        parser.error("--sources or KGRAG_SOURCES_DIR is required")
    rng = random.Random(args.seed)
    kills: list[Kill] = []
    baselines: dict[str, tuple[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="kgrag-kill-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KGRAG_")}
        env.update(KGRAG_HOME=str(home), KGRAG_SOURCES_DIR=str(Path(args.sources).resolve()))
        os.environ.update(KGRAG_HOME=str(home))  # the in-process reader check
        chosen = [a for a in ARTEFACTS if not args.only or a.name in args.only]
        if any(CORPUS in command for a in chosen for command in a.builds):
            write_corpus(home, Path(args.sources).resolve(), args.passages)
        for artefact in ARTEFACTS:
            if args.only and artefact.name not in args.only:
                continue
            seconds, staged = run_build(artefact, resolved(artefact.builds[-1], home), home, env)
            baseline = artefact.check(home)
            # kills are timed on a rebuild: the first build fills caches (the text index's embeddings) and is slower
            seconds, staged = run_build(artefact, resolved(artefact.builds[-1], home), home, env)
            baselines[artefact.name] = (baseline, seconds)
            span = 1.2 * (seconds - staged if args.from_staging else seconds)
            for i in range(args.kills):
                command = resolved(artefact.builds[i % len(artefact.builds)], home)
                kills.append(kill_once(artefact, command, rng.uniform(0, span), home, env, baseline,
                                       from_staging=args.from_staging))
    print_table(baselines, kills)
    return 0 if all(k.ok for k in kills) else 1


if __name__ == "__main__":
    sys.exit(main())
