"""Evidence strength of an edge, in [0, 1], from what its sources record (docs/evidence_strength.md).

Computed once when the graph is built (``properties["strength"]`` and ``properties["strength_basis"]``);
:func:`strength_of` reads it, or computes it for an edge of a graph built elsewhere (a Neo4j SPOKE, a
user's dump), so a question pays nothing for it.

How: each source of an edge yields *lines* of evidence, each with an independence key (the primary
source it comes from: TIGA and Hetionet's "GWAS Catalog" are the GWAS Catalog again) and a value in
[0, 1] scaled from the property that source records (DisGeNET score and PMIDs, DISEASES stars,
GWAS p-value and studies, curators, labels, link ratio). Lines with the same key count once (the
highest); the keys combine by noisy-OR, ``1 - prod(1 - s_k)``: independent sources each add
support, none can lower it, and one weak line stays weak. A source with no strength-bearing
property counts as one line of :data:`UNIT` (so an edge from two such sources gets 0.75).

Example::

    edge_strength("ASSOCIATES_DaG", ["DisGeNET"], {"disgenet_score": 0.21, "disgenet_pmids": 1})   # ~0.24
    edge_strength("ISA_DiD", ["Disease Ontology", "MONDO"], {})                                      # 0.75
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kgrag.graph.schema import EdgeView

STRENGTH_KEY = "strength"
BASIS_KEY = "strength_basis"

# One independent source that records no score (an ontology's is-a, a Hetionet structural edge, an
# unknown source of a user's graph): a coin's worth of support, so two such sources give 0.75.
UNIT = 0.5
# The most one curated source at its top confidence gives (curation is not infallible).
CURATED_MAX = 0.9
# Text-mined and observational evidence (co-mentions, EHR co-occurrence) counts half as much as its
# own confidence scale says.
MINED_FACTOR = 0.5
# No single line of evidence is certainty; several independent ones may come closer.
LINE_MAX = 0.99
# GWAS: genome-wide significance (p <= 5e-8) is one unit of evidence (strength 0.5); the catalog's
# inclusion threshold p < 1e-5 gives 5 / 7.3 of a unit; every further study is one more replication.
GENOME_WIDE = -math.log10(5e-8)
CATALOG_THRESHOLD = 5.0
# DisGeNET: NumberOfPubmeds at which the literature term reaches half its weight: the 90th
# percentile of the curated file (median 1, 75th 4, 90th 14, 99th 129; docs/evidence_strength.md).
DISGENET_PMIDS_HALF = 14.0
# DISEASES confidence is in stars, 0-5, one scale for every channel.
DISEASES_STARS = 5.0


@dataclass(frozen=True, slots=True)
class Line:
    """One line of evidence: ``key`` names its primary source (lines with one key count once)."""

    key: str
    value: float
    why: str
    scored: bool = True


def _num(value: Any) -> float | None:
    """A finite number from an int, float or numeric text; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, str) and value.strip():
        return [v.strip() for v in value.replace("|", ",").split(",") if v.strip()]
    return []


def _clip(value: float) -> float:
    return min(LINE_MAX, max(0.0, value))


def gwas_units(pvalue: float | None, studies: int) -> float:
    """Units of GWAS evidence: -log10(p) / 7.3 for the best study, 5 / 7.3 for each further one."""
    units = 0.0
    if pvalue is not None and 0.0 <= pvalue <= 1.0:
        units = -math.log10(max(pvalue, 1e-300)) / GENOME_WIDE
    elif studies > 0:
        units = CATALOG_THRESHOLD / GENOME_WIDE
    return units + max(0, studies - 1) * CATALOG_THRESHOLD / GENOME_WIDE


def from_units(units: float) -> float:
    """``1 - 0.5 ** units``: one unit is :data:`UNIT`, as for any independent source."""
    return _clip(1.0 - (1.0 - UNIT) ** units)


