"""Benchmark answer(): per-stage latency p50/p99 and questions/s, answer_batch(64) against 64 answer() calls.

Uses the configured settings (graph, text index, generator), so build the graph first. The
questions are KG-RAG MCQs (development split), answered with option scoring; both runs see the
same questions after a warm-up run (evidence selection, no LLM) that fills the embedding cache, so neither
pays for first-use sentence embedding; vLLM's prefix cache is reset before each timed run.

    KGRAG_SOURCES_DIR=../shared/data python bench/answer.py --n 64 --retrieval-mode kg
    python bench/answer.py --n 64 --generator vllm --option-scoring likelihood

The LLM scores every question here (``--selection-mode llm`` by default), so the numbers measure the
generator; ``--selection-mode llm+evidence`` measures what a user gets by default. "pipeline load" includes
the generator's start-up (vLLM's engine start, the model load for transformers).
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np

from kgrag.answer.pipeline import Pipeline
from kgrag.settings import load_settings
from kgrag.sources import source_path
from kgrag.types import Question
from eval.sufficiency import options_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--retrieval-mode", default="kg", choices=["none", "kg", "text", "kg+text"])
    parser.add_argument("--generator", default=None, choices=["auto", "transformers", "openai", "vllm"],
                        help="default: KGRAG_GENERATOR")
    parser.add_argument("--selection-mode", default="llm", choices=["llm", "evidence", "llm+evidence"])
    parser.add_argument("--option-scoring", default=None, choices=["label", "likelihood"],
                        help="default: KGRAG_OPTION_SCORING")
    args = parser.parse_args()

    overrides = {"retrieval_mode": args.retrieval_mode, "selection_mode": args.selection_mode}
    overrides.update({k: v for k, v in (("generator", args.generator), ("option_scoring", args.option_scoring)) if v})
    settings = load_settings(**overrides)
    with source_path(settings, "biomixqa/mcq_questions.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[: args.n]
    questions = [Question(text=r["text"], options=options_of(r["text"]), id=str(i)) for i, r in enumerate(rows)]

    start = time.perf_counter()
    pipeline = Pipeline.from_settings(settings)
    getattr(pipeline.generator, "get", lambda: None)()  # the LLM is opened on first use: open it here, timed as load
    load_s = time.perf_counter() - start
    # warm-up without the LLM (evidence selection): fills the embedding cache for both timed runs
    r = pipeline.retriever
    Pipeline(settings.model_copy(update={"selection_mode": "evidence"}), store=r.store, embedder=r.embedder,
             generator=pipeline.generator, text_index=r.text_index, stats=pipeline.stats,
             linker=r.linker).answer_batch(questions)
    reset = pipeline.generator.reset_cache  # vLLM: no prompt served from its prefix cache

    reset()
    start = time.perf_counter()
    sequential = [pipeline.answer(q) for q in questions]
    sequential_s = time.perf_counter() - start
    reset()
    start = time.perf_counter()
    batched = pipeline.answer_batch(questions)
    batched_s = time.perf_counter() - start

    same = sum(a.choice == b.choice for a, b in zip(sequential, batched))
    stages = sorted({k for a in sequential for k in a.timings_ms})
    print(f"settings {settings.fingerprint()}: generator {pipeline.generator.name}, graph {settings.graph_uri}, "
          f"retrieval {settings.retrieval_mode}, selection {settings.selection_mode}, option scoring "
          f"{settings.option_scoring}; pipeline load {load_s:.1f} s")
    print(f"{'stage (sequential answer())':<32}{'p50 ms':>10}{'p99 ms':>10}")
    for stage in stages:
        values = np.array([a.timings_ms.get(stage, 0.0) for a in sequential])
        print(f"{stage:<32}{np.percentile(values, 50):>10.1f}{np.percentile(values, 99):>10.1f}")
    print(f"{'mode':<32}{'seconds':>10}{'q/s':>10}")
    print(f"{f'{len(questions)} x answer()':<32}{sequential_s:>10.2f}{len(questions) / sequential_s:>10.2f}")
    print(f"{f'answer_batch({len(questions)})':<32}{batched_s:>10.2f}{len(questions) / batched_s:>10.2f}")
    print(f"speed-up {sequential_s / batched_s:.2f}x; same choice in {same}/{len(questions)}; "
          f"batched per-question stage ms: " + ", ".join(f"{k} {v:.1f}" for k, v in batched[0].timings_ms.items()))
    close = getattr(pipeline.generator, "close", None)
    if close:
        close()
    pipeline.close()


if __name__ == "__main__":
    main()
