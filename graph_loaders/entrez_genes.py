"""NCBI Entrez genes (``genes_entrez_2016/Homo_sapiens.gene_info.gz``): Gene nodes and the gene identity map.

Each human gene becomes ``NCBIGene:<GeneID>`` named by its symbol, with the Synonyms column and
the nomenclature-authority symbol as synonyms, and HGNC/Ensembl/OMIM ids from ``dbXrefs``. The
same rows fill :class:`~graph_loaders.identity.GeneIdentity`, so later sources keyed by HGNC id,
symbol or an old/new symbol resolve to the same node.
"""

from __future__ import annotations

from graph_loaders.context import LoadContext
from graph_loaders.issues import read_table
from kgrag.graph.schema import NodeRecord

SOURCE = "Entrez Gene"
GENE_INFO = "kg_sources/genes_entrez_2016/Homo_sapiens.gene_info.gz"
# gene_info's header is a space-separated ``#Format:`` comment, so columns are taken by position.
_N_FIELDS = 15
_POSITIONS = (1, 2, 4, 5, 8, 9, 10)  # GeneID Symbol Synonyms dbXrefs description type_of_gene authority symbol


def _xrefs(db_xrefs: str) -> list[str]:
    """``MIM:138670|HGNC:HGNC:5|Ensembl:ENSG...`` -> ``['OMIM:138670', 'HGNC:5', 'ENSEMBL:ENSG...']``."""
    out = []
    for item in db_xrefs.split("|"):
        if item in ("", "-"):
            continue
        prefix, _, local = item.partition(":")
        if prefix == "HGNC" and local.startswith("HGNC:"):
            local = local[5:]
        prefix = {"MIM": "OMIM"}.get(prefix, prefix.upper())
        out.append(f"{prefix}:{local}")
    return out


def load(ctx: LoadContext) -> None:
    path = ctx.path(GENE_INFO)
    for line_no, row in read_table(path, ctx.issues, header=False, comment="#", n_fields=_N_FIELDS):
        gene_id_text, symbol, synonyms_text, db_xrefs, description, gene_type, authority = (row[i] for i in _POSITIONS)
        ctx.row(SOURCE)
        if not gene_id_text.isdigit() or not symbol or symbol == "-":
            ctx.issues.report(path, line_no, f"GeneID {gene_id_text!r} / Symbol {symbol!r} not usable")
            continue
        synonyms = [s for s in synonyms_text.split("|") if s and s != "-"]
        if authority and authority not in ("-", symbol):
            synonyms.append(authority)
        xrefs = _xrefs(db_xrefs)
        gene_id = ctx.genes.add_gene(gene_id_text, symbol, synonyms, xrefs)
        ctx.node(SOURCE, NodeRecord(id=gene_id, label="Gene", name=symbol, synonyms=synonyms, xrefs=xrefs,
                                    properties={"description": description, "gene_type": gene_type}), rank=0)

