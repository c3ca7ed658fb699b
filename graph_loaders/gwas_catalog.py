"""GWAS Catalog (2015 dump, DO-mapped tables) -> ASSOCIATES_DaG, Variant nodes, ASSOCIATES_VaP, MAPS_VmG.

- ``gwas_catalog_2015/gene-associations.tsv``: DOID x Entrez gene per locus -> ASSOCIATES_DaG
  with ``gwas_status`` (HC-P, HC-S, LC-P, LC-S: high/low confidence, primary/secondary),
  ``gwas_high_confidence``, and from the locus's lead SNPs in ``snp-associations.tsv`` (same
  disease and locus number) ``gwas_pvalue`` (the smallest) and ``gwas_studies`` (distinct PubMed ids).
- ``gwas_catalog_2015/snp-associations.tsv``: lead SNP per study and disease -> Variant ``rs...``,
  ASSOCIATES_VaP (Variant -> Disease) with ``gwas_pvalue`` (the smallest seen) and
  ``gwas_pmids``; MAPS_VmG (Variant -> Gene) for containing, upstream and downstream genes,
  with ``gwas_relation``.
- ``gwas_catalog_2015/gwas_catalog_v1.0.1-downloaded_2015-06-08.tsv.gz`` (the full dump): each
  association whose mapped trait (EFO, Orphanet, ... URI) resolves to a disease through the
  identity maps (EFO -> MONDO -> DOID), or else whose mapped trait name is the name or synonym
  of exactly one disease, adds the same Variant edges, with ``gwas_traits``; traits
  that are not diseases (hair colour, GO processes) and SNP-SNP interactions are counted as unused.
"""

from __future__ import annotations

import re

from graph_loaders.context import LoadContext, disease_node, gene_node
from graph_loaders.issues import RowIssues, read_table
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.text import normalise

SOURCE = "GWAS Catalog"
GENES = "kg_sources/gwas_catalog_2015/gene-associations.tsv"
SNPS = "kg_sources/gwas_catalog_2015/snp-associations.tsv"
CATALOG = "kg_sources/gwas_catalog_2015/gwas_catalog_v1.0.1-downloaded_2015-06-08.tsv.gz"
_CATALOG_COLUMNS = ["PUBMEDID", "DISEASE/TRAIT", "UPSTREAM_GENE_ID", "DOWNSTREAM_GENE_ID", "SNP_GENE_IDS", "SNPS",
                    "P-VALUE", "MAPPED_TRAIT_URI", "MAPPED_TRAIT"]
_RSID = re.compile(r"^rs\d+$")


def load(ctx: LoadContext) -> None:
    _load_genes(ctx)
    _load_snps(ctx)
    _load_catalog(ctx)


def _trait_id(uri: str) -> str:
    """``http://www.ebi.ac.uk/efo/EFO_0000305`` -> ``EFO:0000305``."""
    return uri.strip().rsplit("/", 1)[-1].replace("_", ":", 1)


def _variant_edges(ctx: LoadContext, path, line_no: int, snp: str, disease: str, pvalue: float,
                   pmid: str, genes: tuple[tuple[str, str], ...], extra: dict | None = None,
                   variant_properties: dict | None = None) -> None:
    """The variant node, its ASSOCIATES_VaP edge to the disease and a MAPS_VmG edge per Entrez gene in ``genes``."""
    ctx.node(SOURCE, NodeRecord(id=snp, label="Variant", name=snp, properties=variant_properties or {}), rank=20)
    props = {"gwas_pvalue": pvalue, "gwas_pmids": [pmid] if pmid else [], **(extra or {})}
    ctx.edge(SOURCE, EdgeRecord(source_id=snp, type="ASSOCIATES_VaP", target_id=disease, sources=[SOURCE], properties=props))
    for relation, text in genes:
        for entrez in filter(None, (t.strip() for t in re.split(r"[,|;]", text))):
            if not entrez.isdigit():
                ctx.issues.report(path, line_no, f"{relation} gene {entrez!r} is not an Entrez id")
                continue
            gene = _gene(ctx, entrez)
            ctx.edge(SOURCE, EdgeRecord(source_id=snp, type="MAPS_VmG", target_id=gene, sources=[SOURCE],
                                        properties={"gwas_relation": [relation]}))


