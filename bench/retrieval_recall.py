"""Retrieval recall of the built text index, dense vs BM25 vs fused (no LLM, no answers used).

- PubMedQA question-only: the 500 test questions of pubmedqa/pqal_test_unlabelled.json; the gold
  document is the question's own abstract (its key is the PMID).
- BioASQ-Y/N: MIRAGE's ``bioasq`` set (618 questions), gold = its ``PMID`` list; a hit is any gold PMID.

The index holds PubMedQA abstracts split per context paragraph, so one abstract is several
passages. recall@k therefore dedupes by PMID: each ranked list (top 100 passages) is collapsed to
its distinct PMIDs in rank order, and a hit counts when a gold PMID is among the first k of them.
The stricter passage-level number (a gold PMID among the first k passages) is printed beside it.

Usage::

    KGRAG_SOURCES_DIR=/work/shared/data KGRAG_HOME=/tmp/kgrag-home python bench/retrieval_recall.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from kgrag.settings import load_settings
from kgrag.sources import source_path
from kgrag.indexes.text_index import PassageHit, TextIndex

DEPTH = 100
KS = (1, 5, 10)


def distinct_pmids(hits: Sequence[PassageHit]) -> list[str]:
    """PMIDs of a ranked hit list, first occurrence kept, in rank order."""
    seen: dict[str, None] = {}
    for hit in hits:
        if hit.passage.pmid:
            seen.setdefault(hit.passage.pmid, None)
    return list(seen)


def recall(results: list[list[PassageHit]], gold: list[set[str]], k: int, *, by_pmid: bool = True) -> float:
    """Share of queries with a gold PMID in the top k (distinct PMIDs, or passages when by_pmid=False)."""
    found = 0
    for hits, wanted in zip(results, gold):
        top = distinct_pmids(hits)[:k] if by_pmid else [h.passage.pmid for h in hits[:k]]
        found += bool(wanted & set(top))
    return found / len(gold)


def evaluate(index: TextIndex, name: str, questions: list[str], gold: list[set[str]]) -> list[dict[str, object]]:
    rows = []
    for mode in ("dense", "bm25", "rrf"):
        if mode != "dense" and not index.has_bm25:
            continue
        started = time.perf_counter()
        results = index.search(questions, k=DEPTH, fusion=mode)  # one batch call per retriever
        seconds = time.perf_counter() - started
        row: dict[str, object] = {"set": name, "retriever": mode, "questions": len(questions)}
        for k in KS:
            row[f"recall@{k}"] = round(recall(results, gold, k), 4)
        row["passage_recall@10"] = round(recall(results, gold, 10, by_pmid=False), 4)
        row["batch_seconds"] = round(seconds, 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    settings = load_settings()
    index = TextIndex.load(settings)
    corpus_pmids = index.store.pmids()

    pubmedqa = json.loads(source_path(settings, "pubmedqa/pqal_test_unlabelled.json").read_text())
    rows = evaluate(index, "pubmedqa-test", [row["QUESTION"] for row in pubmedqa.values()],
                    [{str(pmid)} for pmid in pubmedqa])

    mirage = json.loads(source_path(settings, "mirage/benchmark_without_pubmedqa.json").read_text())["bioasq"]
    items = [item for item in mirage.values() if item.get("PMID")]
    gold = [{str(p) for p in item["PMID"]} for item in items]
    rows += evaluate(index, "bioasq-yn", [item["question"] for item in items], gold)
    in_corpus = sum(bool(g & corpus_pmids) for g in gold) / len(gold)

    if args.json:
        print(json.dumps({"index": index.stats(), "bioasq_gold_in_corpus": in_corpus, "rows": rows}, indent=2))
        return
    print(f"index: {index.manifest.index_type}, {index.manifest.passage_count} passages, "
          f"{len(corpus_pmids)} PMIDs, model {index.manifest.embedding_model}")
    print(f"bioasq-yn questions with a gold PMID: {len(items)} of {len(mirage)}; "
          f"with any gold PMID in the corpus: {in_corpus:.4f}")
    header = ["set", "retriever", "questions", *[f"recall@{k}" for k in KS], "passage_recall@10", "batch_seconds"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in header) + " |")


if __name__ == "__main__":
    main()
