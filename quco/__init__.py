"""Corpus statistics (Infini-gram) and QuCo-RAG's uncertainty gate.

Example::

    from quco import Gate, entity_pairs, open_corpus_stats
    gate = Gate(open_corpus_stats(settings), settings)
    [decision] = gate.check_questions([["metformin", "Takayasu arteritis"]])        # stage 1
    [check] = gate.check_sentences([entity_pairs(["metformin", "multiple sclerosis"])])  # stage 2
    check.decision.retrieve, check.flagged_pairs
"""

from quco.gate import Gate, SentenceCheck, entity_pairs, failed_decision, stage1, stage2
from quco.index_builder import IndexBuildError, StatsIndexManifest, build_index, jsonl_texts, project_corpus
from quco.stats import (
    CorpusStats,
    HttpInfiniGramStats,
    LocalInfiniGramStats,
    StatsError,
    StatsQueryError,
    open_corpus_stats,
)

__all__ = [
    "CorpusStats", "Gate", "HttpInfiniGramStats", "IndexBuildError", "LocalInfiniGramStats",
    "SentenceCheck", "StatsError", "StatsIndexManifest", "StatsQueryError", "build_index", "entity_pairs", "failed_decision",
    "jsonl_texts", "open_corpus_stats", "project_corpus", "stage1", "stage2",
]
