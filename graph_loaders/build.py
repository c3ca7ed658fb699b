"""Build the whole public SPOKE-style graph from the source files into a graph store.

``build_graph(settings, store)`` runs every loader in identity order (genes and disease
ontologies first, so later sources resolve their ids to the same nodes), merges their records
in memory (:class:`~graph_loaders.accumulate.GraphAccumulator`), then writes nodes and edges to
the store in batches of ``settings.graph_batch_size``. The returned :class:`BuildReport` holds
counts by label and edge type, per-source counts, malformed rows (counts and samples) and seconds.

Example::

    from kgrag.graph import open_graph_store
    from kgrag.settings import load_settings
    settings = load_settings(sources_dir="/work/shared/data")
    with open_graph_store(settings) as store:
        report = build_graph(settings, store)
    report.edge_counts["ASSOCIATES_DaG"]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from pydantic import BaseModel, Field

from graph_loaders import (
    disease_ontology,
    disgenet,
    entrez_genes,
    gwas_catalog,
    hetionet,
    indications,
    jensenlab_diseases,
    mondo,
)
from graph_loaders.context import LoadContext, SourceStats
from graph_loaders.issues import MalformedRow
from kgrag.graph.base import GraphStore
from kgrag.settings import Settings

T = TypeVar("T")

# (step name, loader) in the order identities must be known.
LOADERS: list[tuple[str, Callable[[LoadContext], None]]] = [
    ("Entrez genes", entrez_genes.load),
    ("Disease Ontology", disease_ontology.load),
    ("MONDO", mondo.load),
    ("KG-RAG disease names", disease_ontology.load_benchmark_names),
    ("DisGeNET", disgenet.load),
    ("GWAS Catalog", gwas_catalog.load),
    ("JensenLab DISEASES", jensenlab_diseases.load),
    ("Hetionet", hetionet.load),
    ("Indications", indications.load),
]


class BuildReport(BaseModel):
    """What a build wrote, where from, and what it could not use."""

    graph_uri: str
    backend: str
    node_counts: dict[str, int] = Field(description="Nodes written, by label (from the store after loading)")
    edge_counts: dict[str, int] = Field(description="Edges written, by type (from the store after loading)")
    nodes_written: int
    edges_written: int
    sources: dict[str, SourceStats] = Field(description="Per source: rows read, node/edge records, unused rows by reason")
    malformed_rows: dict[str, int] = Field(description="Malformed rows per file")
    malformed_total: int
    malformed_samples: list[MalformedRow]
    dangling_edges: int = Field(description="Merged edges with an endpoint no source defined (not written)")
    seconds: dict[str, float] = Field(description="Seconds per step and in total")


def collect(settings: Settings, *, progress: bool = True) -> tuple[LoadContext, dict[str, float]]:
    """Run every loader and merge their records in memory; returns the context and seconds per loader."""
    ctx = LoadContext(settings=settings)
    seconds: dict[str, float] = {}
    steps = _progress(LOADERS, progress, "reading sources", lambda step: step[0])
    for name, loader in steps:
        start = time.perf_counter()
        loader(ctx)
        seconds[name] = round(time.perf_counter() - start, 2)
    return ctx, seconds


def build_graph(settings: Settings, store: GraphStore, *, progress: bool = True, clear: bool = False) -> BuildReport:
    """Read every public source, merge, and write the graph to ``store``; see the module docstring.

    This writes into ``store`` as it is; ``kgrag build-graph`` instead calls :func:`collect` and
    :func:`write_graph` inside :func:`kgrag.graph.staging.staged_build`, so readers never see a
    half-built graph.
    """
    start = time.perf_counter()
    ctx, seconds = collect(settings, progress=progress)
    return write_graph(settings, store, ctx, seconds, start=start, progress=progress, clear=clear)


def write_graph(settings: Settings, store: GraphStore, ctx: LoadContext, seconds: dict[str, float], *,
                start: float, progress: bool = True, clear: bool = False) -> BuildReport:
    """Write the records :func:`collect` merged to ``store`` (emptied first with ``clear``); the report."""
    if clear:
        store.clear()
    store.create_schema()
    batch = settings.graph_batch_size
    t0 = time.perf_counter()
    nodes = _progress(ctx.graph.nodes(), progress, "writing nodes", None, total=ctx.graph.node_count)
    nodes_written = store.load_nodes(nodes, batch_size=batch)
    seconds["write nodes"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    dangling: list[tuple[str, str, str]] = []
    edges = _progress(ctx.graph.edges(dangling), progress, "writing edges", None, total=ctx.graph.edge_count)
    edges_written = store.load_edges(edges, batch_size=batch)
    seconds["write edges"] = round(time.perf_counter() - t0, 2)
    schema = store.schema()
    seconds["total"] = round(time.perf_counter() - start, 2)
    return BuildReport(
        graph_uri=settings.graph_uri,
        backend=store.backend,
        node_counts=schema.node_counts,
        edge_counts=schema.edge_counts,
        nodes_written=nodes_written,
        edges_written=edges_written,
        sources=ctx.stats,
        malformed_rows=dict(ctx.issues.counts),
        malformed_total=ctx.issues.total,
        malformed_samples=ctx.issues.samples,
        dangling_edges=len(dangling),
        seconds=seconds,
    )


def _progress(items: Iterable[T], enabled: bool, what: str, describe: Callable[[T], str] | None,
              total: int | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar on stderr when ``enabled``."""
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, desc=what, total=total, unit=" items", leave=False, mininterval=0.5) as bar:
        for item in bar:
            if describe is not None:
                bar.set_postfix_str(describe(item))
            yield item
