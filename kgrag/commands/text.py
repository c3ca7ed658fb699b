"""`kgrag build-text-index` and `kgrag search`: build the passage index, query it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


console = Console(stderr=True)


def build_text_index(
    corpus: Optional[Path] = typer.Option(None, help="Your own corpus: PubMed baseline/update XML (.xml.gz, a file or "
                                          "a folder), a .jsonl file, or a folder of .txt files. Default: PubMedQA "
                                          "contexts + BioASQ snippets from the sources directory."),
    add: bool = typer.Option(False, "--add", help="Add the corpus to the existing index (its passages are not "
                             "embedded again; PubMed updates and deletions apply to it)."),
    reindex: bool = typer.Option(False, "--reindex", help="Rebuild the dense and BM25 indexes of the existing index "
                                 "from its saved vectors and term counts (nothing read or embedded): after changing "
                                 "--index-type or upgrading."),
    index_type: Optional[str] = typer.Option(None, "--index-type", help="auto|flat|hnsw|ivfpq (default: settings)"),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", min=1, help="Passages per shard (default: "
                                             "KGRAG_TEXT_SHARD_SIZE); a killed build resumes from its last shard."),
    bm25: bool = typer.Option(True, "--bm25/--no-bm25", help="Also build a BM25 index for fusion."),
    as_json: bool = typer.Option(False, "--json", help="Print build statistics as JSON on stdout."),
) -> None:
    """Build the text index in KGRAG_TEXT_INDEX_DIR: streamed in shards, resumable, with a progress bar."""
    from kgrag.indexes.corpus_stream import corpus_stream
    from kgrag.indexes.text_index_build import build_text_index as build
    from kgrag.settings import load_settings

    from kgrag.errors import KgragError
    from kgrag.indexes.corpus_stream import passages_stream

    settings = load_settings()
    started = time.perf_counter()
    if reindex and (corpus is not None or add):
        raise KgragError("--reindex rebuilds the existing index from what it saved; it takes no --corpus or --add")
    stream = passages_stream([], "reindex") if reindex else corpus_stream(settings, corpus)
    report = build(settings, stream, index_type=index_type, bm25=bm25, add=add or reindex, retrain=reindex,
                   shard_size=shard_size or settings.text_shard_size, progress=True)
    for problem in report.problems[:10]:
        console.print(f"[yellow]skipped:[/yellow] {problem}")
    if len(report.problems) > 10:
        console.print(f"[yellow]... and {len(report.problems) - 10} more malformed rows or records[/yellow]")
    elapsed = time.perf_counter() - started
    stats = {**report.model_dump(exclude={"problems"}), "problems": len(report.problems),
             "first_problems": report.problems[:10], "corpus": stream.description,
             "total_seconds": round(elapsed, 3),
             "passages_per_second": round(report.embedded / max(report.seconds, 1e-9), 1)}
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    resumed = f", {report.resumed_shards} shard(s) resumed" if report.resumed_shards else ""
    console.print(f"built {report.index_type} index: {report.live} passages ({report.added} read, {report.embedded} "
                  f"embedded{resumed}; {report.replaced} replaced by updates or deletions; {report.duplicates} "
                  f"duplicates and {len(report.problems)} malformed skipped) in {report.seconds:.1f} s, "
                  f"{report.size_bytes / 1e6:.1f} MB at {report.directory}")


def search(
    query: str = typer.Argument(..., help="The query text."),
    k: int = typer.Option(10, "--k", min=1, help="How many passages to return."),
    fusion: Optional[str] = typer.Option(None, help="dense|bm25|rrf (default: settings.text_fusion)"),
    year_min: Optional[int] = typer.Option(None, "--year-min", help="Only passages published in or after this year."),
    year_max: Optional[int] = typer.Option(None, "--year-max", help="Only passages published in or before this year."),
    mesh: Optional[list[str]] = typer.Option(None, "--mesh", help="Only passages with this MeSH term (repeat for any of several)."),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
) -> None:
    """Search the text index; print passages with their PMIDs."""
    from kgrag.settings import load_settings
    from kgrag.indexes.text_index import TextIndex

    from kgrag.indexes.text_filter import settings_filter

    settings = load_settings()
    flags = {"text_year_min": year_min, "text_year_max": year_max, "text_mesh": mesh or None}
    text_filter = settings_filter(settings.model_copy(update={k: v for k, v in flags.items() if v is not None}))
    index = TextIndex.load(settings)
    hits = index.search([query], k=k, fusion=fusion, text_filter=text_filter)[0]  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps([hit.model_dump(exclude_none=True) for hit in hits], indent=2))
        return
    out = Console()
    if not hits:
        out.print("no passage matched")
    for hit in hits:
        text = hit.passage.text if len(hit.passage.text) <= 300 else hit.passage.text[:297] + "..."
        out.print(f"[bold]{hit.rank:>2}.[/bold] PMID {hit.passage.pmid or '-'}  score {hit.score:.4f} "
                  f"({hit.retriever})  [dim]{hit.passage.id}[/dim]")
        out.print(f"    {text}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `kgrag` app."""
    app.command("build-text-index")(build_text_index)
    app.command("search")(search)
