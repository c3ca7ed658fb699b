"""SIGKILL a large text-index build part way, run it again, and compare with an uninterrupted build.

Runs ``kgrag build-text-index --corpus CORPUS --json`` (extra arguments after ``--``) in home A,
kills it with SIGKILL once ``--kill-after`` shards are committed (polling the build's SQLite commit
log), runs the same command again (it resumes), then builds the same corpus uninterrupted in home B.
Both homes share one embedding cache folder when ``--cache`` is given (so a corpus embedded before is
not embedded twice; the resume logic is what is compared). Prints JSON: the kill point, the resumed
build's report, and the comparison: the passage at every row, the corpus checksum, and the top 10 of
dense, BM25 and fused search for 50 PubMedQA test questions.

Usage::

    KGRAG_SOURCES_DIR=/work/shared/data python bench/kill_text_build.py --corpus corpus-100k.jsonl \\
        --work /tmp/kill --kill-after 5 --cache /work/scale/home1m/embeddings -- --index-type ivfpq
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def committed_shards(store: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT COUNT(*) FROM shards").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def home(work: Path, name: str, cache: str | None) -> Path:
    path = work / name
    path.mkdir(parents=True, exist_ok=True)
    if cache and not (path / "embeddings").exists():
        (path / "embeddings").symlink_to(Path(cache).resolve())
    return path


def build(command: list[str], env: dict[str, str]) -> dict:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"build failed ({result.returncode}): {result.stderr[-2000:]}")
    return {**json.loads(result.stdout), "wall_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--kill-after", type=int, default=5, help="committed shards before the SIGKILL")
    parser.add_argument("--cache", help="an embedding cache folder both homes share")
    parser.add_argument("extra", nargs="*", help="more build-text-index arguments (after --)")
    args = parser.parse_args()
    work = Path(args.work)
    kgrag = str(Path(sys.executable).with_name("kgrag"))
    command = [kgrag, "build-text-index", "--corpus", str(Path(args.corpus).resolve()), "--json", *args.extra]
    home_a, home_b = home(work, "killed", args.cache), home(work, "uninterrupted", args.cache)
    env_a = {**os.environ, "KGRAG_HOME": str(home_a)}
    child = subprocess.Popen(command, env=env_a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = home_a / ".text_index.building" / "passages.sqlite"
    started = time.perf_counter()
    while child.poll() is None and committed_shards(store) < args.kill_after:
        time.sleep(0.5)
    shards_at_kill = committed_shards(store)
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_after_s = round(time.perf_counter() - started, 1)
    resumed = build(command, env_a)
    fresh = build(command, {**os.environ, "KGRAG_HOME": str(home_b)})

    from kgrag.indexes.text_index import TextIndex
    from kgrag.settings import load_settings
    from kgrag.sources import source_path

    settings_a, settings_b = load_settings(home=home_a), load_settings(home=home_b)
    index_a, index_b = TextIndex.load(settings_a), TextIndex.load(settings_b, embedder=None)
    rows = index_a.manifest.rows
    same_rows = rows == index_b.manifest.rows and all(
        index_a.store.get(range(start, min(start + 5000, rows))) == index_b.store.get(range(start, min(start + 5000, rows)))
        for start in range(0, rows, 5000))
    questions = list(json.loads(source_path(settings_a, "pubmedqa/pqal_test_unlabelled.json").read_text()).values())[:50]
    queries = [q["QUESTION"] for q in questions]
    same_results = {}
    for fusion in ("dense", "bm25", "rrf"):
        a = [[(h.row, round(h.score, 6)) for h in hits] for hits in index_a.search(queries, k=10, fusion=fusion)]
        b = [[(h.row, round(h.score, 6)) for h in hits] for hits in index_b.search(queries, k=10, fusion=fusion)]
        same_results[fusion] = sum(x == y for x, y in zip(a, b))
    print(json.dumps({
        "corpus": args.corpus, "killed_after_s": killed_after_s, "shards_committed_at_kill": shards_at_kill,
        "resumed": {k: resumed[k] for k in ("resumed_shards", "embedded", "encoded_by_model", "live", "seconds",
                                            "index_type", "wall_s")},
        "uninterrupted": {k: fresh[k] for k in ("embedded", "encoded_by_model", "live", "seconds", "wall_s")},
        "same_passage_at_every_row": same_rows, "rows": rows,
        "same_corpus_checksum": index_a.manifest.corpus_checksum == index_b.manifest.corpus_checksum,
        "queries": len(queries), "queries_with_identical_top10": same_results}, indent=1))


if __name__ == "__main__":
    main()
