"""Record what the pipeline answers with evidence selection (no LLM call), to compare two versions of the code.

Runs ``Pipeline.answer_batch`` on the first N rows of the KG-RAG MCQ and true/false sets with
``selection_mode=evidence`` (options are chosen from graph, corpus and passage evidence only; the
generator is loaded but never asked) and writes, per question, its id, choice and evidence ids.

    KGRAG_SOURCES_DIR=../shared/data KGRAG_HOME=/tmp/kgrag-home python bench/same_answers.py --out before.json
    # ... change the code ...
    python bench/same_answers.py --out after.json && diff before.json after.json   # empty: the same answers
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval.datasets import load_dataset
from kgrag.answer.pipeline import Pipeline
from kgrag.settings import load_settings

DATASETS = ("biomixqa-mcq", "biomixqa-tf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="rows per dataset (the first N)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--generator", default="transformers", help="loaded for token counts only (default transformers)")
    args = parser.parse_args()

    settings = load_settings(selection_mode="evidence", generator=args.generator)
    pipeline = Pipeline.from_settings(settings)
    rows = []
    try:
        for name in DATASETS:
            items = load_dataset(settings, name).items[: args.n]
            answers = pipeline.answer_batch([item.question for item in items])
            for item, answer in zip(items, answers):
                rows.append({"dataset": name, "id": item.id, "choice": answer.choice, "abstained": answer.abstained,
                             "evidence": [e.id for e in answer.evidence]})
    finally:
        pipeline.close()
    args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    chosen = sum(r["choice"] is not None for r in rows)
    print(f"{len(rows)} questions, {chosen} chosen by evidence, "
          f"{sum(len(r['evidence']) for r in rows)} evidence ids -> {args.out}")


if __name__ == "__main__":
    main()
