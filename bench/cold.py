"""Cold questions: per-stage latency of questions whose neighbourhood was never embedded.

Each run gets a fresh, empty embedding cache, so every neighbourhood sentence is new to it (the
first question a user ever asks about these diseases). With the precomputed edge-vector store
(``kgrag build-edge-vectors``) pruning is a lookup and a matrix product; without it the sentences
are embedded at query time. Questions: the first ``--n`` KG-RAG MCQs and the first ``--n`` T/F rows
(development split), evidence selection (no LLM), graph retrieval, batches of ``--batch``.

Untimed before each run: the models load, the linker's dictionary is built, its fallback name
matrix is embedded and the is-a hierarchy is read (once per process, whatever the question; the
hierarchy ~0.7 s on the public graph). Timed: ``answer_batch`` per batch;
each stage's time is per question (the batch's time divided by its size). Printed: p50/p99 over the
batches of each stage and of the total (linking + gate + graph + pruning + evidence), and the share
of candidate sentences the store answered.

    KGRAG_HOME=/tmp/h13 KGRAG_SOURCES_DIR=/work/shared/data python bench/cold.py --edge-vectors off on
    KGRAG_EMBEDDING_THREADS=1 ...   # on a shared, busy machine (see docs/settings.md)

``--context`` also measures context tokens (the generator's tokenizer) of free questions
(``biomixqa/rag_comparison_data.csv`` plus the psoriasis example) with ``kg+text``, and of the MCQs.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.datasets import load_dataset
from kgrag.indexes.edge_vectors import open_edge_vectors
from kgrag.encoders.embeddings import SentenceTransformerEmbedder
from kgrag.generators import open_generator
from kgrag.graph.serving import open_serving_graph
from kgrag.retrieval.linking import EntityLinker
from kgrag.answer.pipeline import Pipeline
from kgrag.settings import Settings, load_settings
from kgrag.sources import source_path
from kgrag.types import Question

STAGES = ("linking", "gate", "graph_fetch", "text_search", "pruning", "generation")
SHOWN = {"generation": "evidence"}
FREE_FILE = "biomixqa/rag_comparison_data.csv"
PSORIASIS = "Which genes are associated with psoriasis?"


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``values``."""
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def make_pipeline(settings: Settings, cache_dir: Path, store: Any, generator: Any, warm: Any) -> Pipeline:
    """A pipeline whose embedder starts with an empty cache (``cache_dir``).

    The linker's fallback name matrix (once per process, whatever the question) is embedded by ``warm``,
    an embedder over the home's cache; the linker then embeds question spans with the cold embedder.
    """
    embedder = SentenceTransformerEmbedder(settings.embedding_model, device=settings.embedding_device,
                                           batch_size=settings.embedding_batch_size, cache_dir=cache_dir,
                                           threads=settings.embedding_threads, backend=settings.embedding_backend,
                                           home=settings.home, precision=settings.embedding_precision)
    embedder.encode(["warm-up"], persist=False)
    linker = EntityLinker.from_store(store, warm, settings)
    if linker._fallback_label:  # noqa: SLF001 - the per-process name matrix, untimed
        linker._fallback_index()  # noqa: SLF001
    linker.embedder = embedder
    edge_vectors = open_edge_vectors(settings, store, embedder)
    pipeline = Pipeline(settings, store=store, embedder=embedder, generator=generator, linker=linker,
                        edge_vectors=edge_vectors)
    if linker.ontology is not None:  # the is-a hierarchy, read once per process (shared with the evidence checker)
        linker.ontology.ancestors(["warm-up"])
    return pipeline


def timed_run(pipeline: Pipeline, questions: list[Question], batch: int) -> dict[str, Any]:
    """Per-question stage times of each batch, and how many sentences were embedded at query time."""
    rows: list[dict[str, float]] = []
    embedded_before = getattr(pipeline.retriever.embedder, "encoded_count", 0)
    for lo in range(0, len(questions), batch):
        chunk = questions[lo:lo + batch]
        started = time.perf_counter()
        answers = pipeline.answer_batch(chunk)
        wall = (time.perf_counter() - started) * 1000 / len(chunk)
        stages = {s: answers[0].timings_ms.get(s, 0.0) for s in STAGES}
        stages["total"] = sum(stages.values())
        stages["wall"] = wall
        rows.append(stages)
    embedded = getattr(pipeline.retriever.embedder, "encoded_count", 0) - embedded_before
    return {"batches": rows, "embedded_texts": embedded}


def summarise(label: str, rows: list[dict[str, float]], embedded: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"run": label, "questions": n, "embedded_at_query_time": embedded}
    for key in (*STAGES, "total", "wall"):
        p50, p99 = percentiles([r[key] for r in rows])
        out[SHOWN.get(key, key)] = {"p50": round(p50, 1), "p99": round(p99, 1)}
    return out


