"""Corpus-statistics commands: build the local Infini-gram index, count terms, count co-occurrences.

    kgrag build-stats-index [--corpus passages.jsonl] [--out DIR] [--json]
    kgrag stats count "metformin" ["type 2 diabetes" ...] [--json]
    kgrag stats cooccur "metformin" "diabetes" [--window 1000] [--json]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from kgrag.errors import InputError

stats_app = typer.Typer(name="stats", help="Corpus statistics (Infini-gram) used by the uncertainty gate.",
                        no_args_is_help=True)


def _open_stats():
    from kgrag.settings import load_settings  # noqa: PLC0415
    from quco.stats import open_corpus_stats  # noqa: PLC0415

    settings = load_settings()
    return settings, open_corpus_stats(settings)


def build_stats_index(
    corpus: Annotated[Optional[Path], typer.Option(help="A .jsonl of passages ({\"text\": ...}) or a folder of .txt; default: the public passages")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Index folder; default: the path of KGRAG_STATS_URI (local://...)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON")] = False,
) -> None:
    """Build the local Infini-gram index of the corpus for the gate's statistics."""
    from kgrag.settings import load_settings, mask_uri  # noqa: PLC0415
    from quco.index_builder import build_index, project_corpus  # noqa: PLC0415

    settings = load_settings()
    if out is None:
        if not settings.stats_uri.startswith("local://"):
            raise InputError(f"KGRAG_STATS_URI={mask_uri(settings.stats_uri)} is not local://; pass --out DIR")
        out = Path(settings.stats_uri[len("local://"):])
    manifest = build_index(project_corpus(settings, corpus), out)
    if as_json:
        typer.echo(json.dumps({"index_dir": str(out.resolve()), **manifest.model_dump()}, indent=2))
    else:
        typer.echo(f"built {out.resolve()}: {manifest.doc_count} documents, {manifest.total_tokens} words, "
                   f"{manifest.index_bytes / 1e6:.1f} MB in {manifest.build_seconds:.1f} s ({manifest.skipped_rows} rows skipped)")


@stats_app.command("count")
def count(
    terms: Annotated[list[str], typer.Argument(help="Terms (words or phrases) to count")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Occurrences of each term in the corpus."""
    settings, stats = _open_stats()
    started = time.perf_counter()
    values = stats.count(list(terms))
    ms = (time.perf_counter() - started) * 1e3
    rows = [{"term": t, "count": n, "per_billion": n * 1e9 / stats.total_tokens} for t, n in zip(terms, values)]
    if as_json:
        typer.echo(json.dumps({"backend": stats.description, "total_tokens": stats.total_tokens, "ms": ms, "results": rows}))
    else:
        for row in rows:
            typer.echo(f"{row['count']}\t{row['per_billion']:.1f}/billion\t{row['term']}")


@stats_app.command("cooccur")
def cooccur(
    a: Annotated[str, typer.Argument(help="First term")],
    b: Annotated[str, typer.Argument(help="Second term")],
    window: Annotated[Optional[int], typer.Option(help="Tokens between the starts; default KGRAG_COOCCUR_WINDOW")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Occurrences of the rarer term with the other within WINDOW tokens in the same document."""
    settings, stats = _open_stats()
    win = window if window is not None else settings.cooccur_window
    started = time.perf_counter()
    [value] = stats.cooccur([(a, b)], win)
    ms = (time.perf_counter() - started) * 1e3
    if as_json:
        typer.echo(json.dumps({"backend": stats.description, "a": a, "b": b, "window": win, "cooccur": value, "ms": ms}))
    else:
        typer.echo(f"{value}\t{a!r} + {b!r} within {win} tokens")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `kgrag` app."""
    app.command("build-stats-index")(build_stats_index)
    app.add_typer(stats_app, name="stats")
