"""Hetionet v1.0 (subset) -> nodes of every kind and its edge types under SPOKE-style names.

- ``hetionet_subset/nodes.tsv`` (``Kind::identifier``, name, kind): nodes; Disease DOIDs and
  Entrez genes merge with the same diseases and genes of other sources. Ids: Disease -> canonical
  DOID, Gene -> ``NCBIGene:``, Compound -> DrugBank id, Symptom -> ``MESH:``, Side Effect ->
  ``SIDER:<UMLS CUI>``, Pharmacologic Class -> ``NDFRT:``, others as given (UBERON, GO, pathways).
- ``hetionet_subset/metaedges.tsv``: ``Source - verb - Target`` with its abbreviation; an edge type
  is ``VERB_<abbreviation>`` (``Gr>G`` -> ``REGULATES_GrG``), which must be in EDGE_TYPES.
- ``hetionet_subset/edges-5k.sif.gz``: edges (at most 5,000 per type in this subset).
- ``hetionet_subset/DaG-association.tsv``: all disease-gene edges, ``hetionet_sources`` evidence.
- ``hetionet_subset/CbG-binding.tsv``: compound-gene binding with ``binding_sources``,
  ``binding_pmids`` (count), ``binding_actions``, ``affinity_nM``.
"""

from __future__ import annotations

from graph_loaders.context import LoadContext
from graph_loaders.issues import read_table
from kgrag.graph.schema import EDGE_TYPES, EdgeRecord, NodeRecord

SOURCE = "Hetionet"
NODES = "kg_sources/hetionet_subset/nodes.tsv"
METAEDGES = "kg_sources/hetionet_subset/metaedges.tsv"
EDGES = "kg_sources/hetionet_subset/edges-5k.sif.gz"
DAG = "kg_sources/hetionet_subset/DaG-association.tsv"
CBG = "kg_sources/hetionet_subset/CbG-binding.tsv"

_ID_PREFIX = {"Symptom": "MESH:", "Side Effect": "SIDER:", "Pharmacologic Class": "NDFRT:"}


def node_id(ctx: LoadContext, kind: str, identifier: str) -> str:
    """Our id for a Hetionet node."""
    if kind == "Disease":
        return ctx.diseases.canonical(identifier) or identifier
    if kind == "Gene":
        return ctx.genes.by_entrez(identifier)
    return _ID_PREFIX.get(kind, "") + identifier


def label_of(kind: str) -> str:
    """``Biological Process`` -> ``BiologicalProcess``."""
    return kind.replace(" ", "")


def _split_ref(ctx: LoadContext, ref: str) -> tuple[str, str] | None:
    kind, sep, identifier = ref.partition("::")
    if not sep or not identifier:
        return None
    return node_id(ctx, kind, identifier), label_of(kind)


def load(ctx: LoadContext) -> None:
    _load_nodes(ctx)
    types = _load_metaedges(ctx)
    _load_edges(ctx, types)
    _load_dag(ctx)
    _load_cbg(ctx)


def _load_nodes(ctx: LoadContext) -> None:
    path = ctx.path(NODES)
    for line_no, (ref, name, kind) in read_table(path, ctx.issues, columns=["id", "name", "kind"]):
        ctx.row(SOURCE)
        split = _split_ref(ctx, ref)
        if split is None or not name or label_of(kind) != split[1]:
            ctx.issues.report(path, line_no, f"expected Kind::identifier matching kind {kind!r} and a name, got {ref!r} {name!r}")
            continue
        ctx.node(SOURCE, NodeRecord(id=split[0], label=split[1], name=name), rank=40)


def _load_metaedges(ctx: LoadContext) -> dict[str, str]:
    path = ctx.path(METAEDGES)
    types: dict[str, str] = {}
    for line_no, (metaedge, abbreviation) in read_table(path, ctx.issues, columns=["metaedge", "abbreviation"]):
        parts = [p.strip() for p in metaedge.replace(">", "-").split(" - ")]
        if len(parts) != 3:
            ctx.issues.report(path, line_no, f"metaedge {metaedge!r} is not 'Source - verb - Target'")
            continue
        name = f"{parts[1].upper()}_{abbreviation.replace('>', '')}"
        if name not in EDGE_TYPES:
            ctx.issues.report(path, line_no, f"edge type {name} (from {metaedge!r}) is not in the schema")
            continue
        types[abbreviation] = name
    return types


def _load_edges(ctx: LoadContext, types: dict[str, str]) -> None:
    path = ctx.path(EDGES)
    for line_no, (source, metaedge, target) in read_table(path, ctx.issues, columns=["source", "metaedge", "target"]):
        ctx.row(SOURCE)
        a, b, edge_type = _split_ref(ctx, source), _split_ref(ctx, target), types.get(metaedge)
        if a is None or b is None or edge_type is None:
            ctx.issues.report(path, line_no, f"cannot map edge {source!r} {metaedge!r} {target!r}")
            continue
        ctx.edge(SOURCE, EdgeRecord(source_id=a[0], type=edge_type, target_id=b[0], sources=[SOURCE]))


def _load_dag(ctx: LoadContext) -> None:
    path = ctx.path(DAG)
    columns = ["doid_id", "entrez_gene_id", "gene_symbol", "sources"]
    for line_no, (doid, entrez, symbol, sources) in read_table(path, ctx.issues, columns=columns):
        ctx.row(SOURCE)
        if not doid.startswith("DOID:") or not entrez.isdigit():
            ctx.issues.report(path, line_no, f"expected DOID and Entrez id, got {doid!r} {entrez!r}")
            continue
        disease, gene = node_id(ctx, "Disease", doid), ctx.genes.by_entrez(entrez)
        if not ctx.graph.has_node(gene):
            ctx.node(SOURCE, NodeRecord(id=gene, label="Gene", name=symbol or gene), rank=40)
        ctx.edge(SOURCE, EdgeRecord(source_id=disease, type="ASSOCIATES_DaG", target_id=gene, sources=[SOURCE],
                                    properties={"hetionet_sources": [s for s in sources.split("|") if s]}))


def _load_cbg(ctx: LoadContext) -> None:
    path = ctx.path(CBG)
    columns = ["drugbank_id", "entrez_gene_id", "sources", "pubmed_ids", "actions", "affinity_nM"]
    for line_no, (drug, entrez, sources, pmids, actions, affinity) in read_table(path, ctx.issues, columns=columns):
        ctx.row(SOURCE)
        if not drug.startswith("DB") or not entrez.isdigit():
            ctx.issues.report(path, line_no, f"expected DrugBank and Entrez ids, got {drug!r} {entrez!r}")
            continue
        props: dict[str, object] = {
            "binding_sources": [s for s in sources.split("|") if s],
            "binding_pmids": len([p for p in pmids.split("|") if p]),
            "binding_actions": [a for a in actions.split("|") if a],
        }
        if affinity:
            try:
                props["affinity_nM"] = float(affinity)
            except ValueError:
                ctx.issues.report(path, line_no, f"affinity_nM {affinity!r} not numeric")
                continue
        gene = ctx.genes.by_entrez(entrez)
        if not ctx.graph.has_node(drug):
            ctx.unused(SOURCE, "compound not among Hetionet's nodes")
            continue
        if not ctx.graph.has_node(gene):
            ctx.unused(SOURCE, "gene not a human Entrez gene")
            continue
        ctx.edge(SOURCE, EdgeRecord(source_id=drug, type="BINDS_CbG", target_id=gene,
                                    sources=[SOURCE], properties=props))
