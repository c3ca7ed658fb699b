"""Context sufficiency on the KG-RAG MCQ set: does the pruned context link the right option to both diseases?

For each row the graph covers (``graph_loaders.coverage``), the pipeline's own linking and
retrieval run (no generation); the pruned evidence is read as a graph: an option is "linked to both"
when the kept edges join its node to two distinct linked diseases of the question (a nested ancestor linked inside
another disease's name does not count as a second one). Reported: the
rate for the correct option, the rate at which some wrong option is linked to both as well, and the
context size in tokens (the generator's tokenizer), with and without option edges ranked first.

Example::

    report = context_sufficiency(pipeline, settings)
    report.correct_linked_both, report.mean_context_tokens
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from kgrag.answer.pipeline import Pipeline
from kgrag.answer.prompts import render_context
from kgrag.sources import source_path
from kgrag.types import Evidence, LinkedEntity, Question, option_key

MCQ_FILE = "biomixqa/mcq_questions.csv"


class SufficiencyReport(BaseModel):
    option_edges_first: bool
    rows: int
    covered_rows: int
    correct_linked_both: float
    wrong_linked_both: float
    mean_context_tokens: float
    mean_context_tokens_all_rows: float
    seconds: float


def options_of(text: str) -> list[str]:
    """The distinct options listed after 'Given list is:' in a KG-RAG MCQ question, in order (a few rows list
    one option twice; a Question refuses repeats, so the first spelling is kept, as the eval loader does)."""
    if "Given list is:" not in text:
        raise ValueError(f"no 'Given list is:' in MCQ text {text[:80]!r}")
    listed = [o.strip() for o in text.split("Given list is:", 1)[1].split(",") if o.strip()]
    first: dict[str, str] = {}
    for option in listed:
        first.setdefault(option_key(option), option)
    return list(first.values())


def joined_to_both(evidence: Sequence[Evidence], option_nodes: Sequence[str], diseases: Sequence[LinkedEntity]) -> bool:
    # a nested ancestor (``within``: "breast carcinoma" inside "triple-negative breast carcinoma") is the parent of
    # a question's disease, not a second one: an option joined to a disease and its parent is not joined to both
    disease_ids = {d.node_id for d in diseases if d.label == "Disease" and d.within is None}
    nodes = set(option_nodes)
    joined = set()
    for ev in evidence:
        if ev.kind != "kg":
            continue
        source, _, target = ev.id.split("|")
        if source in nodes and target in disease_ids:
            joined.add(target)
        elif target in nodes and source in disease_ids:
            joined.add(source)
    return len(joined) >= 2


def context_sufficiency(pipeline: Pipeline, covered: set[int], batch_size: int = 32) -> SufficiencyReport:
    settings = pipeline.settings
    with source_path(settings, MCQ_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    questions = [Question(text=r["text"], options=options_of(r["text"]), task="mcq", id=str(i)) for i, r in enumerate(rows)]
    start = time.perf_counter()
    correct = wrong = 0
    tokens_all, tokens_cov = [], []
    for lo in range(0, len(questions), batch_size):
        qs = questions[lo:lo + batch_size]
        linked = pipeline.retriever.link(qs)
        entities = [x.entities for x in linked]
        option_nodes = [x.option_nodes for x in linked]
        evidence = [r.evidence for r in pipeline.retriever.retrieve([q.text for q in qs], linked)]
        counts = pipeline.generator.count_tokens([render_context(ev) for ev in evidence])
        for k, q in enumerate(qs):
            i = lo + k
            tokens_all.append(counts[k])
            if i not in covered:
                continue
            tokens_cov.append(counts[k])
            gold = rows[i]["correct_node"].strip()
            gold_key = next((o for o in q.options if o.lower() == gold.lower()), gold)
            if joined_to_both(evidence[k], option_nodes[k].get(gold_key, []), entities[k]):
                correct += 1
            if any(joined_to_both(evidence[k], option_nodes[k].get(o, []), entities[k])
                   for o in q.options if o.lower() != gold.lower()):
                wrong += 1
    n_cov = max(1, len(covered))
    return SufficiencyReport(option_edges_first=settings.option_edges_first, rows=len(rows), covered_rows=len(covered),
                             correct_linked_both=correct / n_cov, wrong_linked_both=wrong / n_cov,
                             mean_context_tokens=float(np.mean(tokens_cov)) if tokens_cov else 0.0,
                             mean_context_tokens_all_rows=float(np.mean(tokens_all)) if tokens_all else 0.0,
                             seconds=time.perf_counter() - start)
