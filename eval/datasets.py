"""Benchmark loaders: each public benchmark file -> a list of :class:`EvalItem`.

Every loader returns a :class:`LoadedDataset` that holds the items, the file's SHA-256 and the
problems it met. A malformed row (no text, a label that is not one of the task's labels, a letter
answer with no option) is *dropped* and reported with its id; a row that can still be scored but is
suspicious (options that repeat, a gold answer that is not among the options) is *kept* and
reported. Nothing is skipped silently: ``len(items) + dropped == rows in the file``.

Datasets (the relative paths are under ``settings.sources_dir``):

=================  =============================================  ==============
name               file                                            task
=================  =============================================  ==============
biomixqa-tf        biomixqa/true_false_questions.csv               true_false
biomixqa-mcq       biomixqa/mcq_questions.csv                      mcq
pubmedqa           pubmedqa/pqal_dev_labelled.json (with abstract) yes_no_maybe
pubmedqa-qonly     pubmedqa/pqal_dev_labelled.json (question only) yes_no_maybe
medqa, medmcqa,    mirage/benchmark_without_pubmedqa.json          mcq
mmlu, bioasq
bioasq-factoid,    bioasq/ (the Task7B-11B golden files)           free
bioasq-list,
bioasq-summary
(and -qonly)
bioasq-yesno       bioasq/                                         mcq
(and -qonly)
=================  =============================================  ==============

The BioASQ Task B sets (factoid, list, summary, yes/no; see :mod:`eval.bioasq`) are read from the directory of
golden files; ``bioasq-<type>`` gives the gold snippets as the question's context (phase B), ``bioasq-<type>-qonly``
the question only (phase A+: retrieval from our index, which holds BioASQ's snippets). A directory's checksum is
:func:`eval.bioasq.tree_sha256`.

BioASQ-Y/N is loaded as an MCQ with the two options ``["yes", "no"]`` (MIRAGE's own options), so a
pipeline never answers "maybe" to it.

Example::

    from kgrag.settings import load_settings
    from eval.datasets import load_dataset
    data = load_dataset(load_settings(sources_dir="../shared/data"), "biomixqa-tf")
    data.items[0].question.text, data.items[0].gold
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from eval import bioasq
from eval.items import DatasetError, EvalItem, RowProblem
from kgrag.errors import SourceFileError
from kgrag.settings import Settings
from kgrag.sources import sha256_file, source_path
from kgrag.types import TASK_OPTIONS, Question, Task, option_key

MCQ_MARKER = "Given list is:"


class LoadedDataset(BaseModel):
    """A loaded benchmark: items, where they came from, and every problem met on the way."""

    name: str
    path: str
    sha256: str
    task: Task
    rows_in_file: int
    items: list[EvalItem]
    problems: list[RowProblem] = Field(default_factory=list)

    @property
    def dropped(self) -> list[RowProblem]:
        return [p for p in self.problems if p.dropped]

    @property
    def flagged(self) -> list[RowProblem]:
        return [p for p in self.problems if not p.dropped]

    def summary(self) -> dict[str, Any]:
        """Counts for a report: rows, items, dropped and flagged rows (with their ids)."""
        return {
            "dataset": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "rows_in_file": self.rows_in_file,
            "items": len(self.items),
            "dropped": len(self.dropped),
            "flagged": len(self.flagged),
            "problems": [p.model_dump() for p in self.problems],
        }


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one named benchmark."""

    name: str
    relative_path: str
    task: Task
    loader: Callable[[str, Path], tuple[list[EvalItem], list[RowProblem], int]]
    description: str


def _dedupe(options: list[str], gold: str) -> list[str]:
    """Options without repeats (compared as :func:`kgrag.types.option_key`: case and white space ignored),
    in order; of a repeated option the gold answer's spelling is kept, else the first."""
    kept: dict[str, str] = {}
    for option in options:
        key = option_key(option)
        if key not in kept or option == gold:
            kept[key] = option
    return list(kept.values())


