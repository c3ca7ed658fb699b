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
    corpus: Optional[Path] = typer.Option(None, help="Your own corpus: a .jsonl file or a folder of .txt files. "
                                          "Default: PubMedQA contexts + BioASQ snippets from the sources directory."),
    index_type: Optional[str] = typer.Option(None, "--index-type", help="auto|flat|hnsw|ivfpq (default: settings)"),
    bm25: bool = typer.Option(True, "--bm25/--no-bm25", help="Also build a BM25 index for fusion."),
    as_json: bool = typer.Option(False, "--json", help="Print build statistics as JSON on stdout."),
) -> None:
    """Build the FAISS text index (and BM25) in KGRAG_TEXT_INDEX_DIR, with a progress bar."""
    from kgrag.indexes.corpus import load_corpus
    from kgrag.settings import load_settings
    from kgrag.indexes.text_index import TextIndex

    settings = load_settings()
    started = time.perf_counter()
    loaded = load_corpus(settings, corpus)
    for problem in loaded.malformed[:10]:
        console.print(f"[yellow]skipped:[/yellow] {problem}")
    if len(loaded.malformed) > 10:
        console.print(f"[yellow]... and {len(loaded.malformed) - 10} more malformed rows[/yellow]")
    index = TextIndex.build(loaded.passages, settings, index_type=index_type, bm25=bm25, progress=True)
    elapsed = time.perf_counter() - started
    stats = {**index.stats(), "corpus": loaded.stats(), "total_seconds": round(elapsed, 3),
             "passages_per_second": round(len(loaded.passages) / max(index.manifest.build_seconds, 1e-9), 1)}
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    console.print(f"built {stats['index_type']} index of {stats['passage_count']} passages "
                  f"({stats['corpus']['pmids']} PMIDs; {stats['corpus']['duplicates']} duplicates and "
                  f"{stats['corpus']['malformed']} malformed rows skipped) in {stats['build_seconds']:.1f} s "
                  f"({stats['passages_per_second']:.0f} passages/s), {stats['size_bytes'] / 1e6:.1f} MB at "
                  f"{stats['directory']}")


def search(
    query: str = typer.Argument(..., help="The query text."),
    k: int = typer.Option(10, "--k", min=1, help="How many passages to return."),
    fusion: Optional[str] = typer.Option(None, help="dense|bm25|rrf (default: settings.text_fusion)"),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
) -> None:
    """Search the text index; print passages with their PMIDs."""
    from kgrag.settings import load_settings
    from kgrag.indexes.text_index import TextIndex

    settings = load_settings()
    index = TextIndex.load(settings)
    hits = index.search([query], k=k, fusion=fusion)[0]  # type: ignore[arg-type]
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
