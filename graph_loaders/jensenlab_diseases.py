"""JensenLab DISEASES (experiments and knowledge channels, DOID-keyed) -> ASSOCIATES_DaG.

Rows: gene id (Ensembl protein or a name), gene symbol, DOID, disease name, source database
(TIGA, MedlinePlus, UniProtKB-KW, ...), evidence text, confidence score. Genes resolve by
symbol (official or synonym, so renamed symbols find their Entrez gene; the DISEASES symbol is
added as a synonym); an unresolved gene becomes ``ENSEMBL:ENSP...`` (or ``SYMBOL:<symbol>``)
named by its symbol. Evidence: ``diseases_experiments_score`` / ``diseases_knowledge_score``
(the highest of each channel; their scales differ), ``diseases_channels``
(experiments/knowledge), ``diseases_sources`` (e.g. TIGA).
"""

from __future__ import annotations

from graph_loaders.context import LoadContext, disease_node
from graph_loaders.issues import read_table
from kgrag.graph.schema import EdgeRecord, NodeRecord

SOURCE = "DISEASES"
FILES = {
    "kg_sources/jensenlab_diseases/2025_human_disease_experiments_filtered.tsv": "experiments",
    "kg_sources/jensenlab_diseases/2024_human_disease_experiments_filtered.tsv": "experiments",
    "kg_sources/jensenlab_diseases/2024_human_disease_knowledge_filtered.tsv": "knowledge",
}


def load(ctx: LoadContext) -> None:
    for relative, channel in FILES.items():
        path = ctx.path(relative)
        for line_no, fields in read_table(path, ctx.issues, header=False, n_fields=7):
            gene_raw, symbol, doid, name, database, _evidence, score_text = fields
            ctx.row(SOURCE)
            try:
                score = float(score_text)
            except ValueError:
                ctx.issues.report(path, line_no, f"score {score_text!r} not numeric")
                continue
            if not symbol or not name or ":" not in doid:
                ctx.issues.report(path, line_no, f"expected a disease id, name and gene symbol, got {doid!r} {name!r} {symbol!r}")
                continue
            if not doid.startswith("DOID:"):
                ctx.unused(SOURCE, f"disease id {doid.split(':')[0]} is not a DOID")
                continue
            gene = ctx.genes.by_symbol(symbol)
            if gene is None:
                gene = f"ENSEMBL:{gene_raw}" if gene_raw.startswith("ENSP") else f"SYMBOL:{symbol}"
            ctx.node(SOURCE, NodeRecord(id=gene, label="Gene", name=symbol), rank=30)
            disease = ctx.diseases.canonical(doid) or doid
            ctx.node(SOURCE, disease_node(disease, name), rank=30)
            ctx.edge(SOURCE, EdgeRecord(source_id=disease, type="ASSOCIATES_DaG", target_id=gene, sources=[SOURCE],
                                        properties={f"diseases_{channel}_score": score, "diseases_channels": [channel],
                                                    "diseases_sources": [database]}))