def _check_options(item_id: str, options: list[str], gold: str, problems: list[RowProblem]) -> list[str]:
    """Report (without dropping) repeated options and a gold answer missing from the options."""
    unique = _dedupe(options, gold)
    if len(unique) != len(options):
        keys = [option_key(o) for o in options]
        repeated = sorted({o for o, k in zip(options, keys) if keys.count(k) > 1})
        problems.append(RowProblem(id=item_id, problem=f"options repeat: {repeated}; kept with {len(unique)} distinct options", dropped=False))
    if gold not in unique:
        problems.append(RowProblem(id=item_id, problem=f"gold {gold!r} is not among the options {unique}; kept, cannot be answered correctly", dropped=False))
    return unique


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path} as CSV: {exc}") from exc


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read {path} as JSON: {exc}") from exc


def _require_columns(path: Path, rows: list[dict[str, str]], columns: set[str]) -> None:
    if rows and not columns <= set(rows[0]):
        raise DatasetError(f"{path}: missing columns {sorted(columns - set(rows[0]))} (has {sorted(rows[0])})")


def load_biomixqa_tf(name: str, path: Path) -> tuple[list[EvalItem], list[RowProblem], int]:
    """KG-RAG true/false statements: columns ``'' (row index), text, label`` with label True/False."""
    rows = _read_csv(path)
    _require_columns(path, rows, {"text", "label"})
    items: list[EvalItem] = []
    problems: list[RowProblem] = []
    for number, row in enumerate(rows):
        index = (row.get("") or "").strip()
        item_id = f"tf-{index}" if index else f"tf-row{number}"
        text = (row.get("text") or "").strip()
        label = (row.get("label") or "").strip()
        if not text:
            problems.append(RowProblem(id=item_id, problem="empty text", dropped=True))
            continue
        if label not in ("True", "False"):
            problems.append(RowProblem(id=item_id, problem=f"label {label!r} is not True or False", dropped=True))
            continue
        question = Question(text=text, options=list(TASK_OPTIONS["true_false"]), task="true_false", id=item_id)
        items.append(EvalItem(id=item_id, dataset=name, question=question, gold=label, metadata={"row": number}))
    return items, problems, len(rows)


def split_mcq_text(text: str) -> tuple[str, list[str]] | None:
    """Split a KG-RAG MCQ into its stem and options (after "Given list is:"), or None if absent."""
    if MCQ_MARKER not in text:
        return None
    stem, _, tail = text.partition(MCQ_MARKER)
    options = [o.strip() for o in tail.split(",")]
    if not all(options):
        return None
    return stem.strip(), options


def load_biomixqa_mcq(name: str, path: Path) -> tuple[list[EvalItem], list[RowProblem], int]:
    """KG-RAG five-option MCQs: options from ``text`` after "Given list is:", gold ``correct_node``."""
    rows = _read_csv(path)
    _require_columns(path, rows, {"text", "correct_node", "disease_1", "disease_2"})
    items: list[EvalItem] = []
    problems: list[RowProblem] = []
    for number, row in enumerate(rows):
        item_id = f"mcq-{number}"
        text = (row.get("text") or "").strip()
        gold = (row.get("correct_node") or "").strip()
        split = split_mcq_text(text)
        if split is None:
            problems.append(RowProblem(id=item_id, problem=f"no option list after {MCQ_MARKER!r} (or an empty option)", dropped=True))
            continue
        if not gold:
            problems.append(RowProblem(id=item_id, problem="empty correct_node", dropped=True))
            continue
        options = _check_options(item_id, split[1], gold, problems)
        question = Question(text=text, options=options, task="mcq", id=item_id)
        metadata = {
            "row": number,
            "disease_1": (row.get("disease_1") or "").strip(),
            "disease_2": (row.get("disease_2") or "").strip(),
            "gold_in_options": gold in options,
        }
        items.append(EvalItem(id=item_id, dataset=name, question=question, gold=gold, metadata=metadata))
    return items, problems, len(rows)


