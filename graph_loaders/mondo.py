"""MONDO: identity bridges (exact matches to DOID, UMLS, OMIM, MeSH, Orphanet, EFO), names, is-a and gene edges.

Read, in order:

- ``mondo/mondo_exactmatch_*.sssom.tsv``: MONDO -> DOID (canonical) and MONDO -> other vocabularies;
- ``mondo/2023-08_xrefs.tsv``: MONDO's own cross-references (DOID ones also bridge identity);
- ``mondo/2023-08_obsoletes.tsv``: obsolete MONDO terms, left out;
- ``mondo/2023-08_superclass-count.tsv``: labels; each MONDO term becomes a Disease node (its
  DOID when it has one, else its MONDO id), the MONDO label a synonym of the DO name;
- ``mondo/2023-08_edges.tsv``: ``rdfs:subClassOf`` between MONDO terms -> ISA_DiD;
  ``RO:0004003`` (has material basis in germline mutation in) to an HGNC gene -> ASSOCIATES_DaG.
  Other predicates (phenotypes, anatomy, GO, ...) are counted as unused.
"""

from __future__ import annotations

from graph_loaders.context import LoadContext, disease_node
from graph_loaders.identity import normalise_xref
from graph_loaders.issues import read_table
from kgrag.graph.schema import EdgeRecord

SOURCE = "MONDO"
SSSOM = {
    prefix: f"kg_sources/mondo/mondo_exactmatch_{prefix}.sssom.tsv"
    for prefix in ("doid", "umls", "omim", "mesh", "orphanet", "efo")
}
XREFS = "kg_sources/mondo/2023-08_xrefs.tsv"
OBSOLETES = "kg_sources/mondo/2023-08_obsoletes.tsv"
LABELS = "kg_sources/mondo/2023-08_superclass-count.tsv"
EDGES = "kg_sources/mondo/2023-08_edges.tsv"
_GERMLINE = "RO:0004003"
_HGNC_URL = "http://identifiers.org/hgnc/"


def load(ctx: LoadContext) -> None:
    labels: dict[str, str] = {}
    _load_mappings(ctx, labels)
    obsolete = _load_obsoletes(ctx)
    _load_labels(ctx, labels, obsolete)
    _load_edges(ctx, obsolete)


def _load_mappings(ctx: LoadContext, labels: dict[str, str]) -> None:
    # DOID matches first, so every later xref of a MONDO term resolves through its DOID.
    for prefix in ("doid", "umls", "omim", "mesh", "orphanet", "efo"):
        path = ctx.path(SSSOM[prefix])
        rows = read_table(path, ctx.issues, columns=["subject_id", "subject_label", "predicate_id", "object_id"], comment="#")
        for line_no, (mondo, label, predicate, obj) in rows:
            ctx.row(SOURCE)
            target = normalise_xref(obj)
            if not mondo.startswith("MONDO:") or target is None:
                ctx.issues.report(path, line_no, f"expected MONDO:... and PREFIX:..., got {mondo!r} {obj!r}")
                continue
            if predicate != "skos:exactMatch":
                ctx.unused(SOURCE, f"mapping predicate {predicate}")
                continue
            labels.setdefault(mondo, label)
            if target.startswith("DOID:"):
                ctx.diseases.add_mondo(mondo, target)
            else:
                ctx.diseases.add_mondo(mondo, None)
                ctx.diseases.add_xref(target, mondo)
    path = ctx.path(XREFS)
    for line_no, (mondo, xref) in read_table(path, ctx.issues, columns=["cls", "xref"], quoted=True):
        ctx.row(SOURCE)
        target = normalise_xref(xref)
        if not mondo.startswith("MONDO:"):
            ctx.unused(SOURCE, "xref of a term outside MONDO")
            continue
        if target is None:
            ctx.issues.report(path, line_no, f"expected MONDO:... and PREFIX:..., got {mondo!r} {xref!r}")
            continue
        if target.startswith("DOID:"):
            ctx.diseases.add_mondo(mondo, target)
        else:
            ctx.diseases.add_mondo(mondo, None)
            ctx.diseases.add_xref(target, mondo)


def _load_obsoletes(ctx: LoadContext) -> set[str]:
    path = ctx.path(OBSOLETES)
    obsolete: set[str] = set()
    for _, row in read_table(path, ctx.issues, header=True, n_fields=None, columns=None, ragged=True):
        if row and row[0].startswith("MONDO:"):
            obsolete.add(row[0])
    return obsolete


def _load_labels(ctx: LoadContext, labels: dict[str, str], obsolete: set[str]) -> None:
    path = ctx.path(LABELS)
    for line_no, (cls, label) in read_table(path, ctx.issues, columns=["cls", "clsLabel"], quoted=True):
        if cls.startswith("MONDO:") and label:
            labels[cls] = label
    for mondo, label in labels.items():
        ctx.row(SOURCE)
        if mondo in obsolete:
            ctx.unused(SOURCE, "obsolete MONDO term")
            continue
        canonical = ctx.diseases.canonical(mondo)
        if canonical is None:
            ctx.diseases.add_mondo(mondo, None)
            canonical = mondo
        ctx.node(SOURCE, disease_node(canonical, label, xrefs=[mondo]), rank=5)


def _load_edges(ctx: LoadContext, obsolete: set[str]) -> None:
    path = ctx.path(EDGES)
    for line_no, (x, predicate, y) in read_table(path, ctx.issues, columns=["x", "p", "y"]):
        ctx.row(SOURCE)
        if not x.startswith("MONDO:"):
            ctx.unused(SOURCE, "subject not a MONDO term")
            continue
        if x in obsolete or y in obsolete:
            ctx.unused(SOURCE, "obsolete MONDO term")
            continue
        child = ctx.diseases.canonical(x)
        if predicate == "rdfs:subClassOf" and y.startswith("MONDO:"):
            parent = ctx.diseases.canonical(y)
            if child is None or parent is None:
                ctx.unused(SOURCE, "is-a term without a label")
            elif child == parent:
                ctx.unused(SOURCE, "is-a between terms merged into one disease")
            else:
                ctx.edge(SOURCE, EdgeRecord(source_id=child, type="ISA_DiD", target_id=parent, sources=[SOURCE]))
        elif predicate == _GERMLINE and y.startswith(_HGNC_URL):
            gene = ctx.genes.by_xref(f"HGNC:{y[len(_HGNC_URL):]}")
            if child is None or gene is None:
                ctx.unused(SOURCE, "disease or HGNC gene not mapped")
                continue
            ctx.edge(SOURCE, EdgeRecord(source_id=child, type="ASSOCIATES_DaG", target_id=gene, sources=[SOURCE],
                                        properties={"mondo_relation": "has material basis in germline mutation in"}))
        else:
            ctx.unused(SOURCE, f"predicate {predicate} not mapped")
