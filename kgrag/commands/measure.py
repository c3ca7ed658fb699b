"""`kgrag eval-linking` and `kgrag eval-context`: entity-linking accuracy and MCQ context sufficiency."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    app.command("eval-linking")(eval_linking)
    app.command("eval-context")(eval_context)


def eval_linking(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    show_misses: int = typer.Option(10, "--show-misses", help="Misses listed in the text output"),
) -> None:
    """Entity-linking accuracy on KG-RAG's 322-question entity-retrieval set."""
    from kgrag.commands.common import built_graph
    from kgrag.encoders.embeddings import embedder_from_settings
    from kgrag.settings import load_settings
    from eval.linking import linking_accuracy

    settings = load_settings()
    with built_graph(settings) as store:
        embedder = embedder_from_settings(settings)
        report = linking_accuracy(settings, store, embedder)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"rows {report.rows}: accuracy (expected node among linked) {report.accuracy_any:.3f}, "
               f"first linked {report.accuracy_top:.3f}, within one is-a hop {report.accuracy_within_one_isa:.3f}; by method {report.by_method}; hits by way {report.by_way}; no entity {report.no_entity}; "
               f"{report.questions_per_second:.0f} questions/s")
    for miss in report.misses[:show_misses]:
        typer.echo(f"  miss row {miss.row}: {miss.text!r} expected {miss.expected!r}, linked {miss.linked}")


def eval_context(
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON"),
    batch_size: int = typer.Option(32, "--batch-size"),
) -> None:
    """Context sufficiency on the KG-RAG MCQ set (graph-covered rows), with and without option edges first."""
    from kgrag.commands.common import pipeline_for
    from kgrag.settings import load_settings
    from eval.sufficiency import context_sufficiency
    from graph_loaders.coverage import coverage

    reports = []
    base = load_settings(retrieval_mode="kg")
    for first in (True, False):
        with pipeline_for(base.model_copy(update={"option_edges_first": first})) as pipeline:
            report = coverage(base, pipeline.retriever.store, "biomixqa-mcq")
            covered = set(range(report.rows)) - set(report.uncovered) - set(report.unparsed)
            reports.append(context_sufficiency(pipeline, covered, batch_size))
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in reports], indent=2))
        return
    for r in reports:
        typer.echo(f"option_edges_first={r.option_edges_first}: covered {r.covered_rows}/{r.rows}; correct option linked "
                   f"to both diseases {r.correct_linked_both:.3f}, a wrong option too {r.wrong_linked_both:.3f}; "
                   f"context tokens mean {r.mean_context_tokens:.0f} (covered), {r.mean_context_tokens_all_rows:.0f} (all)")
