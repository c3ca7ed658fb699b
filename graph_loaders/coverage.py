"""Which benchmark rows can the built graph decide? (KG-RAG / BiomixQA true/false and MCQ sets)

True/false: each statement is parsed by generic patterns (no row is special-cased):

- ``doid``: "Disease ontology identifier for <disease> is DOID:<n>" -> decidable when the disease
  name resolves to a Disease node whose id is a DOID (true iff the ids are equal);
- ``disease_gene`` / ``disease_variant``: "<disease> associates Gene <g>" or "<disease> is not
  associated with Gene <g>" (Variant likewise) -> an edge joins the two;
- ``treats``: "<compound> treats <disease>" (or "does not treat") -> a TREATS_CtD edge;
- ``isa``: "<disease> is a <disease>" or "is not a" -> an ISA_DiD edge.

MCQ: covered when the correct option (``correct_node``) is joined by an edge to both
``disease_1`` and ``disease_2``. Names are linked with the store's ``find_by_name`` on
normalised names (one call per label; a name that finds nothing is tried once more without a
trailing parenthetical qualifier such as "(disorder)", again one call per label); edges come from
one ``edges_between`` call for the whole dataset.

Example::

    report = coverage(settings, store, "biomixqa-tf")
    report.rate, report.patterns["isa"].covered
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from kgrag.graph.base import GraphStore
from kgrag.settings import Settings
from kgrag.sources import source_path
from kgrag.text import normalise

DATASETS = {
    "biomixqa-tf": "biomixqa/true_false_questions.csv",
    "biomixqa-mcq": "biomixqa/mcq_questions.csv",
}

# (pattern name, regex, head label, tail label, edge types that decide it; None = node id check)
TF_PATTERNS: list[tuple[str, re.Pattern[str], str, str, tuple[str, ...] | None]] = [
    ("doid", re.compile(r"^disease ontology identifier for (?P<head>.+?) is (?P<tail>doid:\s*\d+)\.?$", re.I),
     "Disease", "Disease", None),
    ("disease_gene", re.compile(r"^(?P<head>.+?) (?:is not associated with|is associated with|associates) gene (?P<tail>\S+?)\.?$", re.I),
     "Disease", "Gene", ("ASSOCIATES_DaG",)),
    ("disease_variant", re.compile(r"^(?P<head>.+?) (?:is not associated with|is associated with|associates) variant (?P<tail>rs\d+)\.?$", re.I),
     "Disease", "Variant", ("ASSOCIATES_VaP",)),
    ("disease_variant", re.compile(r"^(?P<tail>rs\d+) (?:is not associated with|is associated with|associates)(?: disease)? (?P<head>.+?)\.?$", re.I),
     "Disease", "Variant", ("ASSOCIATES_VaP",)),
    ("treats", re.compile(r"^(?P<tail>.+?) (?:does not treat|treats) (?P<head>.+?)\.?$", re.I),
     "Disease", "Compound", ("TREATS_CtD",)),
    ("isa", re.compile(r"^(?P<head>.+?) is not an? (?P<tail>.+?)\.?$", re.I), "Disease", "Disease", ("ISA_DiD",)),
    ("isa", re.compile(r"^(?P<head>.+?) is an? (?P<tail>.+?)\.?$", re.I), "Disease", "Disease", ("ISA_DiD",)),
]
_MCQ_KIND = re.compile(r"which (?P<kind>\w+) is associated with", re.I)
_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$")


class PatternCoverage(BaseModel):
    rows: int = 0
    covered: int = 0
    rate: float = 0.0


class CoverageReport(BaseModel):
    """How many rows of a benchmark the graph can decide, by pattern, and which it cannot."""

    dataset: str
    graph_uri: str
    rows: int
    covered: int
    rate: float
    patterns: dict[str, PatternCoverage]
    uncovered: list[int]
    unparsed: list[int]


@dataclass
class _Claim:
    """What one row needs: ``head`` (a disease) joined to each of ``tails`` by one of ``edge_types``."""

    pattern: str
    head: str
    head_label: str
    tails: list[tuple[str, str]]  # (name, label)
    edge_types: tuple[str, ...] | None


def parse_statement(text: str) -> _Claim | None:
    """A true/false statement as a claim, or None when no pattern matches."""
    cleaned = " ".join(text.split())
    for name, regex, head_label, tail_label, edge_types in TF_PATTERNS:
        match = regex.match(cleaned)
        if match:
            return _Claim(name, match["head"], head_label, [(match["tail"], tail_label)], edge_types)
    return None


def parse_mcq(row: dict[str, str]) -> _Claim | None:
    """An MCQ row as a claim: the correct option joined to both diseases (any edge type)."""
    answer, d1, d2 = (row.get(k, "").strip() for k in ("correct_node", "disease_1", "disease_2"))
    if not (answer and d1 and d2):
        return None
    match = _MCQ_KIND.search(row.get("text", ""))
    label = match["kind"].capitalize() if match else ""
    # the answer is the head (one node), each disease a tail
    return _Claim(f"mcq_{label.lower() or 'any'}", answer, label, [(d1, "Disease"), (d2, "Disease")], None)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def coverage(settings: Settings, store: GraphStore, dataset: str) -> CoverageReport:
    """Coverage of ``dataset`` (a key of DATASETS) by the graph in ``store``."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    rows = read_rows(source_path(settings, DATASETS[dataset]))
    parse = (lambda r: parse_statement(r.get("text", ""))) if dataset.endswith("-tf") else parse_mcq
    claims = [parse(r) for r in rows]
    return score_claims(dataset, settings.graph_uri, store, claims)


