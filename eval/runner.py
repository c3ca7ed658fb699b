"""Batch runner: a named configuration over a benchmark, resumable, one JSONL row per question.

A run writes ``<out>/<dataset>/<config>-<fingerprint>.jsonl`` (append-only; each batch is flushed and
fsynced before the next starts) and ``<config>-<fingerprint>.meta.json`` beside it (settings, data
checksum, git commit, pipeline factory). ``fingerprint`` is the settings fingerprint; when a
non-default pipeline factory is used it is mixed in, so a fake run never shares a file with a real one.

Resume: on start the runner reads the file, keeps every complete row, ignores (and cuts off, with a
report) a torn last line left by a killed process, and skips the ids already done. A corrupt line
that is *not* the last one is an error, never skipped silently.

Pipeline factory hook: ``pipeline_factory="package.module:function"`` (CLI ``--pipeline``) imports
``function(settings)`` instead of ``kgrag.answer.pipeline.Pipeline.from_settings``; it must return an object
with ``answer_batch(list[Question]) -> list[Answer]``. Tests use it to run a slow fake pipeline in a
subprocess and kill it.

Example::

    from eval.runner import run_eval
    result = run_eval(settings, "biomixqa-tf", "kg", out_dir="runs", limit=20, seed=0)
    result.path, result.new_rows
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field
from tqdm import tqdm

from eval import bioasq
from eval.datasets import EvalItem, LoadedDataset, load_dataset
from eval.metrics import context_holds_answer
from eval.parsing import parse_answer
from kgrag.errors import InputError, KgragError
from kgrag.generators import resolve_generator
from kgrag.settings import Settings, redact_data
from kgrag.explain.subgraph import build_subgraph
from kgrag.types import Answer, Question

DEFAULT_FACTORY = "kgrag.answer.pipeline:Pipeline.from_settings"

CONFIGS: dict[str, dict[str, Any]] = {
    "no-rag": {"retrieval_mode": "none", "gate_mode": "never"},
    "kg": {"retrieval_mode": "kg", "gate_mode": "always"},
    "text": {"retrieval_mode": "text", "gate_mode": "always"},
    "kg+text": {"retrieval_mode": "kg+text", "gate_mode": "always"},
    "gated": {"retrieval_mode": "kg+text", "gate_mode": "gated"},
}


class RunError(KgragError):
    """A run cannot start or continue (bad configuration, corrupt run file, broken pipeline)."""


class RunInputError(RunError, InputError):
    """A run was asked for something that cannot be: an unknown configuration, a malformed factory name, a
    bad --limit or --batch-size, a run file that does not exist (the CLI exits with 2)."""


class BatchPipeline(Protocol):
    def answer_batch(self, questions: list[Question]) -> list[Answer]: ...


class EvidenceRef(BaseModel):
    """What a row keeps of one piece of evidence: enough for retrieval metrics, not the full text."""

    id: str
    kind: str
    sources: list[str] = Field(default_factory=list)
    score: float | None = None
    option: str | None = None


class ItemRef(BaseModel):
    """What a row keeps of one ``Answer.items`` entry: enough to score it (BioASQ) and to read it."""

    name: str
    synonyms: list[str] = Field(default_factory=list)
    id: str = ""
    label: str = ""
    strength: float | None = None
    origin: str = ""

    @property
    def names(self) -> list[str]:
        """The name, then the synonyms: all count as the same answer when matching."""
        return [self.name, *self.synonyms]


class RunRow(BaseModel):
    """One answered question, as written to the run's JSONL."""

    id: str
    dataset: str
    config: str
    fingerprint: str
    question: str
    options: list[str]
    gold: str
    prediction: str = Field(description="Answer.text")
    answer_choice: str | None = Field(description="Answer.choice as the pipeline gave it")
    parsed: str | None = Field(description="The option the answer maps to; None = unparseable")
    parse_method: str
    parse_detail: str = ""
    parse_failed: bool = Field(description="Options: no single option parsed. BioASQ factoid/list/summary: no answer "
                               "(no items, or no text for a summary); the row scores 0 and is counted, never dropped")
    correct: bool = Field(description="Options: the parsed option is the gold. BioASQ: factoid strict hit; list F1 = 1; "
                          "summary never (its measures are in ``scores``)")
    items: list[ItemRef] = Field(default_factory=list, description="Answer.items, best first")
    scores: dict[str, float] = Field(default_factory=dict, description="BioASQ rows: the row's measures (eval.bioasq.MEASURES)")
    abstained: bool = False
    support: str | None = Field(default=None, description="Answer.support: what decided the choice when evidence did "
                                "(direct, ontology, class, corpus, passage, identifier, absence); None: the LLM chose, or it abstained")
    support_confidence: float | None = None
    context_holds_answer: bool | None = None
    evidence: list[EvidenceRef] = Field(default_factory=list)
    gate: list[dict[str, Any]] = Field(default_factory=list)
    subgraph: dict[str, Any] | None = Field(default=None, description="The evidence as a kgrag.explain.subgraph.EvidenceSubgraph "
                                            "(JSON, defaults left out), for `kgrag eval-report --picture-rows`")
    usage: dict[str, int] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    batch_size: int = Field(default=1, description="Questions in the answer_batch() call that answered this row")
    batch_ms: float | None = Field(default=None, description="Wall time of that call, measured by the runner")
    metadata: dict[str, Any] = Field(default_factory=dict)
    git_commit: str = ""
    written_at: str = ""


