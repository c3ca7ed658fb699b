"""`kgrag ask`: answer one question and show its provenance (errors: the boundary in kgrag/cli.py)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional, get_args

import typer

from kgrag.answer.evidence_writer import short_sources
from kgrag.explain.picture import write_picture
from kgrag.settings import Settings, redact, redact_data
from kgrag.explain.subgraph import build_subgraph
from kgrag.types import Answer, Question, Task

ITEMS_SHOWN = 10
TaskName = Enum("TaskName", {name: name for name in get_args(Task)}, type=str)  # --task's choices, from types.Task


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


def check_text_index_model(settings: Settings) -> None:
    """Fail at once, before any model is loaded, when the text index was built with another embedding model.

    (Loading an unknown KGRAG_EMBEDDING_MODEL first would try to download it, then fail with a network error.)
    The check is :func:`kgrag.indexes.text_index.check_index_model`, the one ``TextIndex.load`` and
    ``kgrag doctor`` make; a missing or unreadable index is left to ``TextIndex.load``, which names the problem.
    """
    if not settings.uses_text:
        return
    from kgrag.indexes.text_index import check_index_model

    check_index_model(settings)


def ask(
    question: str = typer.Argument(..., help="The question or statement"),
    options: str = typer.Option(None, "--options", help="Comma-separated options (MCQ), each given once"),
    task: Optional[TaskName] = typer.Option(None, "--task", case_sensitive=False, help="The kind of question"),
    as_json: bool = typer.Option(False, "--json", help="Print the whole Answer as JSON"),
    picture: Optional[Path] = typer.Option(None, "--picture", help="Also draw the evidence subgraph to this file "
                                           "(.png, .svg, or .html with hover details)"),
) -> None:
    """Answer QUESTION with graph and literature evidence; print the answer and where it came from."""
    from rich.console import Console
    from rich.table import Table

    from kgrag.commands.common import pipeline_for
    from kgrag.settings import load_settings

    option_list = [o.strip() for o in options.split(",")] if options else None
    task_name = task.value if task is not None else None
    Question(text=question, options=option_list, **({"task": task_name} if task_name else {}))  # fail before loading
    if picture is not None:
        from kgrag.explain.picture import picture_format

        picture_format(picture)  # a bad suffix fails before any model is loaded
    settings = load_settings()
    from kgrag.answer.pipeline import validate_question

    validate_question(question, settings, options=option_list, task=task_name)  # the limits, before any model loads
    check_text_index_model(settings)
    streams = not as_json and not option_list and task_name in (None, "free") and settings.writer == "llm"
    console = Console()
    if streams:  # the LLM's tokens as they come (raw); the checked answer follows
        console.print("[bold]Writing:[/bold] ", end="")
    with pipeline_for(settings) as pipeline:
        on_text = (lambda _i, text: console.out(redact(text, settings), end="", highlight=False)) if streams else None
        result = public_answer(pipeline.answer(question, options=option_list, task=task_name, on_text=on_text), settings)
    if streams:
        console.print()
    if picture is not None:
        write_answer_picture(result, option_list, picture)
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    console.print(f"[bold]Answer:[/bold] {result.choice or result.text}")
    if result.writer:
        console.print(f"[dim]written by: {result.writer}[/dim]")
    for sentence in result.unsupported:
        console.print(f"[yellow]unsupported by the evidence:[/yellow] {sentence}")
    if result.items:
        items = Table("#", "item", "label", "strength", "sources", title=f"Items ({len(result.items)}, best supported first)")
        for rank, item in enumerate(result.items[:ITEMS_SHOWN], 1):
            items.add_row(str(rank), f"{item.name} ({item.id})", item.label, f"{item.strength:.2f}", short_sources(item.sources, pmids=3))
        console.print(items)
    if result.support:
        conf = f", confidence {result.support_confidence:.2f}" if result.support_confidence is not None else ""
        console.print(f"[bold]Decided by:[/bold] {result.support} support{conf}")
    for e in result.entities:
        console.print(f"[bold]Entity[/bold] {e.name} ({e.node_id}, {e.method}): {e.reason}")
    table = Table("score", "support", "evidence", "sources",
                  title=f"Evidence ({len(result.evidence)} kept, {result.dropped_evidence} pruned)")
    for ev in result.evidence:
        table.add_row(f"{ev.score:.2f}", ev.support or "", ev.text[:160], ", ".join(ev.sources))
    console.print(table)
    for claim in result.claims:
        extra = f" via {' > '.join(claim.path)} (confidence {claim.confidence:.2f})" if claim.verdict == "inferred" else ""
        console.print(f"claim {claim.head} — {claim.tail}: [bold]{claim.verdict}[/bold] {', '.join(claim.sources)}{extra}")
    for decision in result.gate:
        console.print(f"gate stage {decision.stage}: retrieve={decision.retrieve} ({decision.reason})")
    console.print("[dim]" + "; ".join(result.trace) + "[/dim]")


def public_answer(result: Answer, settings: Settings) -> Answer:
    """``result`` with every credential masked (:func:`kgrag.settings.redact_data`): what every output of `ask` shows."""
    return Answer.model_validate(redact_data(result.model_dump(mode="json"), settings))


def write_answer_picture(result: Answer, options: list[str] | None, path: Path) -> Path:
    """Draw ``result``'s evidence subgraph to ``path`` and say where on stderr (stdout stays the answer or JSON)."""
    graph = build_subgraph(result, options=options)
    written = write_picture(graph, path)
    typer.echo(f"picture of the evidence ({len(graph.nodes)} nodes, {len(graph.edges)} edges, "
               f"{graph.edges_left_out} left out) written to {written}", err=True)
    return written