def _load_pubmedqa(name: str, path: Path, with_context: bool) -> tuple[list[EvalItem], list[RowProblem], int]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object {{pmid: row}}, got {type(data).__name__}")
    items: list[EvalItem] = []
    problems: list[RowProblem] = []
    for pmid, row in data.items():
        item_id = str(pmid)
        if not isinstance(row, dict):
            problems.append(RowProblem(id=item_id, problem="row is not an object", dropped=True))
            continue
        text = str(row.get("QUESTION") or "").strip()
        label = str(row.get("final_decision") or "").strip().lower()
        contexts = row.get("CONTEXTS")
        if not text:
            problems.append(RowProblem(id=item_id, problem="empty QUESTION", dropped=True))
            continue
        if label not in TASK_OPTIONS["yes_no_maybe"]:
            problems.append(RowProblem(id=item_id, problem=f"final_decision {label!r} is not yes/no/maybe", dropped=True))
            continue
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts) or not contexts:
            problems.append(RowProblem(id=item_id, problem="CONTEXTS is not a non-empty list of strings", dropped=True))
            continue
        context = "\n".join(c.strip() for c in contexts) if with_context else None
        question = Question(text=text, options=list(TASK_OPTIONS["yes_no_maybe"]), task="yes_no_maybe", id=item_id, context=context)
        metadata = {"gold_pmids": [item_id], "year": row.get("YEAR"), "long_answer": row.get("LONG_ANSWER")}
        items.append(EvalItem(id=item_id, dataset=name, question=question, gold=label, metadata=metadata))
    return items, problems, len(data)


def load_pubmedqa(name: str, path: Path) -> tuple[list[EvalItem], list[RowProblem], int]:
    """PubMedQA PQA-L, reasoning-required setting: the abstract (joined CONTEXTS) is given."""
    return _load_pubmedqa(name, path, with_context=True)


def load_pubmedqa_qonly(name: str, path: Path) -> tuple[list[EvalItem], list[RowProblem], int]:
    """PubMedQA PQA-L, question only: retrieval must find the abstract (gold PMID kept in metadata)."""
    return _load_pubmedqa(name, path, with_context=False)


def _mirage_loader(subset: str) -> Callable[[str, Path], tuple[list[EvalItem], list[RowProblem], int]]:
    def load(name: str, path: Path) -> tuple[list[EvalItem], list[RowProblem], int]:
        data = _read_json(path)
        if not isinstance(data, dict) or subset not in data:
            raise DatasetError(f"{path}: no subset {subset!r} (has {sorted(data) if isinstance(data, dict) else type(data).__name__})")
        rows = data[subset]
        items: list[EvalItem] = []
        problems: list[RowProblem] = []
        for key, row in rows.items():
            item_id = str(key)
            if not isinstance(row, dict):
                problems.append(RowProblem(id=item_id, problem="row is not an object", dropped=True))
                continue
            text = str(row.get("question") or "").strip()
            letters = row.get("options")
            answer = str(row.get("answer") or "").strip()
            if not text:
                problems.append(RowProblem(id=item_id, problem="empty question", dropped=True))
                continue
            if not isinstance(letters, dict) or not letters or not all(isinstance(v, str) and v.strip() for v in letters.values()):
                problems.append(RowProblem(id=item_id, problem="options is not a non-empty {letter: text} object", dropped=True))
                continue
            if answer not in letters:
                problems.append(RowProblem(id=item_id, problem=f"answer {answer!r} is not one of the option letters {sorted(letters)}", dropped=True))
                continue
            letters = {str(k): v.strip() for k, v in letters.items()}
            gold = letters[answer]
            options = _check_options(item_id, list(letters.values()), gold, problems)
            metadata: dict[str, Any] = {"letters": letters, "answer_letter": answer}
            if "PMID" in row:
                metadata["gold_pmids"] = [str(p) for p in (row["PMID"] or [])]
            question = Question(text=text, options=options, task="mcq", id=item_id)
            items.append(EvalItem(id=item_id, dataset=name, question=question, gold=gold, metadata=metadata))
        return items, problems, len(rows)

    load.__doc__ = f"MIRAGE {subset}: options {{letter: text}}; gold is the answer letter's text."
    return load


