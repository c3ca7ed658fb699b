"""Encoder rate by backend and threads, on a sample of the corpus's passages, and where a build's time goes.

- Rates: the same passages (``--n``, seeded sample of ``load_corpus``) embedded by each backend
  (torch, onnx, onnx-int8) at each thread count, in interleaved rounds (every variant once per round,
  so a neighbour's load falls on all of them alike); medians of ``--rounds`` rounds, with the load
  average at each round. The embedder is the one the build uses (``SentenceTransformerEmbedder``,
  batch size from the settings), without its cache.
- Agreement with torch: max |diff| and min / mean cosine of each backend's vectors.
- ``--questions``: ms to embed one PubMedQA question alone (the query path), per backend, one thread.
- ``--parts``: a text-index build's other parts on the whole corpus: tokenising every passage
  (length-sorted batches, as the encoder sees them), BM25, the FAISS index, writing the files.

Usage::

    KGRAG_SOURCES_DIR=/work/shared/data KGRAG_HOME=/tmp/kgrag-home python bench/embed_rate.py \\
        --n 800 --threads 1,2 --rounds 3 [--parts] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kgrag.indexes.corpus import load_corpus
from kgrag.encoders.embeddings import BACKENDS, SentenceTransformerEmbedder
from kgrag.settings import Settings, load_settings


def sample_texts(settings: Settings, n: int, seed: int) -> list[str]:
    passages = load_corpus(settings).passages
    picked = np.random.default_rng(seed).choice(len(passages), size=min(n, len(passages)), replace=False)
    return [passages[int(i)].text for i in picked]


def make_embedder(settings: Settings, backend: str, threads: int) -> SentenceTransformerEmbedder:
    """``backend``: one of kgrag's backends, or ``torch-bf16`` (torch with KGRAG_EMBEDDING_PRECISION=bf16)."""
    precision = "bf16" if backend == "torch-bf16" else "fp32"
    return SentenceTransformerEmbedder(settings.embedding_model, batch_size=settings.embedding_batch_size,
                                       threads=threads, backend=backend.removesuffix("-bf16"), home=settings.home,
                                       precision=precision)


def agreement(vectors: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    cosine = np.einsum("ij,ij->i", vectors, reference)
    return {"max_abs_diff": float(np.abs(vectors - reference).max()), "min_cosine": float(cosine.min()),
            "mean_cosine": float(cosine.mean())}


def rates(settings: Settings, texts: list[str], backends: list[str], threads: list[int],
          rounds: int) -> dict[str, object]:
    embedders = {(b, t): make_embedder(settings, b, t) for b in backends for t in threads}
    reference = embedders[(backends[0], threads[-1])]._encode(texts)
    report: dict[str, object] = {"agreement": {b: agreement(embedders[(b, threads[-1])]._encode(texts), reference)
                                               for b in backends[1:]}}
    samples: dict[str, list[float]] = {f"{b}@{t}": [] for b, t in embedders}
    loads = []
    for _ in range(rounds):
        for (backend, count), embedder in embedders.items():
            started = time.perf_counter()
            embedder._encode(texts)
            samples[f"{backend}@{count}"].append(len(texts) / (time.perf_counter() - started))
        loads.append(os.getloadavg()[0])
        print(f"round {len(loads)}: load {loads[-1]:.2f}: "
              + ", ".join(f"{k} {v[-1]:.1f}/s" for k, v in samples.items()), flush=True)
    report["rates"] = {k: {"median": round(float(np.median(v)), 1), "all": [round(x, 1) for x in v]}
                       for k, v in samples.items()}
    report["load_average_1min"] = loads
    return report


def question_latency(settings: Settings, backends: list[str], count: int, rounds: int) -> dict[str, float]:
    """Median ms to embed one PubMedQA question alone (the query path), one thread, interleaved by backend."""
    from kgrag.sources import source_path

    rows = json.loads(source_path(settings, "pubmedqa/pqal_test_unlabelled.json").read_text())
    questions = [row["QUESTION"] for row in rows.values()][:count]
    embedders = {b: make_embedder(settings, b, 1) for b in backends}
    samples: dict[str, list[float]] = {b: [] for b in backends}
    for _ in range(rounds):
        for question in questions:
            for backend, embedder in embedders.items():
                started = time.perf_counter()
                embedder._encode([question])
                samples[backend].append((time.perf_counter() - started) * 1000)
    return {b: round(float(np.median(v)), 2) for b, v in samples.items()}


def build_parts(settings: Settings) -> dict[str, float]:
    """Seconds of a build's parts other than the encoder forward, on the whole corpus."""
    from kgrag.indexes.bm25_index import Bm25Index
    from kgrag.indexes.dense import build_index as make_faiss_index

    passages = load_corpus(settings).passages
    texts = [p.text for p in passages]
    model = make_embedder(settings, "torch", 0)._model
    order = np.argsort([-len(t) for t in texts])
    parts: dict[str, float] = {"passages": float(len(texts))}
    started = time.perf_counter()
    size = settings.embedding_batch_size or 16
    for start in range(0, len(texts), size):
        model.preprocess([texts[int(i)] for i in order[start:start + size]])
    parts["tokenise_s"] = time.perf_counter() - started
    vectors = np.random.default_rng(0).standard_normal((len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    dense, _ = make_faiss_index(vectors, "flat")
    parts["faiss_flat_s"] = time.perf_counter() - started
    started = time.perf_counter()
    lexical, _ = Bm25Index.build(texts)
    parts["bm25_s"] = time.perf_counter() - started
    import faiss

    from kgrag.indexes.corpus import write_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        faiss.write_index(dense, str(Path(tmp) / "faiss.index"))
        write_jsonl(passages, Path(tmp) / "passages.jsonl")
        lexical.save(Path(tmp) / "bm25")
        parts["write_s"] = time.perf_counter() - started
    return {k: round(v, 2) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=800, help="passages in the sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="the first is the reference; torch-bf16 is torch in bfloat16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="also time a build's other parts")
    parser.add_argument("--questions", type=int, default=0, help="also time this many single-question calls")
    parser.add_argument("--json", type=Path, default=None, help="write the report here too")
    args = parser.parse_args()
    settings = load_settings()
    texts = sample_texts(settings, args.n, args.seed)
    report: dict[str, object] = {"n": len(texts), "batch_size": settings.embedding_batch_size or "by precision"}
    if args.parts:
        report["parts"] = build_parts(settings)
        print("parts", report["parts"], flush=True)
    if args.questions:
        report["question_ms_p50"] = question_latency(settings, args.backends.split(","), args.questions, args.rounds)
        print("one question, ms p50", report["question_ms_p50"], flush=True)
    if args.n:
        report.update(rates(settings, texts, args.backends.split(","), [int(t) for t in args.threads.split(",")],
                            args.rounds))
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
