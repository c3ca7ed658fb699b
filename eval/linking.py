"""Entity-linking accuracy on KG-RAG's entity-retrieval set (questions with the expected node name).

A row is correct when a linked entity's node name equals the expected name (case- and
punctuation-insensitive). Reported twice: ``any`` (the expected node is among the linked entities)
and ``top`` (it is the first linked entity of the preferred label, i.e. what the pipeline seeds with
first). Rows are never dropped: a row with no linked entity counts as wrong and is listed.

Example::

    report = linking_accuracy(settings, store, embedder)
    report.accuracy_any, report.misses[:5]
"""

from __future__ import annotations

import csv
import time

from pydantic import BaseModel

from kgrag.embeddings import Embedder
from kgrag.graph.base import GraphStore
from kgrag.linking import EntityLinker
from kgrag.settings import Settings
from kgrag.sources import source_path
from kgrag.text import normalise

DATASET = "biomixqa/dataset_for_entity_retrieval_accuracy_analysis.csv"


class LinkingMiss(BaseModel):
    row: int
    text: str
    expected: str
    linked: list[str]


class LinkingReport(BaseModel):
    rows: int
    accuracy_any: float
    accuracy_top: float
    by_method: dict[str, int]
    no_entity: int
    seconds: float
    questions_per_second: float
    misses: list[LinkingMiss]


def linking_accuracy(settings: Settings, store: GraphStore, embedder: Embedder | None,
                     linker: EntityLinker | None = None) -> LinkingReport:
    with source_path(settings, DATASET).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for i, row in enumerate(rows):
        if not row.get("text") or not row.get("node_hits"):
            raise ValueError(f"{DATASET} row {i + 2}: needs 'text' and 'node_hits', got {row!r}")
    linker = linker or EntityLinker.from_store(store, embedder, settings)
    start = time.perf_counter()
    linked = linker.link([r["text"] for r in rows])
    seconds = time.perf_counter() - start
    any_hits = top_hits = no_entity = 0
    by_method: dict[str, int] = {}
    misses = []
    for i, (row, ents) in enumerate(zip(rows, linked)):
        expected = normalise(row["node_hits"])
        names = [normalise(e.name) for e in ents]
        if not ents:
            no_entity += 1
        hit = next((e for e in ents if normalise(e.name) == expected), None)
        if hit is not None:
            any_hits += 1
            by_method[hit.method] = by_method.get(hit.method, 0) + 1
        if names and names[0] == expected:
            top_hits += 1
        if hit is None:
            misses.append(LinkingMiss(row=i, text=row["text"], expected=row["node_hits"], linked=[e.name for e in ents]))
    n = len(rows)
    return LinkingReport(rows=n, accuracy_any=any_hits / n, accuracy_top=top_hits / n, by_method=by_method,
                         no_entity=no_entity, seconds=seconds, questions_per_second=n / seconds if seconds else 0.0,
                         misses=misses)
