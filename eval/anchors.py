"""Rescore the published KG-RAG answers (biomixqa/anchor_results/*.csv) with our parser on our rows.

Each anchor file holds one model in one setting: ``question,label,llm_answer`` (true/false) or
``question,correct_answer,llm_answer`` (MCQ). Rows are matched to the development split by question
text (whitespace-normalised); the gold is *ours* (the dev split's), and a disagreement with the
file's own label column is counted. Anchor rows outside the split are counted, not scored.
An answer that maps to no single option is scored wrong and counted as unparseable.

File names encode model and setting: ``<model>_prompt_based_...`` is the prompt-only setting and
``<model>_PubMedBert..._rag_based_...`` is KG-RAG.

Example::

    from eval.anchors import score_anchors
    for s in score_anchors(settings, "biomixqa-tf"):
        print(s.model, s.setting, s.score.accuracy.fmt())
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from pydantic import BaseModel, Field

from eval.datasets import DatasetError, EvalItem, LoadedDataset, load_dataset
from eval.metrics import DEFAULT_BOOT, Score, score
from eval.parsing import parse_text
from kgrag.settings import Settings
from kgrag.sources import sources_root

ANCHOR_DIR = "biomixqa/anchor_results"
ANCHOR_DATASETS = {"biomixqa-tf": "true_false", "biomixqa-mcq": "mcq"}
MODEL_NAMES = {"Llama_2_13b_chat_hf": "Llama-2-13b-chat", "gpt_35_turbo": "GPT-3.5-turbo", "gpt_4": "GPT-4"}


class AnchorScore(BaseModel):
    """One anchor file rescored on the dev rows."""

    dataset: str
    model: str
    setting: str = Field(description="'prompt' (no retrieval) or 'kg-rag'")
    file: str
    file_rows: int
    matched: int = Field(description="Dev rows found in the file (by question text)")
    missing: list[str] = Field(default_factory=list, description="Dev row ids with no answer in the file")
    extra_rows: int = Field(description="File rows not in the dev split (not scored)")
    label_disagreements: list[str] = Field(default_factory=list, description="Dev ids where the file's label differs from ours")
    parse_failed: int
    parse_failed_ids: list[str] = Field(default_factory=list)
    score: Score | None

    def table_row(self) -> dict[str, object]:
        """Compact form for reports and CLI JSON."""
        return {"dataset": self.dataset, "model": self.model, "setting": self.setting, "matched": self.matched,
                "missing": len(self.missing), "parse_failed": self.parse_failed,
                "accuracy": self.score.accuracy.model_dump() if self.score else None,
                "macro_f1": self.score.macro_f1.model_dump() if self.score else None, "file": self.file}


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def describe_file(name: str) -> tuple[str, str, str]:
    """(dataset, model, setting) from an anchor file name; :class:`DatasetError` if it is not one."""
    dataset = "biomixqa-tf" if "true_false" in name else "biomixqa-mcq" if "mcq" in name else None
    match = re.match(r"(.+?)_(prompt_based|PubMedBert)", name)
    if dataset is None or match is None:
        raise DatasetError(f"{name}: not a KG-RAG anchor file name (expected <model>_prompt_based_... or <model>_PubMedBert_..., true_false or mcq)")
    setting = "prompt" if match.group(2) == "prompt_based" else "kg-rag"
    return dataset, MODEL_NAMES.get(match.group(1), match.group(1)), setting


def anchor_files(directory: Path, dataset: str) -> list[Path]:
    """The anchor CSVs of one dataset, sorted by name."""
    if dataset not in ANCHOR_DATASETS:
        raise DatasetError(f"anchors exist only for {sorted(ANCHOR_DATASETS)} (got {dataset!r})")
    if not directory.is_dir():
        raise DatasetError(f"anchor directory {directory} not found (set KGRAG_SOURCES_DIR)")
    return [p for p in sorted(directory.glob("*.csv")) if describe_file(p.name)[0] == dataset]


def score_anchor_file(path: Path, data: LoadedDataset, ids: set[str] | None = None, n_boot: int = DEFAULT_BOOT,
                      seed: int = 0) -> AnchorScore:
    """Rescore one anchor file on ``data``'s items (restricted to ``ids`` if given)."""
    dataset, model, setting = describe_file(path.name)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"question", "llm_answer"} <= set(rows[0]):
        raise DatasetError(f"{path}: expected columns question, llm_answer (has {sorted(rows[0])})")
    label_col = "label" if rows and "label" in rows[0] else "correct_answer"
    by_text: dict[str, dict[str, str]] = {}
    for row in rows:
        by_text.setdefault(_norm(row["question"]), row)
    items: list[EvalItem] = [it for it in data.items if ids is None or it.id in ids]
    matched: list[tuple[EvalItem, dict[str, str]]] = []
    missing: list[str] = []
    for item in items:
        row = by_text.get(_norm(item.question.text))
        if row is None:
            missing.append(item.id)
        else:
            matched.append((item, row))
    dev_texts = {_norm(it.question.text) for it in data.items}
    preds: list[str | None] = []
    failed_ids: list[str] = []
    disagreements: list[str] = []
    for item, row in matched:
        parsed = parse_text(row.get("llm_answer"), item.question.options or [])
        preds.append(parsed.choice)
        if parsed.failed:
            failed_ids.append(item.id)
        if (row.get(label_col) or "").strip() != item.gold:
            disagreements.append(item.id)
    result = score([it.gold for it, _ in matched], preds, [it.question.options or [] for it, _ in matched], n_boot=n_boot, seed=seed) if matched else None
    return AnchorScore(dataset=dataset, model=model, setting=setting, file=path.name, file_rows=len(rows), matched=len(matched),
                       missing=missing, extra_rows=sum(1 for t in by_text if t not in dev_texts), label_disagreements=disagreements,
                       parse_failed=len(failed_ids), parse_failed_ids=failed_ids, score=result)


def score_anchors(settings: Settings, dataset: str, ids: set[str] | None = None, data: LoadedDataset | None = None,
                  n_boot: int = DEFAULT_BOOT, seed: int = 0) -> list[AnchorScore]:
    """Rescore every anchor file of ``dataset`` on the dev rows (or the subset ``ids``)."""
    if dataset not in ANCHOR_DATASETS:
        raise DatasetError(f"anchors exist only for {sorted(ANCHOR_DATASETS)} (got {dataset!r})")
    data = data or load_dataset(settings, dataset)
    directory = sources_root(settings) / ANCHOR_DIR
    return [score_anchor_file(p, data, ids, n_boot, seed) for p in anchor_files(directory, dataset)]
