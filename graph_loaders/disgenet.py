"""DisGeNET v3.0 curated gene-disease associations (2015) -> ASSOCIATES_DaG.

Diseases are UMLS CUIs, mapped to the canonical disease (DOID/MONDO) through the identity maps;
an unmapped CUI becomes its own Disease node ``UMLS:C...`` named as DisGeNET names it. DisGeNET's
disease name is kept as a synonym of the canonical node (the KG-RAG statements use these names).
Genes are Entrez ids. Evidence: ``disgenet_score``, ``disgenet_pmids`` (number of PubMed
articles), ``disgenet_association_types`` and ``disgenet_sources``.
"""

from __future__ import annotations

from graph_loaders.context import LoadContext, disease_node, gene_node
from graph_loaders.identity import normalise_xref
from kgrag.graph.schema import EdgeRecord
from graph_loaders.issues import read_table

SOURCE = "DisGeNET"
CURATED = "kg_sources/disgenet_2015/curated_gene_disease_associations.txt.gz"
_COLUMNS = ["geneId", "geneSymbol", "diseaseId", "diseaseName", "score", "NumberOfPubmeds", "associationType", "source"]


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def load(ctx: LoadContext) -> None:
    path = ctx.path(CURATED)
    for line_no, fields in read_table(path, ctx.issues, columns=_COLUMNS):
        entrez, symbol, disease_raw, disease_name, score_text, pmids_text, assoc_types, sources = fields
        ctx.row(SOURCE)
        umls = normalise_xref(disease_raw)
        try:
            score = float(score_text)
            pmids = int(pmids_text)
        except ValueError:
            ctx.issues.report(path, line_no, f"score {score_text!r} / NumberOfPubmeds {pmids_text!r} not numeric")
            continue
        if umls is None or not entrez.isdigit() or not disease_name:
            ctx.issues.report(path, line_no, f"geneId {entrez!r} / diseaseId {disease_raw!r} not usable")
            continue
        disease = ctx.diseases.canonical(umls) or umls
        gene = ctx.genes.by_entrez(entrez)
        ctx.node(SOURCE, disease_node(disease, disease_name, xrefs=[umls]), rank=10)
        ctx.node(SOURCE, gene_node(gene, symbol or gene), rank=10)
        ctx.edge(SOURCE, EdgeRecord(
            source_id=disease, type="ASSOCIATES_DaG", target_id=gene, sources=[SOURCE],
            properties={"disgenet_score": score, "disgenet_pmids": pmids,
                        "disgenet_association_types": _split(assoc_types), "disgenet_sources": _split(sources)}))
