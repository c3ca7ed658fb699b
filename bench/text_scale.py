"""The text index at scale: build cost, peak memory, disk, load time, search latency and recall, by size.

Two kinds of rows (docs/text_index.md, "Scale"):

- ``real``: a built index (``KGRAG_HOME``; e.g. ``kgrag build-text-index --corpus`` over the composed
  corpus of bench/text_scale_corpus.py). Load time (first and median of 5, in this process), search
  p50/p99 of one query per call (dense, BM25, fused; the query's embedding and the passage reads
  included) on 200 PubMedQA test questions, a year- and a MeSH-filtered search, and recall on the 500
  PubMedQA test questions (question only): the approximate index's top 10 against exact search's
  (brute force over the saved vectors), and the gold recall@10 (the question's own abstract among
  the first 10 distinct PMIDs) of both. The build's own numbers (time, peak RSS) come from
  ``/usr/bin/time -v kgrag build-text-index --json``, given with ``--build-json`` and ``--build-time``.
- ``synthetic``: the dense index alone, from vectors drawn to match real embeddings: each is a real
  vector of ``--fit`` (20,000 anchors drawn from its saved shards) plus Gaussian noise with the real
  vectors' full covariance, scaled so that the median cosine between a drawn vector and its anchor
  equals the median nearest-neighbour cosine among the real vectors (so neighbourhoods are as tight
  as real ones), normalised. Written as shards the way a build writes them, then IVF-PQ trained on a
  sample and filled shard by shard as a build does. One process per size, so its peak RSS is its
  own. Search: the 500 real question vectors, re-ranked exactly from the shards; recall@10 against
  brute force (with and without re-ranking).

Usage::

    python bench/text_scale.py real --build-json build.json --build-time build.err > real.json   # KGRAG_HOME set
    python bench/text_scale.py synthetic --sizes 1000000,3000000,10000000 --fit <index>/vectors \\
        --queries q.npy --work /big/disk > synthetic.json
    python bench/text_scale.py plot real.json synthetic.json --out docs/pictures/text_scale.png
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

K = 10
DEPTH = 100


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)}


def brute_force(shards: list[np.ndarray], queries: np.ndarray, k: int, chunk: int = 20_000) -> np.ndarray:
    """Exact top-``k`` rows per query by inner product over all shard vectors (read in chunks)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    offset = 0
    for shard in shards:
        for start in range(0, len(shard), chunk):
            block = np.asarray(shard[start:start + chunk], dtype=np.float32)
            scores = queries @ block.T
            rows = np.arange(offset + start, offset + start + len(block))
            merged_scores = np.concatenate([best_scores, scores], axis=1)
            merged_rows = np.concatenate([best_rows, np.broadcast_to(rows, scores.shape)], axis=1)
            top = np.argpartition(-merged_scores, k - 1, axis=1)[:, :k]
            best_scores = np.take_along_axis(merged_scores, top, axis=1)
            best_rows = np.take_along_axis(merged_rows, top, axis=1)
        offset += len(shard)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1)


def draw(anchors: np.ndarray, chol: np.ndarray, scale: float, n: int, rng: np.random.Generator, *,
         in_order: bool = False) -> np.ndarray:
    """``n`` unit vectors: anchors (random, or the first ``n`` in order) plus scaled real-covariance noise."""
    base = anchors[:n] if in_order else anchors[rng.integers(0, len(anchors), size=n)]
    drawn = base + scale * (rng.standard_normal((n, anchors.shape[1]), dtype=np.float32) @ chol.T)
    return (drawn / np.linalg.norm(drawn, axis=1, keepdims=True)).astype(np.float32)


def overlap(found: list[np.ndarray], truth: np.ndarray, k: int = K) -> float:
    return float(np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]))


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def pubmedqa_questions(settings) -> tuple[list[str], list[str]]:
    from kgrag.sources import source_path

    data = json.loads(source_path(settings, "pubmedqa/pqal_test_unlabelled.json").read_text())
    return [row["QUESTION"] for row in data.values()], [str(pmid) for pmid in data]