def _load_catalog(ctx: LoadContext) -> None:
    path = ctx.path(CATALOG)
    by_name = ctx.graph.name_index("Disease")
    for line_no, fields in read_table(path, ctx.issues, columns=_CATALOG_COLUMNS):
        pmid, trait, upstream, downstream, containing, snps_text, pvalue_text, uris, mapped = fields
        ctx.row(SOURCE)
        if " x " in snps_text:
            ctx.unused(SOURCE, "SNP-SNP interaction")
            continue
        snps = [s for s in re.split(r"[;,\s]+", snps_text) if s]
        try:
            pvalue = float(pvalue_text)
        except ValueError:
            ctx.issues.report(path, line_no, f"P-VALUE {pvalue_text!r} not numeric")
            continue
        if not snps or not all(_RSID.match(s) for s in snps):
            ctx.unused(SOURCE, "SNPS not rsIDs")
            continue
        diseases = {d for d in (ctx.diseases.canonical(_trait_id(u)) for u in uris.split(",") if u.strip())
                    if d and ctx.graph.has_node(d)}
        if not diseases:
            diseases = {d for d in (by_name.get(normalise(t)) for t in mapped.split(",")) if d}
        if not diseases:
            ctx.unused(SOURCE, "trait not mapped to a disease")
            continue
        genes = (("containing", containing), ("upstream", upstream), ("downstream", downstream))
        for snp in snps:
            for disease in diseases:
                _variant_edges(ctx, path, line_no, snp, disease, pvalue, pmid, genes, {"gwas_traits": [trait]})


def _gene(ctx: LoadContext, entrez: str, symbol: str = "") -> str:
    gene = ctx.genes.by_entrez(entrez)
    if not ctx.graph.has_node(gene):
        ctx.node(SOURCE, gene_node(gene, symbol or ctx.genes.symbols.get(gene, gene)), rank=20)
    return gene


def _locus_evidence(ctx: LoadContext) -> dict[tuple[str, str], tuple[float, set[str]]]:
    """(DOID, locus) -> (smallest p-value, PubMed ids) over the locus's lead SNPs; rows that are not
    usable are skipped here (``_load_snps`` reports them)."""
    path = ctx.path(SNPS)
    columns = ["doid_code", "pubmed_id", "mlog_pvalue", "locus"]
    evidence: dict[tuple[str, str], tuple[float, set[str]]] = {}
    for _, (doid, pmid, mlog, locus) in read_table(path, RowIssues(), columns=columns):
        try:
            pvalue = 10 ** -float(mlog)
        except ValueError:
            continue
        if not 0.0 <= pvalue <= 1.0 or not locus:
            continue
        best, pmids = evidence.get((doid, locus), (1.0, set()))
        evidence[(doid, locus)] = (min(best, pvalue), pmids | ({pmid} if pmid else set()))
    return evidence


def _load_genes(ctx: LoadContext) -> None:
    loci = _locus_evidence(ctx)
    path = ctx.path(GENES)
    columns = ["doid_code", "doid_name", "locus", "high_confidence", "status", "gene", "symbol"]
    for line_no, (doid, name, locus, high, status, entrez, symbol) in read_table(path, ctx.issues, columns=columns):
        ctx.row(SOURCE)
        if not doid.startswith("DOID:") or not name or not entrez.isdigit() or high not in ("0", "1"):
            ctx.issues.report(path, line_no, f"expected DOID, Entrez id and 0/1, got {doid!r} {entrez!r} {high!r}")
            continue
        disease = ctx.diseases.canonical(doid) or doid
        ctx.node(SOURCE, disease_node(disease, name), rank=20)
        gene = _gene(ctx, entrez, symbol)
        props: dict[str, object] = {"gwas_status": [status], "gwas_high_confidence": int(high)}
        if (doid, locus) in loci:
            pvalue, pmids = loci[(doid, locus)]
            props.update(gwas_pvalue=pvalue, gwas_studies=len(pmids))
        ctx.edge(SOURCE, EdgeRecord(source_id=disease, type="ASSOCIATES_DaG", target_id=gene, sources=[SOURCE],
                                    properties=props))


def _load_snps(ctx: LoadContext) -> None:
    path = ctx.path(SNPS)
    columns = ["doid_code", "doid_name", "pubmed_id", "lead_snp", "mlog_pvalue", "containing_genes",
               "upstream_gene", "downstream_gene", "lead_chrom"]
    for line_no, fields in read_table(path, ctx.issues, columns=columns):
        doid, name, pmid, snp, mlog, containing, upstream, downstream, chrom = fields
        ctx.row(SOURCE)
        try:
            pvalue = 10 ** -float(mlog)
        except ValueError:
            ctx.issues.report(path, line_no, f"mlog_pvalue {mlog!r} not numeric")
            continue
        if not doid.startswith("DOID:") or not name or not _RSID.match(snp):
            ctx.issues.report(path, line_no, f"expected DOID and rsID, got {doid!r} {snp!r}")
            continue
        disease = ctx.diseases.canonical(doid) or doid
        ctx.node(SOURCE, disease_node(disease, name), rank=20)
        genes = (("containing", containing), ("upstream", upstream), ("downstream", downstream))
        _variant_edges(ctx, path, line_no, snp, disease, pvalue, pmid, genes, variant_properties={"chromosome": chrom})
