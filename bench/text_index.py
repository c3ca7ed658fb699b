"""Text index benchmark: build rate, size on disk, query latency, and HNSW recall against Flat.

Uses the corpus under KGRAG_SOURCES_DIR (or --corpus) and the embedding cache under KGRAG_HOME,
so after `kgrag build-text-index` no passage is embedded again. Prints:

- embedding rate (cold, a sample embedded by a fresh model without cache) and cached lookup rate;
- for Flat and HNSW: FAISS build rate (passages/s, vectors given), size on disk, FAISS query latency
  p50/p99 per call with 1 and with 64 queries per call (query vectors given);
- HNSW recall@10 against Flat (exact) over the same queries;
- end-to-end ``TextIndex.search`` latency (query embedding + FAISS + BM25 + fusion), 1 and 64 per call.

Queries: the PubMedQA test questions and MIRAGE BioASQ-Y/N questions (1,117 distinct texts).

Usage::

    KGRAG_SOURCES_DIR=/work/shared/data KGRAG_HOME=/tmp/kgrag-home python bench/text_index.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from kgrag.indexes.corpus import load_corpus
from kgrag.encoders.embeddings import embedder_from_settings
from kgrag.settings import load_settings
from kgrag.sources import source_path
from kgrag.indexes.bm25_index import Bm25Index
from kgrag.indexes.dense import build_index as make_faiss_index
from kgrag.indexes.text_index import TextIndex, default_embedder, faiss_search


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def time_calls(search, batches: list) -> tuple[float, float]:
    timings = []
    for batch in batches:
        started = time.perf_counter()
        search(batch)
        timings.append(time.perf_counter() - started)
    return percentiles(timings)


def load_queries(settings) -> list[str]:
    pubmedqa = json.loads(source_path(settings, "pubmedqa/pqal_test_unlabelled.json").read_text())
    mirage = json.loads(source_path(settings, "mirage/benchmark_without_pubmedqa.json").read_text())["bioasq"]
    queries = [row["QUESTION"] for row in pubmedqa.values()] + [item["question"] for item in mirage.values()]
    return list(dict.fromkeys(queries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=None, help="a user corpus instead of the public one")
    parser.add_argument("--single-calls", type=int, default=300, help="calls with one query each")
    parser.add_argument("--cold-sample", type=int, default=300, help="passages embedded without cache")
    parser.add_argument("--e2e-queries", type=int, default=420, help="queries for the end-to-end timing")
    args = parser.parse_args()
    settings = load_settings()
    passages = load_corpus(settings, args.corpus).passages
    texts = [p.text for p in passages]
    queries = load_queries(settings)
    rows: list[tuple[str, str]] = [("passages", str(len(passages))), ("queries", str(len(queries)))]

    embedder = default_embedder(settings)
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    cached_s = time.perf_counter() - started
    rows.append(("embeddings: newly embedded now (0 = all from cache)", str(embedder.encoded_count)))
    rows.append(("embeddings: cached lookup rate (passages/s)", f"{len(texts) / cached_s:,.0f}"))
    cold = embedder_from_settings(settings, cache=False)
    sample = texts[:: max(1, len(texts) // args.cold_sample)][: args.cold_sample]
    started = time.perf_counter()
    cold.encode(sample)
    rows.append((f"embeddings: cold rate on {len(sample)} sampled passages (passages/s)",
                 f"{len(sample) / (time.perf_counter() - started):,.1f}"))
    qvectors = embedder.encode(queries, persist=False)

    started = time.perf_counter()
    bm25, _ = Bm25Index.build(texts)
    bm25_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        bm25.save(Path(tmp) / "bm25")
        bm25_bytes = sum(f.stat().st_size for f in (Path(tmp) / "bm25").iterdir())
    rows.append(("bm25: build rate (passages/s)", f"{len(texts) / bm25_s:,.0f}"))
    rows.append(("bm25: size on disk (MB)", f"{bm25_bytes / 1e6:.1f}"))

    singles = [qvectors[i:i + 1] for i in range(min(args.single_calls, len(queries)))]
    batches = [qvectors[i:i + 64] for i in range(0, len(queries) - 63, 64)]
    truth = None
    for kind in ("flat", "hnsw"):
        started = time.perf_counter()
        index, params = make_faiss_index(vectors, kind)
        build_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            faiss.write_index(index, str(Path(tmp) / "faiss.index"))
            size = (Path(tmp) / "faiss.index").stat().st_size
        rows.append((f"{kind}: params", json.dumps(params) if params else "exact"))
        rows.append((f"{kind}: build rate, vectors given (passages/s)", f"{len(texts) / build_s:,.0f}"))
        rows.append((f"{kind}: size on disk (MB)", f"{size / 1e6:.1f}"))
        p50, p99 = time_calls(lambda q: faiss_search(index, q, 10), singles)
        rows.append((f"{kind}: FAISS latency, 1 query/call, p50 / p99 (ms)", f"{p50:.3f} / {p99:.3f}"))
        p50, p99 = time_calls(lambda q: faiss_search(index, q, 10), batches)
        rows.append((f"{kind}: FAISS latency, 64 queries/call, p50 / p99 (ms)", f"{p50:.3f} / {p99:.3f}"))
        _, found = index.search(qvectors, 10)
        if truth is None:
            truth = found
        else:
            overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
            rows.append((f"{kind}: recall@10 against flat", f"{overlap:.4f}"))

    # end to end: fresh in-memory embedder so every query is embedded; default fusion of the settings
    index = TextIndex.build(passages, settings, embedder=embedder, index_type="flat", progress=False, save=False)
    index.embedder = embedder_from_settings(settings, cache=False)
    mode = settings.text_fusion
    e2e = queries[: args.e2e_queries]
    single_q = [[q] for q in e2e[:100]]
    batch_q = [e2e[i:i + 64] for i in range(100, len(e2e) - 63, 64)]
    p50, p99 = time_calls(lambda q: index.search(q, 10, fusion=mode), single_q)
    rows.append((f"TextIndex.search ({mode}, flat), 1 query/call, p50 / p99 (ms)", f"{p50:.1f} / {p99:.1f}"))
    p50, p99 = time_calls(lambda q: index.search(q, 10, fusion=mode), batch_q)
    rows.append((f"TextIndex.search ({mode}, flat), 64 queries/call, p50 / p99 (ms)", f"{p50:.1f} / {p99:.1f}"))

    width = max(len(name) for name, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
