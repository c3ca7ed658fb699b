"""The SPOKE-style graph schema: node labels, edge types, and the records every loader yields.

A node is identified by a typed id (``DOID:9008``, ``NCBIGene:3106``, ``rs6457620``,
``DB00331``); an edge by (source id, type, target id). Every edge carries ``sources`` (provenance)
and its evidence properties (scores, p-values) in ``properties``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

NODE_LABELS: tuple[str, ...] = (
    "Disease",
    "Gene",
    "Variant",
    "Compound",
    "Symptom",
    "Anatomy",
    "SideEffect",
    "Pathway",
    "BiologicalProcess",
    "MolecularFunction",
    "CellularComponent",
    "PharmacologicClass",
    "Organism",
    "Protein",
)

# Edge type -> (source label, verb used in sentences, target label). Names follow SPOKE.
EDGE_TYPES: dict[str, tuple[str, str, str]] = {
    "ASSOCIATES_DaG": ("Disease", "associates", "Gene"),
    "ISA_DiD": ("Disease", "isa", "Disease"),
    "RESEMBLES_DrD": ("Disease", "resembles", "Disease"),
    "TREATS_CtD": ("Compound", "treats", "Disease"),
    "PALLIATES_CpD": ("Compound", "palliates", "Disease"),
    "CONTRAINDICATES_CcD": ("Compound", "contraindicates", "Disease"),
    "ASSOCIATES_VaP": ("Variant", "associates", "Disease"),
    "MAPS_VmG": ("Variant", "maps", "Gene"),
    "PRESENTS_DpS": ("Disease", "presents", "Symptom"),
    "LOCALIZES_DlA": ("Disease", "localizes", "Anatomy"),
    "UPREGULATES_DuG": ("Disease", "upregulates", "Gene"),
    "DOWNREGULATES_DdG": ("Disease", "downregulates", "Gene"),
    "BINDS_CbG": ("Compound", "binds", "Gene"),
    "UPREGULATES_CuG": ("Compound", "upregulates", "Gene"),
    "DOWNREGULATES_CdG": ("Compound", "downregulates", "Gene"),
    "CAUSES_CcSE": ("Compound", "causes", "SideEffect"),
    "RESEMBLES_CrC": ("Compound", "resembles", "Compound"),
    "INCLUDES_PCiC": ("PharmacologicClass", "includes", "Compound"),
    "INTERACTS_GiG": ("Gene", "interacts", "Gene"),
    "REGULATES_GrG": ("Gene", "regulates", "Gene"),
    "COVARIES_GcG": ("Gene", "covaries", "Gene"),
    "PARTICIPATES_GpPW": ("Gene", "participates", "Pathway"),
    "PARTICIPATES_GpBP": ("Gene", "participates", "BiologicalProcess"),
    "PARTICIPATES_GpMF": ("Gene", "participates", "MolecularFunction"),
    "PARTICIPATES_GpCC": ("Gene", "participates", "CellularComponent"),
    "EXPRESSES_AeG": ("Anatomy", "expresses", "Gene"),
    "UPREGULATES_AuG": ("Anatomy", "upregulates", "Gene"),
    "DOWNREGULATES_AdG": ("Anatomy", "downregulates", "Gene"),
}

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_identifier(kind: str, value: str) -> str:
    """Labels and edge types are identifiers from the schema, never user text; refuse anything else."""
    if not _IDENT.match(value):
        raise ValueError(f"{kind} {value!r} is not a valid identifier (letters, digits, underscore)")
    return value


class NodeRecord(BaseModel):
    """One node of the graph."""

    id: str = Field(min_length=1, description="Typed id, e.g. DOID:9008, NCBIGene:3106, rs6457620")
    label: str = Field(description="One of NODE_LABELS (user graphs may add their own)")
    name: str = Field(min_length=1)
    synonyms: list[str] = Field(default_factory=list)
    xrefs: list[str] = Field(default_factory=list, description="Ids in other vocabularies (UMLS:C..., MONDO:..., MESH:...)")
    sources: list[str] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("label")
    @classmethod
    def _label_identifier(cls, value: str) -> str:
        return check_identifier("label", value)


class EdgeRecord(BaseModel):
    """One edge of the graph, with provenance."""

    source_id: str = Field(min_length=1)
    type: str
    target_id: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1, description="Provenance: DisGeNET, GWAS, DISEASES, Hetionet, ...")
    properties: dict[str, Any] = Field(default_factory=dict, description="Evidence: scores, p-values, counts")

    @field_validator("type")
    @classmethod
    def _type_identifier(cls, value: str) -> str:
        return check_identifier("edge type", value)

    @property
    def key(self) -> str:
        return f"{self.source_id}|{self.type}|{self.target_id}"


class NodeRef(BaseModel):
    """A node as seen from an edge: enough to write a sentence."""

    id: str
    label: str
    name: str


class EdgeView(BaseModel):
    """An edge returned by a query, with both endpoints resolved."""

    key: str
    type: str
    source: NodeRef
    target: NodeRef
    sources: list[str]
    properties: dict[str, Any] = Field(default_factory=dict)


class GraphSchema(BaseModel):
    """What is in a store: counts by node label and by edge type."""

    backend: str
    node_counts: dict[str, int]
    edge_counts: dict[str, int]

    @property
    def total_nodes(self) -> int:
        return sum(self.node_counts.values())

    @property
    def total_edges(self) -> int:
        return sum(self.edge_counts.values())


def edge_sentence(edge: EdgeView) -> str:
    """KG-RAG's verbalisation: 'Disease psoriasis associates Gene HLA-B and Provenance of this association is GWAS.'"""
    known = EDGE_TYPES.get(edge.type)
    verb = known[1] if known is not None else edge.type.split("_")[0].lower()
    provenance = ", ".join(edge.sources)
    return (
        f"{edge.source.label} {edge.source.name} {verb} {edge.target.label} {edge.target.name} "
        f"and Provenance of this association is {provenance}."
    )


class BuildMarker(BaseModel):
    """The state of the last build, kept inside the store (not a node of the graph: readers never see it).

    ``kgrag build-graph`` writes it with ``state="building"`` before it changes anything and with
    ``state="complete"`` (and the counts) when the load has been checked. A graph whose marker says
    ``building`` is half-built and readers refuse it; a graph without a marker was not built by
    kgrag (e.g. a production SPOKE in Neo4j) and is served when it is not empty.
    """

    state: Literal["building", "complete"]
    build_id: str = Field(description="Unique per build; the Ladybug manifest names it too")
    started: str = Field(description="UTC ISO time the build began")
    finished: str | None = Field(default=None, description="UTC ISO time the build was checked")
    clear: bool = Field(default=False, description="Whether the build started from an empty graph")
    nodes: int = Field(default=0, ge=0, description="Nodes in the store when the build finished")
    edges: int = Field(default=0, ge=0, description="Edges in the store when the build finished")
