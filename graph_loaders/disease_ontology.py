"""Disease Ontology: Disease nodes (named by DO, as SPOKE names them), synonyms, xrefs, ISA_DiD edges.

Read, in order:

- ``disease_ontology_current/HumanDO.tsv`` (id, label, parent label): the current names (rank 0)
  and is-a edges, the parent resolved by its label;
- ``disease_ontology_2015/HumanDO.obo``: older names, exact synonyms, alt_ids, xrefs, is_a;
- ``disease_ontology_current/allXREFinDO.tsv``: xrefs to UMLS, OMIM, MeSH, Orphanet, ... which
  make DOID the canonical id of every disease they name;
- ``disgenet_2015/unmapped-umls.tsv``: extra DOID <-> UMLS bridges curated for DisGeNET;
- ``biomixqa/disease_name_with_id.csv`` (optional, see :func:`load_benchmark_names`): SPOKE's
  disease names with DOIDs, published with the KG-RAG benchmark, added as names/synonyms.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from graph_loaders.context import LoadContext, disease_node
from graph_loaders.identity import normalise_xref
from graph_loaders.issues import RowIssues, open_text, read_table
from kgrag.errors import SourceFileError
from kgrag.graph.schema import EdgeRecord

SOURCE = "Disease Ontology"
HUMANDO_TSV = "kg_sources/disease_ontology_current/HumanDO.tsv"
HUMANDO_OBO = "kg_sources/disease_ontology_2015/HumanDO.obo"
ALL_XREFS = "kg_sources/disease_ontology_current/allXREFinDO.tsv"
UNMAPPED_UMLS = "kg_sources/disgenet_2015/unmapped-umls.tsv"
BENCHMARK_NAMES = "biomixqa/disease_name_with_id.csv"
BENCHMARK_SOURCE = "KG-RAG disease names"


def _isa(child: str, parent: str) -> EdgeRecord:
    return EdgeRecord(source_id=child, type="ISA_DiD", target_id=parent, sources=[SOURCE])


def iter_obo_terms(path: Path, issues: RowIssues) -> Iterator[tuple[int, dict[str, list[str]]]]:
    """Yield ``(line_no, tags)`` for each ``[Term]`` stanza of an OBO file (tag -> list of values)."""
    term: dict[str, list[str]] | None = None
    start = 0
    with open_text(path) as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = raw.strip()
            if line.startswith("["):
                if term is not None:
                    yield start, term
                term = {} if line == "[Term]" else None
                start = line_no
                continue
            if term is None or not line or line.startswith("!"):
                continue
            tag, sep, value = line.partition(": ")
            if not sep:
                issues.report(path, line_no, f"OBO line without 'tag: value': {line[:60]!r}")
                continue
            term.setdefault(tag, []).append(value)
    if term is not None:
        yield start, term


def _obo_synonym(value: str) -> tuple[str, str] | None:
    """``"hemangiosarcoma" EXACT []`` -> ("hemangiosarcoma", "EXACT")."""
    if not value.startswith('"'):
        return None
    end = value.find('"', 1)
    if end < 0:
        return None
    scope = value[end + 1:].strip().split(" ")[0]
    return value[1:end], scope


def load(ctx: LoadContext) -> None:
    _load_current(ctx)
    _load_obo(ctx)
    _load_xrefs(ctx)
    _load_unmapped_umls(ctx)


def _load_current(ctx: LoadContext) -> None:
    path = ctx.path(HUMANDO_TSV)
    rows = list(read_table(path, ctx.issues, columns=["id", "label", "subClassOf"], quoted=True))
    by_label = {label: doid for _, (doid, label, _) in rows}
    for line_no, (doid, label, parent) in rows:
        ctx.row(SOURCE)
        if not doid.startswith("DOID:") or not label:
            ctx.issues.report(path, line_no, f"not a DOID term: {doid!r} {label!r}")
            continue
        ctx.diseases.add_doid(doid)
        ctx.node(SOURCE, disease_node(doid, label), rank=0)
        if parent:
            parent_id = by_label.get(parent)
            if parent_id is None:
                ctx.unused(SOURCE, "parent label not a term of HumanDO.tsv")
            elif parent_id != doid:
                ctx.edge(SOURCE, _isa(doid, parent_id))


def _load_obo(ctx: LoadContext) -> None:
    path = ctx.path(HUMANDO_OBO)
    for line_no, tags in iter_obo_terms(path, ctx.issues):
        ctx.row(SOURCE)
        ids, names = tags.get("id", []), tags.get("name", [])
        if len(ids) != 1 or not ids[0].startswith("DOID:") or len(names) != 1:
            ctx.issues.report(path, line_no, f"[Term] needs one DOID id and one name, found id={ids} name={names}")
            continue
        doid, name = ids[0], names[0]
        if tags.get("is_obsolete", ["false"])[0] == "true":
            ctx.unused(SOURCE, "obsolete term")
            continue
        ctx.diseases.add_doid(doid)
        for alt in tags.get("alt_id", []):
            ctx.diseases.add_alt(alt, doid)
        synonyms = [s for s, scope in filter(None, map(_obo_synonym, tags.get("synonym", []))) if scope == "EXACT"]
        xrefs = [x for x in (normalise_xref(v.split(" ")[0]) for v in tags.get("xref", [])) if x]
        for xref in xrefs:
            ctx.diseases.add_xref(xref, doid)
        ctx.node(SOURCE, disease_node(doid, name, synonyms=synonyms, xrefs=xrefs), rank=1)
        for value in tags.get("is_a", []):
            parent = value.split(" ")[0]
            if parent.startswith("DOID:") and parent != doid:
                ctx.edge(SOURCE, _isa(doid, parent))


def _load_xrefs(ctx: LoadContext) -> None:
    path = ctx.path(ALL_XREFS)
    for line_no, (doid, label, xref) in read_table(path, ctx.issues, columns=["id", "label", "xref"], quoted=True):
        ctx.row(SOURCE)
        key = normalise_xref(xref)
        if not doid.startswith("DOID:") or key is None:
            ctx.issues.report(path, line_no, f"expected DOID and PREFIX:id, got {doid!r} {xref!r}")
            continue
        ctx.diseases.add_xref(key, doid)
        ctx.node(SOURCE, disease_node(doid, label, xrefs=[key]), rank=0)


def _load_unmapped_umls(ctx: LoadContext) -> None:
    path = ctx.path(UNMAPPED_UMLS)
    for line_no, (doid, name, umls) in read_table(path, ctx.issues, columns=["doid_code", "doid_name", "diseaseId"]):
        ctx.row(SOURCE)
        key = normalise_xref(umls)
        if not doid.startswith("DOID:") or key is None:
            ctx.issues.report(path, line_no, f"expected DOID and umls:C..., got {doid!r} {umls!r}")
            continue
        ctx.diseases.add_xref(key, doid)


def load_benchmark_names(ctx: LoadContext) -> None:
    """SPOKE disease names (``disease_name,disease_id``) published with KG-RAG: names and synonyms of DOIDs.

    Optional: without the file (no mirror holding ``biomixqa/``) the build goes on and counts it as unused.
    """
    try:
        path = ctx.path(BENCHMARK_NAMES)
    except SourceFileError:
        ctx.unused(BENCHMARK_SOURCE, "file not available")
        return
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["disease_name", "disease_id"]:
            ctx.issues.report(path, 1, f"expected header disease_name,disease_id, found {header}")
            return
        for line_no, row in enumerate(reader, start=2):
            ctx.row(BENCHMARK_SOURCE)
            if len(row) != 2 or not row[0].strip():
                ctx.issues.report(path, line_no, f"expected a name and a DOID, found {row}")
                continue
            if not row[1].startswith("DOID:"):
                ctx.unused(BENCHMARK_SOURCE, "name without a DOID")
                continue
            doid = ctx.diseases.canonical(row[1]) or row[1]
            ctx.node(BENCHMARK_SOURCE, disease_node(doid, row[0].strip()), rank=2)
