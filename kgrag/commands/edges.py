"""`kgrag build-edge-vectors`: embed every edge sentence of the graph once, for pruning by lookup."""

from __future__ import annotations

import json

import typer
from rich.console import Console

console = Console(stderr=True)


def build_edge_vectors(
    force: bool = typer.Option(False, "--force", help="Build even when the graph has more edges than "
                                                       "KGRAG_EDGE_VECTORS_MAX_EDGES."),
    chunk_size: int = typer.Option(20_000, "--chunk-size", min=1, help="Sentences per saved chunk (the unit a "
                                                                      "killed build resumes from)."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON on stdout."),
) -> None:
    """Embed each edge's sentence once into a memory-mapped store beside the graph (resumable; progress bar)."""
    from kgrag.indexes.edge_vector_build import build_edge_vectors as build
    from kgrag.indexes.edge_vectors import graph_identity
    from kgrag.encoders.embeddings import embedder_from_settings
    from kgrag.commands.common import built_graph
    from kgrag.errors import KgragError
    from kgrag.settings import load_settings

    settings = load_settings()
    if settings.edge_vectors == "off":
        raise KgragError("KGRAG_EDGE_VECTORS=off: sentences are embedded on demand; set it to auto or on to build")
    with built_graph(settings) as store:
        edges = graph_identity(store).edges
        if edges > settings.edge_vectors_max_edges and settings.edge_vectors == "auto" and not force:
            raise KgragError(f"the graph has {edges:,} edges, more than KGRAG_EDGE_VECTORS_MAX_EDGES="
                             f"{settings.edge_vectors_max_edges:,}: its sentences are embedded on demand; "
                             "pass --force (or set KGRAG_EDGE_VECTORS=on) to precompute them anyway")
        embedder = embedder_from_settings(settings)
        report = build(settings, store, embedder, chunk_size=chunk_size, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(report.model_dump(), indent=2))
        return
    console.print(f"stored {report.sentences:,} sentence vectors of {report.edges:,} edges "
                  f"({report.embedded:,} embedded now, {report.resumed:,} from an interrupted build) in "
                  f"{report.seconds:.1f} s, {report.bytes / 1e6:.1f} MB at {report.directory}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `kgrag` app."""
    app.command("build-edge-vectors")(build_edge_vectors)