MIRAGE_PATH = "mirage/benchmark_without_pubmedqa.json"
PUBMEDQA_PATH = "pubmedqa/pqal_dev_labelled.json"
BIOASQ_DIR = "bioasq"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("biomixqa-tf", "biomixqa/true_false_questions.csv", "true_false", load_biomixqa_tf,
                    "KG-RAG true/false statements (development split)"),
        DatasetSpec("biomixqa-mcq", "biomixqa/mcq_questions.csv", "mcq", load_biomixqa_mcq,
                    "KG-RAG five-option gene MCQs (development split)"),
        DatasetSpec("pubmedqa", PUBMEDQA_PATH, "yes_no_maybe", load_pubmedqa,
                    "PubMedQA PQA-L, reasoning-required (abstract given)"),
        DatasetSpec("pubmedqa-qonly", PUBMEDQA_PATH, "yes_no_maybe", load_pubmedqa_qonly,
                    "PubMedQA PQA-L, question only (retrieval must find the abstract)"),
        DatasetSpec("medqa", MIRAGE_PATH, "mcq", _mirage_loader("medqa"), "MIRAGE MedQA-US"),
        DatasetSpec("medmcqa", MIRAGE_PATH, "mcq", _mirage_loader("medmcqa"), "MIRAGE MedMCQA dev"),
        DatasetSpec("mmlu", MIRAGE_PATH, "mcq", _mirage_loader("mmlu"), "MIRAGE MMLU-Med"),
        DatasetSpec("bioasq", MIRAGE_PATH, "mcq", _mirage_loader("bioasq"), "MIRAGE BioASQ-Y/N (options yes/no)"),
        *(DatasetSpec(f"bioasq-{kind}{suffix}", BIOASQ_DIR, "mcq" if kind == "yesno" else "free",
                      bioasq.make_loader(kind, with_snippets=not suffix),
                      f"BioASQ Task B {kind} questions, " + (bioasq.INDEX_NOTE if suffix else bioasq.SNIPPETS_NOTE))
          for kind in ("factoid", "list", "summary", "yesno") for suffix in ("", "-qonly")),
    )
}

DatasetName = Literal["biomixqa-tf", "biomixqa-mcq", "pubmedqa", "pubmedqa-qonly", "medqa", "medmcqa", "mmlu", "bioasq",
                      "bioasq-factoid", "bioasq-factoid-qonly", "bioasq-list", "bioasq-list-qonly", "bioasq-summary",
                      "bioasq-summary-qonly", "bioasq-yesno", "bioasq-yesno-qonly"]


def get_spec(name: str) -> DatasetSpec:
    """The spec of a named dataset, or a :class:`DatasetError` listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None


def dataset_file(settings: Settings, name: str) -> Path:
    """The local file of a named dataset (through ``settings.sources_dir``)."""
    return source_path(settings, get_spec(name).relative_path)


def load_dataset_file(name: str, path: Path) -> LoadedDataset:
    """Load a named dataset from an explicit file, or directory for the BioASQ sets (tests use small fixtures
    this way)."""
    spec = get_spec(name)
    directory = spec.relative_path == BIOASQ_DIR
    if not (path.is_dir() if directory else path.is_file()):
        raise SourceFileError(f"dataset {name}: {'directory' if directory else 'file'} {path} not found")
    items, problems, rows = spec.loader(name, path)
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DatasetError(f"{path}: duplicate row id {item.id!r}")
        seen.add(item.id)
    checksum = bioasq.tree_sha256(path) if directory else sha256_file(path)
    return LoadedDataset(name=name, path=str(path), sha256=checksum, task=spec.task, rows_in_file=rows,
                         items=items, problems=problems)


def load_dataset(settings: Settings, name: str) -> LoadedDataset:
    """Load a named benchmark from the sources directory (see the module docstring for names)."""
    return load_dataset_file(name, dataset_file(settings, name))
