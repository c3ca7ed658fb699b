"""CLI: ``kgrag doctor`` checks settings, graph, artefacts, embedding model and LLM, and says what to run."""

from __future__ import annotations

import json

import typer
from rich.console import Console

STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def register(app: typer.Typer) -> None:
    """Add this module's command to the `kgrag` app."""
    app.command("doctor")(doctor_command)


def doctor_command(
    quick: bool = typer.Option(False, "--quick", help="Check artefact sizes only, not their checksums."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON on stdout."),
) -> None:
    """Check what the answer path needs (settings, graph, indexes, caches, models, LLM server); exit 1 if any check fails."""
    from kgrag.health import run_checks
    from kgrag.errors import KgragError
    from kgrag.settings import load_settings

    checks = run_checks(load_settings(), quick=quick)  # an invalid setting is the boundary's one error line
    if as_json:
        typer.echo(json.dumps([c.model_dump() for c in checks], indent=2))
    else:
        out = Console(highlight=False)
        for c in checks:
            out.print(f"[{STYLE[c.status]}]{c.status:<4}[/] [bold]{c.name}[/]: {c.detail}")
            if c.fix:
                out.print(f"     to fix: {c.fix}")
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:  # the boundary prints it as the one error line and exits with 1
        raise KgragError(f"{len(failed)} check(s) failed: {', '.join(failed)}; run what 'to fix' says")
