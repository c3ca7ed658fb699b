"""The `kgrag` command line. Each group of commands lives in kgrag/commands/<group>.py."""

from __future__ import annotations

import typer

from kgrag.commands import ask, evaluate, graph, llm, measure, stats, text

app = typer.Typer(name="kgrag", help="Grounded biomedical question answering.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)

for group in (graph, ask, text, stats, evaluate, measure, llm):
    group.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