class RunFile(BaseModel):
    """The rows read back from a run file, and what was wrong with its tail."""

    rows: list[RunRow]
    torn_tail: str | None = Field(default=None, description="The torn last line that was ignored, if any")
    good_bytes: int = Field(description="Bytes of the file up to the end of its last complete row")
    duplicates: list[str] = Field(default_factory=list)


class RunResult(BaseModel):
    """What a call of :func:`run_eval` did."""

    path: Path
    meta_path: Path
    dataset: str
    config: str
    fingerprint: str
    selected: int = Field(description="Rows selected for this run (after seed and limit)")
    already_done: int
    new_rows: int
    torn_tail: str | None = None
    load: dict[str, Any]
    elapsed_s: float
    gate_failed_rows: int = Field(default=0, description="Rows of the run file whose gate could not reach its statistics "
                                  "(a decision with failed=true): the gate decided nothing for them")


def config_settings(base: Settings, config: str) -> Settings:
    """The settings of a named configuration: ``base`` with its retrieval and gate modes overridden."""
    try:
        overrides = CONFIGS[config]
    except KeyError:
        raise RunInputError(f"unknown configuration {config!r}; choose one of {sorted(CONFIGS)}") from None
    return base.model_copy(update=overrides)


def import_factory(dotted: str) -> Callable[[Settings], BatchPipeline]:
    """Import ``package.module:attr.attr`` (a callable taking Settings and returning a pipeline)."""
    module_name, sep, attr_path = dotted.partition(":")
    if not sep or not module_name or not attr_path:
        raise RunInputError(f"pipeline factory {dotted!r} must look like 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RunError(f"cannot import pipeline factory module {module_name!r}: {exc}") from exc
    for part in attr_path.split("."):
        if not hasattr(target, part):
            raise RunError(f"pipeline factory {dotted!r}: {part!r} not found")
        target = getattr(target, part)
    if not callable(target):
        raise RunError(f"pipeline factory {dotted!r} is not callable")
    return target


def run_fingerprint(settings: Settings, factory: str = DEFAULT_FACTORY) -> str:
    """The settings fingerprint, with a non-default pipeline factory mixed in."""
    base = settings.fingerprint()
    if factory == DEFAULT_FACTORY:
        return base
    return hashlib.sha256(f"{base}|{factory}".encode()).hexdigest()[:12]


def run_path(out_dir: Path, dataset: str, config: str, fingerprint: str) -> Path:
    """``<out>/<dataset>/<config>-<fingerprint>.jsonl`` (a '+' in the config name is kept)."""
    return Path(out_dir) / dataset / f"{config}-{fingerprint}.jsonl"


def meta_path_for(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl") + ".meta.json")


def git_commit(repo: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the repository holding this package (``+dirty`` when tracked files
    differ from it), or "unknown"."""
    where = repo or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=where, capture_output=True, timeout=10).returncode
        return commit + ("+dirty" if dirty == 1 else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def read_run(path: Path) -> RunFile:
    """Read a run file: every complete row; a torn *last* line is reported, any other bad line raises."""
    if not path.exists():
        return RunFile(rows=[], good_bytes=0)
    data = path.read_bytes()
    rows: list[RunRow] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    offset = 0
    torn: str | None = None
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        is_last = number == len(lines)
        if is_last and raw == b"":
            break  # file ends with a newline
        try:
            if is_last:
                raise ValueError("no newline at end of file")
            row = RunRow.model_validate_json(raw)
        except ValueError as exc:
            if is_last:
                torn = raw.decode("utf-8", "replace")[:200]
                break
            raise RunError(f"{path}: line {number} is not a valid run row ({str(exc)[:200]}); fix or remove the file") from None
        if row.id in seen:
            duplicates.append(row.id)
        seen.add(row.id)
        rows.append(row)
        offset += len(raw) + 1
    return RunFile(rows=rows, torn_tail=torn, good_bytes=offset, duplicates=duplicates)


def select_items(items: list[EvalItem], limit: int | None, seed: int | None) -> list[EvalItem]:
    """File order, or a seeded shuffle when ``seed`` is given; then the first ``limit``."""
    chosen = list(items)
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    if limit is not None:
        if limit < 0:
            raise RunInputError(f"--limit must be >= 0 (got {limit})")
        chosen = chosen[:limit]
    return chosen


def make_row(item: EvalItem, answer: Answer, config: str, fingerprint: str, commit: str = "", batch_size: int = 1,
             batch_ms: float | None = None) -> RunRow:
    """Score one answer against its item and keep what the reports need."""
    if answer.question_id is not None and item.question.id is not None and answer.question_id != item.question.id:
        raise RunError(f"answer for question {answer.question_id!r} came back in the place of {item.question.id!r}")
    options = item.question.options or []
    kind = item.metadata.get("bioasq_type")
    if kind in bioasq.MEASURES:
        return _free_row(item, answer, kind, config, fingerprint, commit, batch_size, batch_ms)
    parsed = parse_answer(answer, options)
    return RunRow(
        id=item.id, dataset=item.dataset, config=config, fingerprint=fingerprint, question=item.question.text,
        options=options, gold=item.gold, prediction=answer.text, answer_choice=answer.choice,
        parsed=parsed.choice, parse_method=parsed.method, parse_detail=parsed.detail, parse_failed=parsed.failed,
        correct=parsed.choice is not None and parsed.choice == item.gold, abstained=answer.abstained,
        support=answer.support, support_confidence=answer.support_confidence,
        context_holds_answer=context_holds_answer(item.gold, [e.text for e in answer.evidence]),
        evidence=[EvidenceRef(id=e.id, kind=e.kind, sources=e.sources, score=e.score, option=e.option) for e in answer.evidence],
        gate=[g.model_dump(mode="json") for g in answer.gate],
        subgraph=build_subgraph(answer, options=options or None, gold=item.gold).model_dump(mode="json", exclude_defaults=True),
        usage=answer.usage.model_dump(), timings_ms=dict(answer.timings_ms), batch_size=batch_size, batch_ms=batch_ms,
        metadata=item.metadata, git_commit=commit,
        written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _free_row(item: EvalItem, answer: Answer, kind: str, config: str, fingerprint: str, commit: str, batch_size: int,
              batch_ms: float | None) -> RunRow:
    """A BioASQ factoid, list or summary row: the answer's items and text scored with BioASQ's measures."""
    items = [ItemRef(name=i.name, synonyms=list(i.synonyms), id=i.id, label=i.label, strength=i.strength, origin=i.origin)
             for i in answer.items]
    scores = bioasq.score_row(kind, item.metadata, [i.names for i in items], answer.text)
    no_answer = not answer.text.strip() if kind == "summary" else not items
    method = "none" if no_answer else ("text" if kind == "summary" else "items")
    detail = "no answer: scored 0" if no_answer else (f"{len(items)} items" if kind != "summary" else f"{len(answer.text.split())} words")
    correct = scores.get("strict", 0.0) == 1.0 if kind == "factoid" else (scores.get("f1", 0.0) == 1.0 if kind == "list" else False)
    holds = (bioasq.context_holds_gold(item.metadata.get("exact_answer") or [], [e.text for e in answer.evidence])
             if kind != "summary" else None)
    return RunRow(
        id=item.id, dataset=item.dataset, config=config, fingerprint=fingerprint, question=item.question.text, options=[],
        gold=item.gold, prediction=answer.text, answer_choice=answer.choice, parsed=None if no_answer else (items[0].name if items else "text"),
        parse_method=method, parse_detail=detail, parse_failed=no_answer, correct=correct, abstained=answer.abstained,
        items=items, scores=scores, context_holds_answer=holds,
        evidence=[EvidenceRef(id=e.id, kind=e.kind, sources=e.sources, score=e.score, option=e.option) for e in answer.evidence],
        gate=[g.model_dump(mode="json") for g in answer.gate],
        subgraph=build_subgraph(answer).model_dump(mode="json", exclude_defaults=True),
        usage=answer.usage.model_dump(), timings_ms=dict(answer.timings_ms), batch_size=batch_size, batch_ms=batch_ms,
        metadata=item.metadata, git_commit=commit, written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _append(handle: Any, rows: Iterable[RunRow], settings: Settings) -> None:
    handle.write("".join(json.dumps(redact_data(row.model_dump(mode="json"), settings), ensure_ascii=False,
                                    separators=(",", ":")) + "\n" for row in rows))  # no credential in a run file
    handle.flush()
    os.fsync(handle.fileno())


def gate_failed_rows(path: Path) -> int:
    """Rows of the run file at ``path`` with a gate decision that failed (statistics unreachable)."""
    return sum(any(g.get("failed") for g in row.gate) for row in read_run(path).rows) if path.exists() else 0


def _write_meta(path: Path, settings: Settings, dataset: LoadedDataset, config: str, fingerprint: str, factory: str,
                gate_failed_rows: int = 0) -> None:
    meta = {"gate_failed_rows": gate_failed_rows,
        "dataset": dataset.name, "config": config, "fingerprint": fingerprint, "settings_fingerprint": settings.fingerprint(),
        "model": settings.llm_model, "backend": resolve_generator(settings), "pipeline_factory": factory,
        "data_path": dataset.path, "data_sha256": dataset.sha256, "git_commit": git_commit(),
        "load": {k: v for k, v in dataset.summary().items() if k != "problems"}, "problems": dataset.summary()["problems"],
        "settings": settings.public_dict(), "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(redact_data(json.loads(json.dumps(meta, default=str)), settings), indent=2))
    tmp.replace(path)


def run_eval(settings: Settings, dataset: str, config: str, out_dir: Path | str = "runs", limit: int | None = None,
             seed: int | None = None, batch_size: int = 8, pipeline_factory: str = DEFAULT_FACTORY,
             progress: bool = True, log: Callable[[str], None] = print, loaded: LoadedDataset | None = None) -> RunResult:
    """Run (or resume) ``config`` on ``dataset``; see the module docstring. Returns what was done."""
    if batch_size <= 0:
        raise RunInputError(f"--batch-size must be > 0 (got {batch_size})")
    started = time.monotonic()
    run_settings = config_settings(settings, config)
    data = loaded or load_dataset(run_settings, dataset)
    for problem in data.problems:
        log(f"{dataset} row {problem.id}: {problem.problem}{' (dropped)' if problem.dropped else ''}")
    fingerprint = run_fingerprint(run_settings, pipeline_factory)
    path = run_path(Path(out_dir), dataset, config, fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path):
        return _run_locked(path, run_settings, data, dataset, config, fingerprint, limit, seed, batch_size, pipeline_factory,
                           progress, log, started)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<run>.lock`` so two processes never append to one run file."""
    lock_path = path.with_name(path.name + ".lock")
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"{path} is being written by another run (lock {lock_path}); wait for it or stop it") from None
        yield


def _run_locked(path: Path, run_settings: Settings, data: LoadedDataset, dataset: str, config: str, fingerprint: str,
                limit: int | None, seed: int | None, batch_size: int, pipeline_factory: str, progress: bool,
                log: Callable[[str], None], started: float) -> RunResult:
    existing = read_run(path)
    if existing.duplicates:
        raise RunError(f"{path}: ids written more than once {existing.duplicates[:10]}; the file was edited by hand?")
    if existing.torn_tail is not None:
        log(f"{path}: ignored a torn last line from an interrupted run ({len(existing.torn_tail)} chars): {existing.torn_tail[:80]!r}")
        with path.open("r+b") as handle:
            handle.truncate(existing.good_bytes)
    done = {row.id for row in existing.rows}
    selected = select_items(data.items, limit, seed)
    todo = [item for item in selected if item.id not in done]
    meta = meta_path_for(path)
    _write_meta(meta, run_settings, data, config, fingerprint, pipeline_factory)
    new_rows = 0
    commit = git_commit()
    if todo:
        pipeline = import_factory(pipeline_factory)(run_settings)
        if not hasattr(pipeline, "answer_batch"):
            raise RunError(f"pipeline from {pipeline_factory} has no answer_batch()")
        bar = tqdm(total=len(selected), initial=len(selected) - len(todo), desc=f"{dataset}/{config}", unit="q",
                   disable=not progress, dynamic_ncols=True)
        with path.open("a", encoding="utf-8") as handle, bar:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                try:
                    tick = time.perf_counter()
                    answers = pipeline.answer_batch([item.question for item in batch])
                    batch_ms = 1000.0 * (time.perf_counter() - tick)
                except BaseException:
                    log(f"run stopped: answer_batch failed on ids {[item.id for item in batch]}; {len(done) + new_rows} rows are "
                        f"saved in {path}; rerun the same command to resume")
                    raise
                if len(answers) != len(batch):
                    raise RunError(f"answer_batch returned {len(answers)} answers for {len(batch)} questions")
                _append(handle, [make_row(item, answer, config, fingerprint, commit, len(batch), batch_ms)
                                 for item, answer in zip(batch, answers)], run_settings)
                new_rows += len(batch)
                bar.update(len(batch))
    gate_failed = gate_failed_rows(path)
    if gate_failed:
        _write_meta(meta, run_settings, data, config, fingerprint, pipeline_factory, gate_failed_rows=gate_failed)
        log(f"{gate_failed} row(s) of {path.name} were answered without the gate's statistics (they failed); see "
            "each row's gate decision")
    return RunResult(path=path, meta_path=meta, dataset=dataset, config=config, fingerprint=fingerprint, selected=len(selected),
                     already_done=len(selected) - len(todo), new_rows=new_rows, torn_tail=existing.torn_tail,
                     load={k: v for k, v in data.summary().items() if k != "problems"}, elapsed_s=time.monotonic() - started,
                     gate_failed_rows=gate_failed)
