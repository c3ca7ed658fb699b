"""Benchmark of the uncertainty gate's statistics: index build, count/cooccur latency, gate cost per question.

Builds the local Infini-gram index of the project corpus (PubMedQA contexts + BioASQ snippets) in a
temporary folder (or uses ``--index DIR``), then times uncached lookups of entity-like terms (words
and two-word phrases seen 2-2000 times in the corpus) one call at a time, and the whole gate of a
simulated question: stage 1 over 3 entities, then stage 2 after each of 5 generated sentences with
3 entity pairs each (one batched call per sentence, as in the dynamic loop); "typical" sentences
name two of the question's entities and one new one, "all_distinct" ones three new entities.

    KGRAG_SOURCES_DIR=/work/shared/data python bench/gate.py [--index DIR] [--n 400] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kgrag.settings import load_settings
from quco.gate import Gate, entity_pairs
from quco.index_builder import build_index, project_corpus, read_stats_manifest
from quco.stats import LocalInfiniGramStats


def _pcts(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(arr, 50)), 4), "p99_ms": round(float(np.percentile(arr, 99)), 4),
            "mean_ms": round(float(arr.mean()), 4), "n": len(ms)}


def _entity_like_terms(index_dir: Path, rng: random.Random, n: int) -> list[str]:
    """Words and bigrams seen 2-2000 times, excluding the 300 most frequent words (function words)."""
    manifest = read_stats_manifest(index_dir)
    ids = np.fromfile(index_dir / "tokenized.0", dtype=np.uint16 if manifest.token_dtype == "u16" else np.uint32)
    sep = np.iinfo(ids.dtype).max
    words = ids[ids != sep]
    counts = np.bincount(words)
    vocab = {i: w for w, i in json.loads((index_dir / "tokenizer.json").read_text())["model"]["vocab"].items()}
    common = set(np.argsort(counts)[-300:].tolist())
    singles = [vocab[i] for i in np.flatnonzero((counts >= 2) & (counts <= 2000)) if i not in common and vocab[i].isalpha()]
    starts = rng.sample(range(len(ids) - 1), 20 * n)
    bigrams = [f"{vocab[int(ids[s])]} {vocab[int(ids[s + 1])]}" for s in starts
               if ids[s] != sep and ids[s + 1] != sep and int(ids[s]) not in common and int(ids[s + 1]) not in common]
    terms = rng.sample(singles, min(len(singles), n)) + bigrams[: n // 2]
    return list(dict.fromkeys(terms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="use this built index instead of building one")
    parser.add_argument("--n", type=int, default=400, help="lookups per measurement")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(0)
    settings = load_settings()
    report: dict[str, object] = {"machine": f"{os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}"}

    tmp = tempfile.TemporaryDirectory(prefix="quco-bench-")
    index_dir = args.index
    if index_dir is None:
        started = time.perf_counter()
        source = project_corpus(settings)
        load_s = time.perf_counter() - started
        index_dir = Path(tmp.name) / "idx"
        manifest = build_index(source, index_dir)
        millions = manifest.total_tokens / 1e6
        report["build"] = {
            "corpus_load_s": round(load_s, 3), "build_s": manifest.build_seconds, "docs": manifest.doc_count,
            "tokens": manifest.total_tokens, "index_mb": round(manifest.index_bytes / 1e6, 3),
            "build_s_per_million_tokens": round(manifest.build_seconds / millions, 3),
            "index_mb_per_million_tokens": round(manifest.index_bytes / 1e6 / millions, 3),
        }

    stats = LocalInfiniGramStats(index_dir)
    report["index"] = stats.description
    terms = _entity_like_terms(index_dir, rng, args.n)
    count_ms = []
    for term in terms:
        t0 = time.perf_counter()
        stats.count([term])
        count_ms.append((time.perf_counter() - t0) * 1e3)
    report["count_uncached"] = _pcts(count_ms)

    stats.clear_cache()
    pairs = list(dict.fromkeys(tuple(rng.sample(terms, 2)) for _ in range(args.n)))
    co_ms = []
    for pair in pairs:
        t0 = time.perf_counter()
        stats.cooccur([pair], settings.cooccur_window)
        co_ms.append((time.perf_counter() - t0) * 1e3)
    report["cooccur_uncached"] = _pcts(co_ms)

    heavy = [("the", "of"), ("patients", "with"), ("cancer", "cells"), ("diabetes", "insulin")]
    heavy_ms = {}
    for a, b in heavy:
        t0 = time.perf_counter()
        [n] = stats.cooccur([(a, b)], settings.cooccur_window)
        heavy_ms[f"{a}+{b}"] = {"ms": round((time.perf_counter() - t0) * 1e3, 3), "cooccur": n,
                                "counts": stats.count([a, b])}
    report["cooccur_frequent_words"] = heavy_ms

    t0 = time.perf_counter()
    stats.cooccur(pairs[:100], settings.cooccur_window)
    report["cooccur_cached_100_batch_ms"] = round((time.perf_counter() - t0) * 1e3, 4)

    gate = Gate(stats, settings)
    for shape in ("typical", "all_distinct"):
        per_question = []
        for _ in range(args.questions):
            stats.clear_cache()  # every question starts cold
            entities = rng.sample(terms, 3)
            if shape == "typical":  # each sentence: two of the question's entities and one new one
                sentences = [entity_pairs(rng.sample(entities, 2) + rng.sample(terms, 1)) for _ in range(5)]
            else:  # worst case: every sentence names three entities never seen before
                sentences = [entity_pairs(rng.sample(terms, 3)) for _ in range(5)]
            t0 = time.perf_counter()
            gate.check_questions([entities])
            for sentence_pairs in sentences:
                gate.check_sentences([sentence_pairs])
            per_question.append((time.perf_counter() - t0) * 1e3)
        report[f"gate_per_question_{shape}"] = {
            **_pcts(per_question),
            "shape": "stage 1 over 3 entities + stage 2 after each of 5 sentences (3 pairs each), cold cache",
            "unique_terms": 8 if shape == "typical" else 18,
        }
    report["load_average_1m"] = round(os.getloadavg()[0], 2)

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