def gold_recall(rows: list[np.ndarray], gold: list[str], pmid_of: dict[int, str | None], k: int = K) -> float:
    found = 0
    for ranked, wanted in zip(rows, gold):
        pmids: dict[str, None] = {}
        for row in ranked.tolist():
            pmid = pmid_of.get(row)
            if pmid:
                pmids.setdefault(pmid, None)
        found += wanted in list(pmids)[:k]
    return found / len(gold)


def parse_time_v(path: Path) -> dict[str, float]:
    text = path.read_text(errors="replace")
    out: dict[str, float] = {}
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if match:
        out["build_peak_rss_mb"] = round(int(match.group(1)) / 1024, 1)
    match = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if match:
        parts = [float(p) for p in match.group(1).split(":")]
        out["build_wall_s"] = round(sum(v * 60 ** i for i, v in enumerate(reversed(parts))), 1)
    return out


def real(args: argparse.Namespace) -> None:
    from kgrag.encoders.embeddings import embedder_from_settings
    from kgrag.indexes.text_filter import TextFilter
    from kgrag.indexes.text_index import TextIndex
    from kgrag.settings import load_settings

    settings = load_settings()
    embedder = embedder_from_settings(settings)
    embedder.encode(["warm up"], persist=False)
    loads = []
    for _ in range(6):
        started = time.perf_counter()
        index = TextIndex.load(settings, embedder=embedder)
        loads.append(time.perf_counter() - started)
    questions, gold = pubmedqa_questions(settings)
    vectors = np.ascontiguousarray(embedder.encode(questions, persist=False), dtype=np.float32)
    approximate = [rows for rows, _ in index._dense_rows(questions, DEPTH, index._live)]
    shards = [np.load(index.directory / "vectors" / f"{s.name}.npy", mmap_mode="r") for s in index.manifest.shards]
    started = time.perf_counter()
    exact = brute_force(shards, vectors, DEPTH)
    exact_s = time.perf_counter() - started
    pmid_of = {row: p.pmid for row, p in index.store.get(
        {int(r) for ranked in [*approximate, *exact] for r in ranked}).items()}
    row: dict[str, object] = {
        "kind": "real", "rows": index.manifest.rows, "index_type": index.manifest.index_type,
        "index_params": index.manifest.index_params, "load_first_s": round(loads[0], 4),
        "load_median_s": round(statistics.median(loads[1:]), 4),
        "recall@10_vs_exact": round(overlap(approximate, exact), 4),
        "gold_recall@10_approximate": round(gold_recall(approximate, gold, pmid_of), 4),
        "gold_recall@10_exact": round(gold_recall(list(exact), gold, pmid_of), 4),
        "exact_search_s_500_queries": round(exact_s, 1)}
    row["gold_recall_ratio"] = round(row["gold_recall@10_approximate"] / max(row["gold_recall@10_exact"], 1e-9), 4)
    for mode in ("dense", "bm25", "rrf"):
        if mode != "dense" and not index.has_bm25:
            continue
        times = []
        for question in questions[:200]:
            started = time.perf_counter()
            index.search([question], k=K, fusion=mode)
            times.append(time.perf_counter() - started)
        row[f"search_{mode}"] = percentiles(times)
    for name, text_filter in (("year_2010_2015", TextFilter(year_min=2010, year_max=2015)),
                              ("mesh_humans", TextFilter(mesh=["Humans"]))):
        index.search([questions[0]], k=K, text_filter=text_filter)  # the filter's rows, read once and cached
        times = []
        for question in questions[:100]:
            started = time.perf_counter()
            index.search([question], k=K, text_filter=text_filter)
            times.append(time.perf_counter() - started)
        row[f"search_rrf_{name}"] = {**percentiles(times), "allowed_rows": index._allowed(text_filter).count}
    directory = index.directory
    row["disk_mb"] = {part: round(folder_bytes(directory / part) / 1e6, 1)
                      for part in ("faiss.index", "passages.sqlite", "vectors", "bm25", "terms") if (directory / part).exists()}
    row["disk_mb"]["total"] = round(folder_bytes(directory) / 1e6, 1)
    row["process_peak_rss_mb"] = round(peak_rss_mb(), 1)
    if args.build_json:
        build = json.loads(Path(args.build_json).read_text())
        row.update({"build_s": build["seconds"], "embedded": build["embedded"],
                    "resumed_shards": build.get("resumed_shards", 0)})
    if args.build_time:
        for path in args.build_time:
            for key, value in parse_time_v(Path(path)).items():
                row[key] = max(value, row.get(key, 0)) if key.endswith("rss_mb") else round(row.get(key, 0) + value, 1)
    print(json.dumps(row))


