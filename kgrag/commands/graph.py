"""CLI: ``kgrag build-graph`` (sources -> graph store), ``kgrag graph-coverage`` (benchmark rows the graph decides) and
``kgrag relation-coverage`` (how complete the graph is per relation, for absence as evidence)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from kgrag.errors import InputError

if TYPE_CHECKING:
    from kgrag.graph.staging import StagedBuild


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `kgrag` app."""
    app.command("build-graph")(build_graph_command)
    app.command("graph-coverage")(graph_coverage_command)
    app.command("relation-coverage")(relation_coverage_command)


def build_graph_command(
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON on stdout."),
    clear: bool = typer.Option(False, "--clear", help="Build from an empty graph (default: merge into the current one)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr."),
    user_graph: Path | None = typer.Option(None, "--user-graph", help="Load your own nodes.csv + edges.csv "
                                           "from this folder instead of the public sources (docs/user_graph.md)."),
) -> None:
    """Build the public SPOKE-style graph from KGRAG_SOURCES_DIR (or downloads) into KGRAG_GRAPH_URI.

    The embedded graph is built in a staging file and swapped in when complete; readers never see
    a half-built graph (kgrag/graph/staging.py).
    """
    import time

    from graph_loaders.build import collect, write_graph
    from kgrag.graph.staging import staged_build
    from kgrag.settings import load_settings

    settings = load_settings()
    if user_graph is not None:
        with staged_build(settings, clear=clear, say=_note) as build:
            data = _load_user_graph(build, user_graph, settings.graph_batch_size, clear)
        _print_user_graph(data, as_json)
        return
    start = time.perf_counter()
    ctx, seconds = collect(settings, progress=progress)
    with staged_build(settings, clear=clear, say=_note) as build:
        report = write_graph(settings, build.store, ctx, seconds, start=start, progress=progress, clear=clear)
        build.written(report.nodes_written, report.edges_written)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    out = Console()
    table = Table(title=f"graph at {report.graph_uri}")
    table.add_column("label / edge type")
    table.add_column("count", justify="right")
    for name, count in {**report.node_counts, **report.edge_counts}.items():
        table.add_row(name, f"{count:,}")
    out.print(table)
    out.print(f"nodes {report.nodes_written:,}, edges {report.edges_written:,}, malformed rows "
              f"{report.malformed_total:,}, dangling edges {report.dangling_edges:,}, {report.seconds['total']} s")
    for sample in report.malformed_samples[:10]:
        out.print(f"  malformed {sample.file}:{sample.line}: {sample.reason}")


def _note(message: str) -> None:
    """A build's note on stderr, unwrapped (paths stay whole)."""
    typer.echo(f"note: {message}", err=True)


def _load_user_graph(build: "StagedBuild", directory: Path, batch_size: int, clear: bool) -> dict[str, Any]:
    """Load a user's nodes.csv/edges.csv into the build's store; the report as plain data."""
    from graph_loaders.issues import RowIssues
    from graph_loaders.user_graph import load_user_graph

    store = build.store
    if clear:
        store.clear()
    issues = RowIssues()
    report = load_user_graph(store, directory, issues, batch_size=batch_size)
    build.written(report.nodes, report.edges)
    if report.duplicate_ids:
        first = report.duplicates[0]
        typer.echo(f"note: {report.duplicate_ids} row(s) of {first.file} repeat an earlier id and were merged into it "
                   f"(first: line {first.line}, id {first.id}, first seen on line {first.first_line}: {first.reason}); "
                   "all are listed under `duplicates`", err=True)
    return {**report.model_dump(), "malformed": issues.counts,
            "malformed_samples": [s.model_dump() for s in issues.samples], "schema": store.schema().model_dump()}


def _print_user_graph(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        Console().print(data)


def graph_coverage_command(
    dataset: str = typer.Option(..., "--dataset", help="biomixqa-tf or biomixqa-mcq"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Report which benchmark rows the built graph can decide (pair, is-a or identity present)."""
    from graph_loaders.coverage import DATASETS, coverage
    from kgrag.commands.common import built_graph
    from kgrag.settings import load_settings

    if dataset not in DATASETS:
        raise InputError(f"--dataset must be one of {', '.join(sorted(DATASETS))}, got {dataset!r}")
    settings = load_settings()
    with built_graph(settings) as store:
        report = coverage(settings, store, dataset)
    if as_json:
        typer.echo(json.dumps(report.model_dump(), indent=2))
        return
    out = Console()
    table = Table(title=f"{report.dataset}: {report.covered}/{report.rows} covered ({report.rate:.1%})")
    for col in ("pattern", "rows", "covered", "rate"):
        table.add_column(col, justify="left" if col == "pattern" else "right")
    for name, stats in sorted(report.patterns.items()):
        table.add_row(name, str(stats.rows), str(stats.covered), f"{stats.rate:.1%}")
    out.print(table)
    logging.getLogger(__name__).debug("uncovered rows: %s", report.uncovered)
    out.print(f"uncovered rows: {report.uncovered}")


def relation_coverage_command(
    as_json: bool = typer.Option(False, "--json", help="Print the estimates as JSON on stdout."),
) -> None:
    """Estimate how complete the built graph is for each relation (the edges between two node labels) from
    its sources' overlap (capture-recapture); absence counts as evidence only at or above
    KGRAG_EVIDENCE_ABSENCE_MIN_COVERAGE (unset by default). See kgrag/evidence/absence.py."""
    from kgrag.evidence.absence import relation_coverage
    from kgrag.commands.common import built_graph
    from kgrag.settings import load_settings

    settings = load_settings()
    with built_graph(settings) as store:
        found = relation_coverage(store)
    threshold = settings.evidence_absence_min_coverage
    if as_json:
        typer.echo(json.dumps({"min_coverage": threshold, "relations": [c.model_dump() for c in found.values()]}, indent=2))
        return
    table = Table(title="Relation coverage (capture-recapture over sources; lowest estimate over source pairs)")
    for col in ("labels", "pairs", "sources (pairs)", "coverage", "absence counts"):
        table.add_column(col, justify="right" if col in ("pairs", "coverage") else "left")
    for c in found.values():
        sources = ", ".join(f"{name} {n}" for name, n in c.sources.items())
        usable = threshold is not None and c.coverage is not None and c.coverage >= threshold
        table.add_row("-".join(c.labels), str(c.pairs), sources, "unmeasured" if c.coverage is None else f"{c.coverage:.3f}",
                      "yes" if usable else "no")
    out = Console()
    out.print(table)
    out.print(f"KGRAG_EVIDENCE_ABSENCE_MIN_COVERAGE={threshold if threshold is not None else 'unset (absence never counts)'}")
