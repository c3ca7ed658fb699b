"""What every loader shares during one build: settings, identity maps, the merge, issues, counts.

Loaders are functions ``load(ctx: LoadContext) -> None`` that stream their source rows and call
:meth:`LoadContext.node` / :meth:`LoadContext.edge`; nothing is global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from graph_loaders.accumulate import GraphAccumulator
from graph_loaders.identity import DiseaseIdentity, GeneIdentity
from graph_loaders.issues import RowIssues
from kgrag.graph.schema import EdgeRecord, NodeRecord
from kgrag.settings import Settings
from kgrag.sources import source_path
from kgrag.text import normalise


class SourceStats(BaseModel):
    """Per-source counts: rows read, node and edge records contributed, rows left unused and why."""

    rows: int = 0
    nodes: int = 0
    edges: int = 0
    unused: dict[str, int] = {}


@dataclass
class LoadContext:
    """State of one build, passed to every loader."""

    settings: Settings
    issues: RowIssues = field(default_factory=RowIssues)
    diseases: DiseaseIdentity = field(default_factory=DiseaseIdentity)
    genes: GeneIdentity = field(default_factory=GeneIdentity)
    graph: GraphAccumulator = field(default_factory=GraphAccumulator)
    compounds: dict[str, str] = field(default_factory=dict)  # normalised name -> compound id
    stats: dict[str, SourceStats] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        """A source file (``kg_sources/<folder>/<file>``) through the mirror or a verified download."""
        return source_path(self.settings, relative)

    def source(self, name: str) -> SourceStats:
        return self.stats.setdefault(name, SourceStats())

    def row(self, source: str) -> None:
        self.source(source).rows += 1

    def unused(self, source: str, reason: str) -> None:
        """Count a well-formed row a loader does not turn into graph records (e.g. an unmapped id)."""
        stats = self.source(source)
        stats.unused[reason] = stats.unused.get(reason, 0) + 1

    def node(self, source: str, record: NodeRecord, rank: int = 100) -> None:
        if source not in record.sources:
            record.sources.append(source)
        self.graph.add_node(record, rank)
        self.source(source).nodes += 1
        if record.label == "Compound":
            for text in (record.name, *record.synonyms):
                self.compounds.setdefault(normalise(text), record.id)

    def edge(self, source: str, record: EdgeRecord) -> None:
        self.graph.add_edge(record)
        self.source(source).edges += 1


def disease_node(node_id: str, name: str, *, synonyms: list[str] | None = None, xrefs: list[str] | None = None) -> NodeRecord:
    return NodeRecord(id=node_id, label="Disease", name=name, synonyms=synonyms or [], xrefs=xrefs or [])


def gene_node(node_id: str, symbol: str) -> NodeRecord:
    return NodeRecord(id=node_id, label="Gene", name=symbol)
