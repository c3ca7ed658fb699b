"""Free questions never seen before: per-question latency of each writer, in a running process.

Questions: a seeded sample of the BioASQ factoid, list and summary development questions (question only, so
retrieval runs: ``kg+text``), none of them asked before in the process. Untimed first: the models load, the
linker's dictionary is built and one warm-up batch of other questions runs. Then:

* ``evidence`` writer: ``answer_batch`` over batches of ``--batch`` (as bench/cold.py measures); per question:
  the batch's wall time divided by its size, and each stage's; p50 / p99 over the batches.
* ``llm`` writer: one question at a time, streamed: the time to the first generated text (``on_text``) and to the
  whole answer; p50 / p99 over ``--llm-n`` questions.

    KGRAG_HOME=~/.cache/kgrag KGRAG_SOURCES_DIR=../shared/data python bench/free_answers.py --n 48 --llm-n 8
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np

from eval.datasets import load_dataset
from kgrag.answer.pipeline import Pipeline
from kgrag.settings import load_settings

DATASETS = ("bioasq-factoid-qonly", "bioasq-list-qonly", "bioasq-summary-qonly")


def sample_questions(settings, n: int, seed: int) -> list[str]:
    """``n`` distinct question texts drawn with ``seed`` from the BioASQ development sets, in turn."""
    pools = [[item.question.text for item in load_dataset(settings, name).items] for name in DATASETS]
    rng = random.Random(seed)
    for pool in pools:
        rng.shuffle(pool)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n and any(pools):
        for pool in pools:
            while pool:
                text = pool.pop()
                if text not in seen:
                    seen.add(text)
                    out.append(text)
                    break
    return out[:n]


def p50_p99(values: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(values, 50)), 1), "p99": round(float(np.percentile(values, 99)), 1)}


def bench_evidence(settings, questions: list[str], warmup: list[str], batch: int) -> dict:
    pipeline = Pipeline.from_settings(settings.model_copy(update={"writer": "evidence"}))
    try:
        pipeline.answer_batch(warmup)
        per_question: list[float] = []
        stages: dict[str, list[float]] = {}
        for start in range(0, len(questions), batch):
            chunk = questions[start:start + batch]
            tick = time.perf_counter()
            answers = pipeline.answer_batch(chunk)
            per_question.append(1000 * (time.perf_counter() - tick) / len(chunk))
            for stage, ms in answers[0].timings_ms.items():
                stages.setdefault(stage, []).append(ms)
        return {"writer": "evidence", "questions": len(questions), "batch": batch, "total_ms": p50_p99(per_question),
                "stages_ms": {s: p50_p99(v) for s, v in stages.items()}}
    finally:
        pipeline.close()


def bench_llm(settings, questions: list[str], warmup: list[str]) -> dict:
    pipeline = Pipeline.from_settings(settings.model_copy(update={"writer": "llm"}))
    try:
        pipeline.answer(warmup[0])
        first: list[float] = []
        whole: list[float] = []
        tokens: list[int] = []
        for question in questions:
            tick = time.perf_counter()
            seen: list[float] = []
            answer = pipeline.answer(question, on_text=lambda _i, _t: seen.append(time.perf_counter()) if not seen else None)
            whole.append(1000 * (time.perf_counter() - tick))
            first.append(1000 * ((seen[0] if seen else time.perf_counter()) - tick))
            tokens.append(answer.usage.completion_tokens)
        return {"writer": "llm", "questions": len(questions), "first_text_ms": p50_p99(first), "total_ms": p50_p99(whole),
                "completion_tokens_mean": round(float(np.mean(tokens)), 1), "model": settings.llm_model,
                "generator": settings.generator, "max_new_tokens": settings.llm_max_new_tokens}
    finally:
        pipeline.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="questions for the evidence writer")
    parser.add_argument("--llm-n", type=int, default=8, help="questions for the LLM writer (0: skip it)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = load_settings(retrieval_mode="kg+text")
    questions = sample_questions(settings, args.n + args.batch, args.seed)
    warmup, questions = questions[: args.batch], questions[args.batch:]
    load = os.getloadavg()[0]
    results = [bench_evidence(settings, questions, warmup, args.batch)]
    if args.llm_n:
        results.append(bench_llm(settings, questions[: args.llm_n], warmup))
    print(json.dumps({"load_at_start": round(load, 2), "load_at_end": round(os.getloadavg()[0], 2),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