def score_claims(dataset: str, graph_uri: str, store: GraphStore, claims: list[_Claim | None]) -> CoverageReport:
    """Resolve every name (one find_by_name per label), fetch edges once, and decide each claim."""
    wanted: dict[str, set[str]] = {}
    for claim in claims:
        if claim is None:
            continue
        wanted.setdefault(claim.head_label, set()).add(normalise(claim.head))
        for name, label in claim.tails:
            wanted.setdefault(label, set()).add(normalise(name))
    ids: dict[tuple[str, str], list[str]] = {}
    for label, keys in wanted.items():
        found = store.find_by_name(sorted(keys), labels=[label] if label else None)
        for key, nodes in found.items():
            ids[(label, key)] = [n.id for n in nodes]
        retry = {key: normalise(_QUALIFIER.sub("", key_name)) for key, key_name in _originals(claims, label).items()
                 if not ids.get((label, key)) and _QUALIFIER.search(key_name)}
        if retry:
            again = store.find_by_name(sorted(set(retry.values())), labels=[label] if label else None)
            for key, stripped in retry.items():
                ids[(label, key)] = [n.id for n in again.get(stripped, [])]
    all_ids = sorted({i for found in ids.values() for i in found})
    pairs: set[tuple[str, str, str]] = set()
    for edge in store.edges_between(all_ids, all_ids) if all_ids else []:
        pairs.add((edge.source.id, edge.target.id, edge.type))
        pairs.add((edge.target.id, edge.source.id, edge.type))
    linked = {(a, b) for a, b, _ in pairs}

    patterns: dict[str, PatternCoverage] = {}
    uncovered: list[int] = []
    unparsed: list[int] = []
    for index, claim in enumerate(claims):
        if claim is None:
            unparsed.append(index)
            uncovered.append(index)
            patterns.setdefault("unparsed", PatternCoverage()).rows += 1
            continue
        stats = patterns.setdefault(claim.pattern, PatternCoverage())
        stats.rows += 1
        heads = ids.get((claim.head_label, normalise(claim.head)), [])
        if claim.pattern == "doid":
            ok = any(h.startswith("DOID:") for h in heads)
        else:
            ok = bool(heads) and all(
                any(_joined(h, t, claim.edge_types, pairs, linked)
                    for h in heads for t in ids.get((label, normalise(name)), []))
                for name, label in claim.tails
            )
        if ok:
            stats.covered += 1
        else:
            uncovered.append(index)
    for stats in patterns.values():
        stats.rate = round(stats.covered / stats.rows, 4) if stats.rows else 0.0
    covered = len(claims) - len(uncovered)
    return CoverageReport(
        dataset=dataset,
        graph_uri=graph_uri,
        rows=len(claims),
        covered=covered,
        rate=round(covered / len(claims), 4) if claims else 0.0,
        patterns=patterns,
        uncovered=uncovered,
        unparsed=unparsed,
    )


def _originals(claims: list[_Claim | None], label: str) -> dict[str, str]:
    """Normalised key -> the name as written, for every name of ``label`` in the claims."""
    names: dict[str, str] = {}
    for claim in claims:
        if claim is None:
            continue
        for name, lab in [(claim.head, claim.head_label), *claim.tails]:
            if lab == label:
                names.setdefault(normalise(name), name)
    return names


def _joined(a: str, b: str, edge_types: tuple[str, ...] | None, pairs: set[tuple[str, str, str]],
            linked: set[tuple[str, str]]) -> bool:
    if edge_types is None:
        return (a, b) in linked
    return any((a, b, t) in pairs for t in edge_types)
