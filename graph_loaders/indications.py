"""Drug indications -> TREATS_CtD and PALLIATES_CpD.

- ``indications_pharmacotherapydb/catalog_indications.tsv`` (PharmacotherapyDB, DOID x DrugBank):
  category DM (disease modifying) -> TREATS_CtD, SYM (symptomatic) -> PALLIATES_CpD, NOT (not an
  indication) counted as unused; evidence ``pharmacotherapydb_curators``.
- ``indications_pharmacotherapydb/labeledin_data_indications.tsv`` (LabeledIn, UMLS x RxNorm):
  TREATS_CtD with ``labeledin_labels``.
- ``indications_pharmacotherapydb/ehrlink_data_indications.tsv`` (EHRLink, DOID x RxNorm
  ingredient): TREATS_CtD with ``ehrlink_link_ratio``.

RxNorm drugs are matched to DrugBank compounds (Hetionet, PharmacotherapyDB) by normalised name;
an unmatched drug becomes a Compound ``RXNORM:<id>``.
"""

from __future__ import annotations

from graph_loaders.context import LoadContext, disease_node
from graph_loaders.identity import normalise_xref
from graph_loaders.issues import read_table
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.text import normalise

CATALOG = "kg_sources/indications_pharmacotherapydb/catalog_indications.tsv"
LABELEDIN = "kg_sources/indications_pharmacotherapydb/labeledin_data_indications.tsv"
EHRLINK = "kg_sources/indications_pharmacotherapydb/ehrlink_data_indications.tsv"
_CATEGORY = {"DM": "TREATS_CtD", "SYM": "PALLIATES_CpD"}


def load(ctx: LoadContext) -> None:
    _load_catalog(ctx)
    _load_labeledin(ctx)
    _load_ehrlink(ctx)


def _compound(ctx: LoadContext, source: str, rxnorm: str, name: str) -> str:
    compound = ctx.compounds.get(normalise(name)) or f"RXNORM:{rxnorm}"
    ctx.node(source, NodeRecord(id=compound, label="Compound", name=name, xrefs=[f"RXNORM:{rxnorm}"]), rank=50)
    return compound


def _load_catalog(ctx: LoadContext) -> None:
    source = "PharmacotherapyDB"
    path = ctx.path(CATALOG)
    columns = ["doid_id", "drugbank_id", "disease", "drug", "category", "n_curators"]
    for line_no, (doid, drug_id, disease_name, drug, category, curators) in read_table(path, ctx.issues, columns=columns):
        ctx.row(source)
        if not doid.startswith("DOID:") or not drug_id.startswith("DB") or not curators.isdigit() or not disease_name or not drug:
            ctx.issues.report(path, line_no, f"expected DOID, DrugBank id and a count, got {doid!r} {drug_id!r} {curators!r}")
            continue
        edge_type = _CATEGORY.get(category)
        if edge_type is None:
            ctx.unused(source, f"category {category}")
            continue
        disease = ctx.diseases.canonical(doid) or doid
        ctx.node(source, disease_node(disease, disease_name), rank=50)
        ctx.node(source, NodeRecord(id=drug_id, label="Compound", name=drug), rank=30)
        ctx.edge(source, EdgeRecord(source_id=drug_id, type=edge_type, target_id=disease, sources=[source],
                                    properties={"pharmacotherapydb_curators": int(curators)}))


def _load_labeledin(ctx: LoadContext) -> None:
    source = "LabeledIn"
    path = ctx.path(LABELEDIN)
    columns = ["rxnorm_id", "disease_cui", "n_labels", "disease_mesh_name", "rxnorm_name"]
    for line_no, (rxnorm, cui, n_labels, disease_name, drug) in read_table(path, ctx.issues, columns=columns):
        ctx.row(source)
        umls = normalise_xref(f"UMLS:{cui}")
        if ";" in rxnorm and all(part.isdigit() for part in rxnorm.split(";")):
            ctx.unused(source, "combination product (several RxNorm ids)")
            continue
        if not rxnorm.isdigit() or not cui.startswith("C") or umls is None or not n_labels.isdigit() or not drug:
            ctx.issues.report(path, line_no, f"expected RxNorm id, UMLS CUI, count and drug name; got {rxnorm!r} {cui!r} {n_labels!r} {drug!r}")
            continue
        disease = ctx.diseases.canonical(umls)
        if disease is not None and not ctx.graph.has_node(disease):
            disease = None  # e.g. an obsolete MONDO term
        if disease is None and not disease_name:
            ctx.unused(source, "UMLS disease neither mapped nor named")
            continue
        if disease_name:
            disease = disease or umls
            ctx.node(source, disease_node(disease, disease_name, xrefs=[umls]), rank=50)
        compound = _compound(ctx, source, rxnorm, drug)
        ctx.edge(source, EdgeRecord(source_id=compound, type="TREATS_CtD", target_id=disease, sources=[source],
                                    properties={"labeledin_labels": int(n_labels)}))


def _load_ehrlink(ctx: LoadContext) -> None:
    source = "EHRLink"
    path = ctx.path(EHRLINK)
    columns = ["ingredient_rxcui", "ingredient_name", "doid_code", "doid_name", "link_ratio"]
    for line_no, (rxcui, drug, doid, disease_name, ratio) in read_table(path, ctx.issues, columns=columns):
        ctx.row(source)
        try:
            link_ratio = float(ratio)
        except ValueError:
            ctx.issues.report(path, line_no, f"link_ratio {ratio!r} not numeric")
            continue
        if not rxcui.isdigit() or not doid.startswith("DOID:") or not drug or not disease_name:
            ctx.issues.report(path, line_no, f"expected RxNorm ingredient and DOID, got {rxcui!r} {doid!r}")
            continue
        disease = ctx.diseases.canonical(doid) or doid
        ctx.node(source, disease_node(disease, disease_name), rank=50)
        compound = _compound(ctx, source, rxcui, drug)
        ctx.edge(source, EdgeRecord(source_id=compound, type="TREATS_CtD", target_id=disease, sources=[source],
                                    properties={"ehrlink_link_ratio": link_ratio}))