def _gwas(props: Mapping[str, Any]) -> Line | None:
    """GWAS Catalog: p-value and studies when recorded; else the locus status (HC/LC, primary/secondary)."""
    pvalue = _num(props.get("gwas_pvalue"))
    if pvalue is not None and not 0.0 <= pvalue <= 1.0:
        pvalue = None
    studies = _num(props.get("gwas_studies"))
    n_studies = int(studies) if studies is not None else len(_list(props.get("gwas_pmids")))
    statuses = _list(props.get("gwas_status"))
    secondary_only = bool(statuses) and not any(s.endswith("-P") for s in statuses)
    if pvalue is None and n_studies == 0 and statuses:
        high = any(s.startswith("HC") for s in statuses) or _num(props.get("gwas_high_confidence")) == 1
        units = 1.0 if high else CATALOG_THRESHOLD / GENOME_WIDE
        why = "/".join(sorted(statuses))
    elif pvalue is not None or n_studies:
        units = gwas_units(pvalue, n_studies)
        why = (f"p {pvalue:.0e}" if pvalue is not None else "p n/a") + f", {n_studies or 1} stud{'y' if n_studies <= 1 else 'ies'}"
    else:
        return None
    value = from_units(units)
    if secondary_only:  # a secondary gene of its locus: one of the locus's genes, not the one nearest the lead SNP
        value *= 0.5
        why += ", secondary gene"
    return Line("GWAS Catalog", round(value, 4), why)


def _disgenet(props: Mapping[str, Any]) -> Line | None:
    """DisGeNET curated: its score (curated sources, animal models, literature), raised by how many papers report it."""
    score = _num(props.get("disgenet_score"))
    if score is None:
        return None
    pmids = max(0.0, _num(props.get("disgenet_pmids")) or 0.0)
    literature = MINED_FACTOR * pmids / (pmids + DISGENET_PMIDS_HALF)
    value = 1.0 - (1.0 - min(max(score, 0.0), 1.0)) * (1.0 - literature)
    return Line("DisGeNET", round(_clip(value), 4), f"score {score:.2f}, {int(pmids)} PMIDs")


def _diseases(props: Mapping[str, Any]) -> list[Line]:
    """JensenLab DISEASES: stars / 5 per channel; knowledge is curated (max 0.9), experiments are TIGA
    (the GWAS Catalog again), text mining counts half."""
    lines = []
    knowledge = _num(props.get("diseases_knowledge_score"))
    if knowledge is not None:
        lines.append(Line("DISEASES knowledge", round(_clip(CURATED_MAX * knowledge / DISEASES_STARS), 4),
                          f"knowledge {knowledge:g} stars"))
    experiments = _num(props.get("diseases_experiments_score"))
    if experiments is not None:
        lines.append(Line("GWAS Catalog", round(_clip(experiments / DISEASES_STARS), 4), f"TIGA {experiments:g} stars"))
    textmining = _num(props.get("diseases_textmining_score"))
    if textmining is not None:
        lines.append(Line("DISEASES text mining", round(_clip(MINED_FACTOR * textmining / DISEASES_STARS), 4),
                          f"text mining {textmining:g} stars"))
    return lines


# Hetionet's disease-gene sources: (independence key, value). Hetionet records no score, only that an
# association passed its thresholds; a source whose scored lines we know gets their median (measured
# on the built graph, docs/evidence_strength.md), text mining half a unit. A scored line of the same
# key (the DisGeNET loader's own edge) replaces it.
_HETIONET_DAG = {
    "GWAS Catalog": ("GWAS Catalog", 0.4),   # median GWAS Catalog line of the gene-associations.tsv edges (0.401)
    "DisGeNET": ("DisGeNET", 0.24),          # median DisGeNET line (0.237: score 0.21, 1 PMID)
    "DISEASES": ("DISEASES text mining", MINED_FACTOR * UNIT),
    "DOAF": ("DOAF", MINED_FACTOR * UNIT),
}
# Binding databases that copy one another count once.
_BINDING_KEY = {"DrugCentral (ChEMBL)": "ChEMBL"}


def _hetionet(edge_type: str, props: Mapping[str, Any]) -> list[Line]:
    lines = []
    for name in _list(props.get("hetionet_sources")):
        key, value = _HETIONET_DAG.get(name, (name, UNIT))
        lines.append(Line(key, value, "via Hetionet", scored=False))
    for name in _list(props.get("binding_sources")):
        key = "DrugBank" if name.startswith("DrugBank") else _BINDING_KEY.get(name, name)
        lines.append(Line(key, UNIT, "binding database"))
    if edge_type in ("TREATS_CtD", "PALLIATES_CpD") and not lines:
        # Hetionet's indications are PharmacotherapyDB's; when that source is on the edge it speaks for both.
        lines.append(Line("PharmacotherapyDB", UNIT, "via Hetionet", scored=False))
    return lines