def synthetic_one(args: argparse.Namespace) -> None:
    """One size, in its own process: write shards, build IVF-PQ as a build does, load, search, recall."""
    from kgrag.indexes.dense import fill_index, new_index, read_faiss, search_parameters, train_sample, \
        write_faiss

    rows, work = args.rows, Path(args.work) / f"synthetic-{args.rows}"
    fit = np.load(args.fit_file)
    anchors, chol, scale = fit["anchors"], fit["chol"], float(fit["scale"])
    queries = np.load(args.queries).astype(np.float32)
    (work / "vectors").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows)
    started = time.perf_counter()
    paths = []
    for shard, start in enumerate(range(0, rows, args.shard)):
        n = min(args.shard, rows - start)
        paths.append(work / "vectors" / f"shard-{shard:05d}.npy")
        if paths[-1].exists() and np.load(paths[-1], mmap_mode="r").shape == (n, anchors.shape[1]):
            continue  # kept from an earlier run of this size (the same seed drew it)
        np.save(paths[-1], draw(anchors, chol, scale, n, rng))
    draw_s = time.perf_counter() - started
    (work / "faiss.index").unlink(missing_ok=True)
    shards = [np.load(p, mmap_mode="r") for p in paths]
    started = time.perf_counter()
    index, params = new_index("ivfpq", anchors.shape[1], rows)
    index.train(train_sample(shards, rows, limit=params["train"]))
    train_s = time.perf_counter() - started
    fill_index(index, shards, total=rows)
    write_faiss(index, work / "faiss.index")
    build_s = time.perf_counter() - started
    del index
    started = time.perf_counter()
    index = read_faiss(work / "faiss.index", mmap=True)
    shards = [np.load(p, mmap_mode="r") for p in paths]
    load_s = time.perf_counter() - started
    starts = np.cumsum([0] + [len(s) for s in shards[:-1]])
    from kgrag.settings import Settings

    defaults = Settings.model_fields
    nprobe, rerank = defaults["text_nprobe"].default, defaults["text_rerank"].default
    search = search_parameters("ivfpq", params, None, K * rerank, nprobe=nprobe)
    times, reranked, raw = [], [], []
    for query in queries:
        started = time.perf_counter()
        _, labels = index.search(query[None, :], K * rerank, params=search)
        candidates = labels[0][labels[0] >= 0]
        shard_of = np.searchsorted(starts, candidates, side="right") - 1
        found = np.stack([shards[s][r - starts[s]] for s, r in zip(shard_of, candidates)])
        order = np.argsort(-(found @ query))[:K]
        times.append(time.perf_counter() - started)
        reranked.append(candidates[order])
        raw.append(candidates[:K])
    peak = peak_rss_mb()  # the index's build and search, before the bench's own exact search
    started = time.perf_counter()
    exact = brute_force(shards, queries, K)
    exact_s = time.perf_counter() - started
    row = {"kind": "synthetic", "rows": rows, "index_type": "ivfpq", "index_params": params,
           "draw_s": round(draw_s, 1), "train_s": round(train_s, 1), "build_s": round(build_s, 1),
           "build_us_per_vector": round(1e6 * build_s / rows, 2), "peak_rss_mb": round(peak, 1),
           "disk_mb": {"faiss.index": round(folder_bytes(work / "faiss.index") / 1e6, 1),
                       "vectors": round(folder_bytes(work / "vectors") / 1e6, 1)},
           "nprobe": nprobe, "rerank": rerank,
           "load_s": round(load_s, 4), "search_dense_faiss_and_rerank": percentiles(times),
           "recall@10_vs_exact": round(overlap(reranked, exact), 4),
           "recall@10_vs_exact_without_rerank": round(overlap(raw, exact), 4),
           "exact_search_s_500_queries": round(exact_s, 1)}
    if not args.keep:
        shutil.rmtree(work)
    print(json.dumps(row))