def print_summary(s: dict[str, Any]) -> None:
    cells = "  ".join(f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in s.items() if isinstance(v, dict))
    print(f"{s['run']:<34} n={s['questions']:<3} embedded {s['embedded_at_query_time']:>6}  ms p50/p99: {cells}")


def context_tokens(pipeline: Pipeline, questions: list[Question], batch: int) -> dict[str, float]:
    """Mean and p95 of the context tokens (generator tokenizer) the pipeline puts in the prompt."""
    from kgrag.answer.prompts import render_context

    counts: list[int] = []
    for lo in range(0, len(questions), batch):
        qs = questions[lo:lo + batch]
        found = pipeline.retriever.retrieve([q.text for q in qs], pipeline.retriever.link(qs))
        counts += pipeline.generator.count_tokens([render_context(r.evidence, q.context) for q, r in zip(qs, found)])
    return {"mean": round(float(np.mean(counts)), 1), "p95": round(float(np.percentile(counts, 95)), 1),
            "max": int(max(counts)), "n": len(counts)}


def free_questions(settings: Settings) -> list[Question]:
    with source_path(settings, FREE_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [Question(text=PSORIASIS, id="psoriasis")] + [Question(text=r["question"], id=f"free-{i}")
                                                         for i, r in enumerate(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--edge-vectors", nargs="+", default=["auto"], choices=["auto", "on", "off"],
                        help="runs to make, each with a fresh embedding cache (needs the edge_vectors setting)")
    parser.add_argument("--context", action="store_true", help="also measure context tokens (free, kg+text; MCQ)")
    parser.add_argument("--context-budgets", type=int, nargs="*", default=None,
                        help="context budgets to measure context tokens at (default: the setting)")
    parser.add_argument("--budget", type=int, default=None, help="context_budget_tokens (default: settings)")
    parser.add_argument("--keep-cache", type=Path, default=None,
                        help="copy each run's embedding cache shards here afterwards (e.g. to seed a build)")
    parser.add_argument("--json", type=Path, default=None, help="write the summaries here")
    args = parser.parse_args()

    overrides: dict[str, Any] = {"selection_mode": "evidence", "retrieval_mode": "kg", "gate_mode": "always"}
    if args.budget is not None:
        overrides["context_budget_tokens"] = args.budget
    base = load_settings(**overrides)
    data = {name: [item.question for item in load_dataset(base, name).items[: args.n]]
            for name in ("biomixqa-mcq", "biomixqa-tf")}
    store = open_serving_graph(base)
    generator = open_generator(base)
    warm = SentenceTransformerEmbedder(base.embedding_model, device=base.embedding_device,
                                       cache_dir=base.home / "embeddings", threads=base.embedding_threads,
                                       backend=base.embedding_backend, home=base.home,
                                       precision=base.embedding_precision)
    summaries = []
    for mode in args.edge_vectors:
        settings = base.model_copy(update={"edge_vectors": mode})
        with tempfile.TemporaryDirectory(prefix="kgrag-cold-") as tmp:
            pipeline = make_pipeline(settings, Path(tmp), store, generator, warm)
            all_rows: list[dict[str, float]] = []
            embedded_total = 0
            for name, questions in data.items():
                got = timed_run(pipeline, questions, args.batch)
                all_rows += got["batches"]
                embedded_total += got["embedded_texts"]
                summaries.append(summarise(f"{name} edge_vectors={mode}", got["batches"], got["embedded_texts"],
                                           len(questions)))
                print_summary(summaries[-1])
            summaries.append(summarise(f"both edge_vectors={mode}", all_rows, embedded_total,
                                       sum(len(q) for q in data.values())))
            print_summary(summaries[-1])
            if args.context:
                free = free_questions(settings)
                for budget in args.context_budgets or [settings.context_budget_tokens]:
                    at = settings.model_copy(update={"context_budget_tokens": budget})
                    pipeline.settings = at
                    kgtext = Pipeline.from_settings(at.model_copy(update={"retrieval_mode": "kg+text"}))
                    for label, pipe, qs in (("free kg+text", kgtext, free), ("mcq kg", pipeline, data["biomixqa-mcq"]),
                                            ("mcq kg+text", kgtext, data["biomixqa-mcq"])):
                        tokens = context_tokens(pipe, qs, args.batch)
                        summaries.append({"run": f"context tokens {label} budget={budget}", **tokens})
                        print(f"context tokens {label:<14} budget={budget}: mean {tokens['mean']:.0f}, "
                              f"p95 {tokens['p95']:.0f}, max {tokens['max']} (n={tokens['n']})")
                    kgtext.close()
            if args.keep_cache:
                args.keep_cache.mkdir(parents=True, exist_ok=True)
                for shard in Path(tmp).glob("*/shard-*"):
                    shutil.copy2(shard, args.keep_cache / shard.name)
    store.close()
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=1))


if __name__ == "__main__":
    main()