def _pharmacotherapydb(props: Mapping[str, Any]) -> Line | None:
    """Each of the physicians who agreed on the indication is one vote of :data:`UNIT` (3 of 3: 0.875)."""
    curators = _num(props.get("pharmacotherapydb_curators"))
    if curators is None:
        return None
    return Line("PharmacotherapyDB", round(from_units(max(0.0, curators)), 4), f"{int(curators)} curators")


def _labeledin(props: Mapping[str, Any]) -> Line | None:
    """An indication on an FDA drug label: curated; more labels are copies of one approval (counted once)."""
    labels = _num(props.get("labeledin_labels"))
    if labels is None or labels < 1:
        return None
    return Line("LabeledIn", 0.8, f"{int(labels)} labels")


def _ehrlink(props: Mapping[str, Any]) -> Line | None:
    """EHRLink: the share of the drug's orders clinicians linked to the problem; observational, counts half."""
    ratio = _num(props.get("ehrlink_link_ratio"))
    if ratio is None:
        return None
    return Line("EHRLink", round(_clip(MINED_FACTOR * min(max(ratio, 0.0), 1.0)), 4), f"link ratio {ratio:.2f}")


def _mondo(props: Mapping[str, Any]) -> Line | None:
    """MONDO's 'has material basis in germline mutation in': a curated causal gene."""
    if props.get("mondo_relation"):
        return Line("MONDO", CURATED_MAX, "germline causal gene")
    return None


def evidence_lines(edge_type: str, sources: Sequence[str], properties: Mapping[str, Any]) -> list[Line]:
    """The lines of evidence of one edge (before combining); see the module docstring."""
    lines: list[Line] = []
    for source in dict.fromkeys(sources):
        found: list[Line] = []
        if source == "DisGeNET":
            found = [x for x in (_disgenet(properties),) if x]
        elif source == "GWAS Catalog":
            found = [x for x in (_gwas(properties),) if x]
        elif source == "DISEASES":
            found = _diseases(properties)
        elif source == "Hetionet":
            found = _hetionet(edge_type, properties)
        elif source == "PharmacotherapyDB":
            found = [x for x in (_pharmacotherapydb(properties),) if x]
        elif source == "LabeledIn":
            found = [x for x in (_labeledin(properties),) if x]
        elif source == "EHRLink":
            found = [x for x in (_ehrlink(properties),) if x]
        elif source == "MONDO":
            found = [x for x in (_mondo(properties),) if x]
        lines.extend(found or [Line(source, UNIT, "no score recorded", scored=False)])
    return lines


def combine(lines: Sequence[Line]) -> tuple[float, str]:
    """Noisy-OR over independence keys (the best line of each key, a scored line before any unscored
    default); the strength and a short basis."""
    best: dict[str, Line] = {}
    for line in lines:
        key = line.key.lower()
        held = best.get(key)
        if held is None or (line.scored, line.value) > (held.scored, held.value):
            best[key] = line
    miss = 1.0
    for line in best.values():
        miss *= 1.0 - line.value
    strength = round(1.0 - miss, 4) if best else 0.0
    basis = "; ".join(f"{line.key} {line.value:.2f} ({line.why})"
                      for line in sorted(best.values(), key=lambda x: -x.value))
    return strength, basis


def edge_strength(edge_type: str, sources: Sequence[str], properties: Mapping[str, Any]) -> float:
    """Strength of one edge in [0, 1]: more independent sources and stronger recorded evidence score higher."""
    return combine(evidence_lines(edge_type, sources, properties))[0]


def strength_properties(edge_type: str, sources: Sequence[str], properties: Mapping[str, Any]) -> dict[str, Any]:
    """``{"strength": ..., "strength_basis": ...}`` to store on an edge at build time."""
    strength, basis = combine(evidence_lines(edge_type, sources, properties))
    return {STRENGTH_KEY: strength, BASIS_KEY: basis}


def valid_strength(value: Any) -> float | None:
    """A given strength if it is a number in [0, 1] (numeric text accepted), else None."""
    number = _num(value)
    return number if number is not None and 0.0 <= number <= 1.0 else None


def strength_of(edge: EdgeView) -> float:
    """The stored strength of ``edge``, or the one :func:`edge_strength` computes from its sources and properties."""
    stored = valid_strength(edge.properties.get(STRENGTH_KEY))
    if stored is not None:
        return stored
    return edge_strength(edge.type, edge.sources, edge.properties)