def synthetic(args: argparse.Namespace) -> None:
    fit_file = Path(args.work) / "fit.npz"
    if not fit_file.exists():
        import faiss

        sample = np.concatenate([np.load(p) for p in sorted(Path(args.fit).glob("shard-*.npy"))[:args.fit_shards]])
        rng = np.random.default_rng(0)
        cov = np.cov(sample, rowvar=False) + 1e-6 * np.eye(sample.shape[1])
        chol = np.linalg.cholesky(cov).astype(np.float32)
        probe = sample[rng.choice(len(sample), 2000, replace=False)]
        scores, _ = faiss.knn(probe, sample, 2, metric=faiss.METRIC_INNER_PRODUCT)
        target = float(np.median(scores[:, 1]))  # the nearest other vector
        anchors = sample[rng.choice(len(sample), min(20_000, len(sample)), replace=False)]
        low, high = 0.0, 10.0
        for _ in range(30):  # the noise scale whose median cosine to the anchor is the real neighbours' median
            scale = (low + high) / 2
            drawn = draw(anchors[:2000], chol, scale, 2000, np.random.default_rng(1), in_order=True)
            cosine = float(np.median(np.einsum("ij,ij->i", drawn, anchors[:2000])))
            low, high = (scale, high) if cosine > target else (low, scale)
        np.savez(fit_file, anchors=anchors, chol=chol, scale=scale, target=target)
        print(json.dumps({"fit": {"vectors": len(sample), "median_neighbour_cosine": round(target, 4),
                                  "noise_scale": round(scale, 4)}}), flush=True)
    for rows in (int(float(s)) for s in args.sizes.split(",")):
        command = [sys.executable, __file__, "synthetic-one", "--rows", str(rows), "--work", args.work, "--fit-file",
                   str(fit_file), "--queries", args.queries, "--shard", str(args.shard)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(json.dumps({"kind": "synthetic", "rows": rows, "error": result.stderr[-2000:]}), flush=True)
            continue
        print(result.stdout.strip().splitlines()[-1], flush=True)


def plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for path in args.files for line in Path(path).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "error" not in r]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    series = {
        "build, s per 1k passages": lambda r: 1000 * r["build_s"] / r["rows"] if "build_s" in r else None,
        "peak RSS, GB": lambda r: (r.get("build_peak_rss_mb") or r.get("peak_rss_mb") or 0) / 1024 or None,
        "load, s": lambda r: r.get("load_median_s", r.get("load_s")),
        "dense search p50, ms": lambda r: (r.get("search_dense") or r.get("search_dense_faiss_and_rerank"))["p50_ms"],
    }
    for axis, (title, value) in zip(axes, series.items()):
        for kind, marker in (("real", "o"), ("synthetic", "s")):
            points = sorted((r["rows"], value(r)) for r in rows if r["kind"] == kind and value(r) is not None)
            if points:
                axis.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=kind)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(title)
        axis.set_xlabel("passages")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("Text index by size (real: real encoder on composed text, build incl. embedding; "
                 "synthetic: IVF-PQ alone on drawn vectors)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("real")
    p.add_argument("--build-json")
    p.add_argument("--build-time", nargs="*", help="/usr/bin/time -v outputs of the build (summed over resumes)")
    p = sub.add_parser("synthetic")
    p.add_argument("--sizes", required=True)
    p.add_argument("--fit", required=True, help="a folder of shard-*.npy real vectors")
    p.add_argument("--fit-shards", type=int, default=10)
    p.add_argument("--queries", required=True, help=".npy of real query vectors")
    p.add_argument("--work", required=True)
    p.add_argument("--shard", type=int, default=100_000)
    p = sub.add_parser("synthetic-one")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--fit-file", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--shard", type=int, default=100_000)
    p.add_argument("--keep", action="store_true")
    p = sub.add_parser("plot")
    p.add_argument("files", nargs="+")
    p.add_argument("--out", required=True)
    args = parser.parse_args()
    {"real": real, "synthetic": synthetic, "synthetic-one": synthetic_one, "plot": plot}[args.command](args)


if __name__ == "__main__":
    main()
