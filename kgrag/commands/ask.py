"""`kgrag ask`: answer one question and show its provenance."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


def ask(
    question: str = typer.Argument(..., help="The question or statement"),
    options: str = typer.Option(None, "--options", help="Comma-separated options (MCQ)"),
    task: str = typer.Option(None, "--task", help="free | true_false | mcq | yes_no_maybe"),
    as_json: bool = typer.Option(False, "--json", help="Print the whole Answer as JSON"),
) -> None:
    """Answer QUESTION with graph and literature evidence; print the answer and where it came from."""
    from rich.console import Console
    from rich.table import Table

    from kgrag.errors import KgragError
    from kgrag.pipeline import Pipeline
    from kgrag.settings import load_settings

    try:
        settings = load_settings()
        pipeline = Pipeline.from_settings(settings)
        try:
            result = pipeline.answer(question, options=[o for o in options.split(",")] if options else None, task=task)
        finally:
            pipeline.close()
    except KgragError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    console = Console()
    console.print(f"[bold]Answer:[/bold] {result.choice or result.text}")
    if result.entities:
        console.print("[bold]Entities:[/bold] " + ", ".join(f"{e.name} ({e.node_id}, {e.method})" for e in result.entities))
    table = Table("score", "evidence", "sources", title=f"Evidence ({len(result.evidence)} kept, {result.dropped_evidence} pruned)")
    for ev in result.evidence:
        table.add_row(f"{ev.score:.2f}", ev.text[:160], ", ".join(ev.sources))
    console.print(table)
    for claim in result.claims:
        console.print(f"claim {claim.head} — {claim.tail}: [bold]{claim.verdict}[/bold] {', '.join(claim.sources)}")
    for decision in result.gate:
        console.print(f"gate stage {decision.stage}: retrieve={decision.retrieve} ({decision.reason})")
    console.print("[dim]" + "; ".join(result.trace) + "[/dim]")
