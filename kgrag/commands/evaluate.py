"""CLI commands (filled in by the owner of this area)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `kgrag` app."""
