"""BioASQ Task B from its golden files: loaders, the official measures, and trivial baselines.

Datasets (all read ``bioasq/Task*BGoldenEnriched/*_golden.json`` under ``settings.sources_dir``):

======================  ========  ==================================================================
name                    type      setting
======================  ========  ==================================================================
bioasq-factoid          factoid   phase B: the gold snippets are the question's ``context``
bioasq-factoid-qonly    factoid   phase A+: question only; retrieval from our index
bioasq-list             list      phase B
bioasq-list-qonly       list      phase A+
bioasq-summary          summary   phase B
bioasq-summary-qonly    summary   phase A+
bioasq-yesno            yesno     phase B, scored as an MCQ with options ``["yes", "no"]``
bioasq-yesno-qonly      yesno     phase A+
======================  ========  ==================================================================

The built text index holds BioASQ's snippets (README of the shared data), so in the question-only
setting retrieval can find the very snippets phase B gives: reports say so beside every score.

Loading: files are read in (task, batch) order, 7B1 ... 11B4; a question id that repeats (across years or
batches) keeps its *latest* copy (golden answers are revised) and every earlier copy is reported as a dropped
row naming both files, so ``len(items) + dropped == rows``. Questions with the same text under different ids are
kept and flagged. A factoid or list question without an exact answer, or a summary without an ideal answer, is
dropped and reported.

Measures (BioASQ's, as its evaluation code computes them; see docs/bioasq.md):

- matching: an answer string matches a gold synonym when both are equal after :func:`normalize` (Unicode NFKC,
  case-folded, white space collapsed, outer punctuation trimmed). An item's synonyms are the same answer.
- factoid: the first five items. strict accuracy (the first item matches a gold synonym), lenient accuracy (one
  of the five does), reciprocal rank of the first matching item (0 when none); means over questions.
- list: every item. Items are taken in rank order; an item is a true positive when it matches a gold answer not
  yet matched (each gold answer - a list of synonyms - is matched once, as the official code removes it).
  precision = TP / items, recall = TP / gold answers, F1 of the two (0 when both are 0); means over questions.
- summary: ROUGE-2 and ROUGE-SU4 (skip gap 4, with unigrams) of ``Answer.text`` against the ideal answers, recall
  and F1, from ``rouge-metric`` (a Python re-implementation of ROUGE-1.5.5, which is what BioASQ runs);
  several ideal answers are pooled as ROUGE-1.5.5's default (``multi_ref_mode="average"``); text is lower-cased
  and split into runs of letters and digits (ROUGE-1.5.5's own pre-processing), no stemming, no stop-word removal.
- a question with no items (factoid, list) or no text (summary) scores 0 on every measure and is counted as
  "no answer"; it is never dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from eval.items import DatasetError, EvalItem, RowProblem
from eval.metrics import DEFAULT_BOOT, Interval, bootstrap
from kgrag.types import Question

BioasqType = Literal["factoid", "list", "summary", "yesno"]
FACTOID_DEPTH = 5
"""Factoid answers scored: the first five (BioASQ's limit)."""
LIST_BASELINE_SIZE = 5
"""Answers the snippet-n-gram baseline gives for a list question (a fixed size: no peeking at the gold length)."""

GOLDEN_GLOB = "Task*BGoldenEnriched/*_golden.json"
INDEX_NOTE = ("question only (phase A+): retrieval from our text index, which holds BioASQ's snippets "
              "(the gold snippets of these very questions can be retrieved)")
SNIPPETS_NOTE = "gold snippets given (phase B): the snippets are the question's context"

MEASURES: dict[str, list[str]] = {
    "factoid": ["strict", "lenient", "mrr"],
    "list": ["precision", "recall", "f1"],
    "summary": ["rouge2_recall", "rouge2_f1", "rougesu4_recall", "rougesu4_f1"],
}
PRIMARY = {"factoid": "mrr", "list": "f1", "summary": "rouge2_recall"}
"""The measure a run is ranked by (BioASQ's own: MRR for factoid, mean F1 for list; ROUGE-2 recall for summaries)."""

MEASURE_LABELS = {"strict": "strict acc.", "lenient": "lenient acc.", "mrr": "MRR", "precision": "mean P", "recall": "mean R",
                  "f1": "mean F1", "rouge2_recall": "ROUGE-2 R", "rouge2_f1": "ROUGE-2 F1", "rougesu4_recall": "ROUGE-SU4 R",
                  "rougesu4_f1": "ROUGE-SU4 F1"}


# --- files ------------------------------------------------------------------------------------


def _order(path: Path) -> tuple[int, int, str]:
    """(task number, batch number, name) of ``.../Task9BGoldenEnriched/9B2_golden.json``: years in order."""
    match = re.match(r"(\d+)B(\d+)", path.name)
    return (int(match.group(1)), int(match.group(2)), path.name) if match else (10**6, 10**6, path.name)


def golden_files(root: Path) -> list[Path]:
    """The golden files under ``root`` (the ``bioasq`` directory), oldest task and batch first."""
    return sorted(root.glob(GOLDEN_GLOB), key=_order)


def tree_sha256(root: Path) -> str:
    """SHA-256 of a directory: over the lines ``<relative path> <sha256 of the file>`` of every file under it,
    sorted by path (so any changed, added or removed file changes it)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root).as_posix()} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


# --- answers ----------------------------------------------------------------------------------

_OUTER = " \t\r\n\"'`*.,;:!?()[]{}"


def normalize(text: str) -> str:
    """The form answers are compared in: NFKC, case-folded, runs of white space made one space, outer white space
    and punctuation trimmed ("The BRCA1 gene." -> "the brca1 gene"; inner hyphens and slashes are kept)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).strip(_OUTER)


def gold_synonyms(exact: Any, kind: str = "list") -> list[list[str]]:
    """A golden ``exact_answer`` as a list of answers, each a list of synonyms. A flat list of strings is, for a
    factoid, the synonyms of its one answer (older files' format), for a list question one answer per string; a
    bare string is one answer."""
    if isinstance(exact, str):
        return [[exact.strip()]] if exact.strip() else []
    if not isinstance(exact, list):
        return []
    if kind == "factoid" and exact and all(isinstance(e, str) for e in exact):
        names = [e.strip() for e in exact if e.strip()]
        return [names] if names else []
    out: list[list[str]] = []
    for entry in exact:
        names = [entry] if isinstance(entry, str) else [n for n in entry if isinstance(n, str)] if isinstance(entry, list) else []
        names = [n.strip() for n in names if n.strip()]
        if names:
            out.append(names)
    return out


def _keys(names: Sequence[str]) -> set[str]:
    return {k for n in names if (k := normalize(n))}


class FactoidRowScore(BaseModel):
    strict: float
    lenient: float
    mrr: float
    rank: int | None = Field(description="1-based rank of the first item that matches (within the first five), or None")


def score_factoid(gold: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]) -> FactoidRowScore:
    """Strict/lenient accuracy and reciprocal rank of ranked predictions (each a list of synonyms, the first the
    name) against the gold synonyms (any gold answer's synonym counts)."""
    wanted = _keys([name for answer in gold for name in answer])
    rank = next((i for i, names in enumerate(predictions[:FACTOID_DEPTH], 1) if _keys(names) & wanted), None)
    return FactoidRowScore(strict=float(rank == 1), lenient=float(rank is not None), mrr=1.0 / rank if rank else 0.0, rank=rank)


class ListRowScore(BaseModel):
    precision: float
    recall: float
    f1: float
    true_positives: int


def score_list(gold: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]) -> ListRowScore:
    """Precision, recall and F1 of a predicted list: predictions in rank order, each matching the first gold answer
    (list of synonyms) not yet matched that shares a synonym with it; each gold answer is matched once."""
    open_golds = [_keys(answer) for answer in gold]
    tp = 0
    for names in predictions:
        keys = _keys(names)
        hit = next((i for i, g in enumerate(open_golds) if g is not None and keys & g), None)
        if hit is not None:
            open_golds[hit] = None  # type: ignore[call-overload]
            tp += 1
    precision = tp / len(predictions) if predictions else 0.0
    recall = tp / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return ListRowScore(precision=precision, recall=recall, f1=f1, true_positives=tp)


def rouge_tokens(text: str) -> list[str]:
    """ROUGE-1.5.5's pre-processing: lower case, every run of characters other than letters and digits a break."""
    return re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKC", text).lower())


class SummaryRowScore(BaseModel):
    rouge2_recall: float
    rouge2_f1: float
    rougesu4_recall: float
    rougesu4_f1: float


_ROUGE: Any = None


def score_summary(text: str, ideal: Sequence[str]) -> SummaryRowScore:
    """ROUGE-2 and ROUGE-SU4 (recall, F1) of ``text`` against the ideal answers, by ``rouge-metric``."""
    global _ROUGE
    hyp = rouge_tokens(text)
    refs = [tokens for r in ideal if (tokens := rouge_tokens(r))]
    if not hyp or not refs:
        return SummaryRowScore(rouge2_recall=0.0, rouge2_f1=0.0, rougesu4_recall=0.0, rougesu4_f1=0.0)
    if _ROUGE is None:
        from rouge_metric import PyRouge

        _ROUGE = PyRouge(rouge_n=(2,), rouge_l=False, rouge_su=True, skip_gap=4, multi_ref_mode="average")
    scores = _ROUGE.evaluate_tokenized([[hyp]], [[[r] for r in refs]])
    return SummaryRowScore(rouge2_recall=scores["rouge-2"]["r"], rouge2_f1=scores["rouge-2"]["f"],
                           rougesu4_recall=scores["rouge-su4"]["r"], rougesu4_f1=scores["rouge-su4"]["f"])


def score_row(kind: str, metadata: dict[str, Any], predictions: Sequence[Sequence[str]], text: str) -> dict[str, float]:
    """The row's measures for its BioASQ type (see :data:`MEASURES`)."""
    if kind == "factoid":
        return score_factoid(metadata["exact_answer"], predictions).model_dump(exclude={"rank"})
    if kind == "list":
        return score_list(metadata["exact_answer"], predictions).model_dump(exclude={"true_positives"})
    if kind == "summary":
        return score_summary(text, metadata["ideal_answer"]).model_dump()
    raise ValueError(f"no BioASQ measures for type {kind!r}")


def context_holds_gold(gold: Sequence[Sequence[str]], texts: Sequence[str]) -> bool | None:
    """Whether a gold synonym appears (whole word, any case) in the evidence texts; None without gold answers."""
    names = [n for answer in gold for n in answer if n.strip()]
    if not names:
        return None
    joined = "\n".join(texts)
    return any(re.search(r"(?<![\w-])" + re.escape(n.strip()) + r"(?![\w-])", joined, re.IGNORECASE) for n in names)


# --- baselines --------------------------------------------------------------------------------


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/.+']*[A-Za-z0-9+]|[A-Za-z0-9]")


def snippet_ngrams(question: str, snippets: Sequence[str], k: int, max_n: int = 3) -> list[list[str]]:
    """A trivial answer: the ``k`` word n-grams (n <= 3) found in the most snippets, among n-grams of no stop word
    (scikit-learn's English list) and not made only of the question's words; ties: longer first, then first seen.
    Each is returned as a one-synonym answer, spelt as first seen."""
    stop = _stop_words()
    asked = {t.lower() for t in _TOKEN.findall(question)}
    found: Counter[str] = Counter()
    spelling: dict[str, str] = {}
    order: dict[str, int] = {}
    for snippet in snippets:
        tokens = _TOKEN.findall(snippet)
        seen: set[str] = set()
        for n in range(1, max_n + 1):
            for i in range(len(tokens) - n + 1):
                gram = tokens[i : i + n]
                lowered = [t.lower() for t in gram]
                if any(t in stop for t in lowered) or all(t in asked for t in lowered):
                    continue
                key = " ".join(lowered)
                if key not in seen:
                    seen.add(key)
                    found[key] += 1
                    spelling.setdefault(key, " ".join(gram))
                    order.setdefault(key, len(order))
    ranked = sorted(found, key=lambda g: (-found[g], -g.count(" "), order[g]))
    return [[spelling[g]] for g in ranked[:k]]


def lead_summary(snippets: Sequence[str], ideal: Sequence[str]) -> str:
    """The snippets in their given order, cut to the mean length (ROUGE tokens) of the ideal answers."""
    lengths = [len(rouge_tokens(i)) for i in ideal if rouge_tokens(i)]
    budget = round(float(np.mean(lengths))) if lengths else 0
    words = " ".join(snippets).split()
    out: list[str] = []
    count = 0
    for word in words:
        if count >= budget:
            break
        out.append(word)
        count += len(rouge_tokens(word))
    return " ".join(out)


class BaselineSpec(BaseModel):
    name: str
    description: str


def baseline_predictions(kind: str, question: str, metadata: dict[str, Any]) -> tuple[BaselineSpec, list[list[str]], str]:
    """The trivial baseline of a BioASQ type for one row: (what it is, its ranked answers, its text)."""
    snippets = list(metadata.get("snippets") or [])
    if kind == "factoid":
        return (BaselineSpec(name="snippet-ngrams", description="the 5 word n-grams (n <= 3, no stop word, not only question "
                             "words) found in the most gold snippets"), snippet_ngrams(question, snippets, FACTOID_DEPTH), "")
    if kind == "list":
        return (BaselineSpec(name="snippet-ngrams", description=f"the {LIST_BASELINE_SIZE} word n-grams (n <= 3, no stop word, not only "
                             "question words) found in the most gold snippets"), snippet_ngrams(question, snippets, LIST_BASELINE_SIZE), "")
    if kind == "summary":
        return (BaselineSpec(name="lead", description="the gold snippets in order, cut to the mean length of the ideal answers"),
                [], lead_summary(snippets, metadata.get("ideal_answer") or []))
    raise ValueError(f"no BioASQ baseline for type {kind!r}")


# --- summaries over rows ----------------------------------------------------------------------


class BioasqBaseline(BaseModel):
    name: str
    description: str
    measures: dict[str, Interval]


class BioasqScore(BaseModel):
    """A run's BioASQ measures over its rows, with intervals and the trivial baselines on the same rows."""

    kind: Literal["factoid", "list", "summary"]
    setting: str = Field(description="What the system was given: gold snippets (phase B) or the question only (phase A+)")
    n: int
    no_answer: int = Field(description="Rows with no items (factoid, list) or no text (summary): scored 0, never dropped")
    measures: dict[str, Interval]
    primary: str
    baselines: list[BioasqBaseline] = Field(default_factory=list)
    mean_items: float | None = Field(default=None, description="Mean number of items per row (factoid, list)")


def summarize_measures(kind: str, per_row: Sequence[dict[str, float]], n_boot: int = DEFAULT_BOOT,
                       seed: int = 0) -> dict[str, Interval]:
    """Mean of each measure over rows with a bootstrap interval (rows resampled together)."""
    names = MEASURES[kind]
    matrix = np.array([[row[m] for m in names] for row in per_row], dtype=float).reshape(len(per_row), len(names))
    out: dict[str, Interval] = {}
    for j, name in enumerate(names):
        out[name] = bootstrap(matrix[:, j], n_boot=n_boot, seed=seed)
    return out


def bioasq_score(kind: str, dataset: str, rows: Sequence[Any], n_boot: int = DEFAULT_BOOT, seed: int = 0) -> BioasqScore:
    """Score run rows (``RunRow``: ``metadata``, ``items``, ``prediction``, ``question``) of one BioASQ type, with
    the trivial baseline computed from each row's gold snippets on the same rows."""
    if kind not in MEASURES:
        raise ValueError(f"no BioASQ measures for type {kind!r}")
    per_row = [score_row(kind, r.metadata, [i.names for i in r.items], r.prediction) for r in rows]
    no_answer = sum(1 for r in rows if (not r.items if kind != "summary" else not r.prediction.strip()))
    qonly = dataset.endswith("-qonly")
    baselines: list[BioasqBaseline] = []
    if rows:
        spec, _, _ = baseline_predictions(kind, rows[0].question, rows[0].metadata)
        base_rows = []
        for r in rows:
            _, answers, text = baseline_predictions(kind, r.question, r.metadata)
            base_rows.append(score_row(kind, r.metadata, answers, text))
        description = spec.description + (" (an oracle here: this setting does not give the system the snippets)" if qonly else "")
        baselines.append(BioasqBaseline(name=spec.name, description=description,
                                        measures=summarize_measures(kind, base_rows, n_boot, seed)))
    items = [len(r.items) for r in rows] if kind != "summary" else []
    return BioasqScore(kind=kind, setting=INDEX_NOTE if qonly else SNIPPETS_NOTE, n=len(rows), no_answer=no_answer,  # type: ignore[arg-type]
                       measures=summarize_measures(kind, per_row, n_boot, seed) if rows else {}, primary=PRIMARY[kind],
                       baselines=baselines, mean_items=float(np.mean(items)) if items else None)


# --- loading ----------------------------------------------------------------------------------

Loader = Callable[[str, Path], tuple[list[Any], list[Any], int]]


def _pmid(url: str) -> str | None:
    match = re.search(r"(\d+)\s*$", str(url))
    return match.group(1) if match else None


def make_loader(kind: BioasqType, with_snippets: bool) -> Loader:
    """A dataset loader (``(name, bioasq dir) -> (items, problems, rows)``) of one BioASQ type and setting."""

    def load(name: str, root: Path) -> tuple[list[Any], list[Any], int]:
        files = golden_files(root)
        if not files:
            raise DatasetError(f"{root}: no golden files ({GOLDEN_GLOB})")
        latest: dict[str, tuple[str, dict[str, Any]]] = {}
        problems: list[RowProblem] = []
        rows = 0
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DatasetError(f"cannot read {path} as JSON: {exc}") from exc
            questions = data.get("questions") if isinstance(data, dict) else None
            if not isinstance(questions, list):
                raise DatasetError(f"{path}: expected an object with a 'questions' list")
            for q in questions:
                if not isinstance(q, dict) or q.get("type") != kind:
                    continue
                rows += 1
                qid = str(q.get("id") or "").strip()
                if not qid:
                    problems.append(RowProblem(id=f"{path.name}#{rows}", problem="no id", dropped=True))
                    continue
                if qid in latest:
                    problems.append(RowProblem(id=qid, problem=f"repeats in {path.name} (first in {latest[qid][0]}); the "
                                               f"copy in {path.name} is kept, the earlier one dropped", dropped=True))
                latest[qid] = (path.name, q)
        items: list[EvalItem] = []
        by_text: dict[str, str] = {}
        for qid, (file_name, q) in latest.items():
            text = str(q.get("body") or "").strip()
            if not text:
                problems.append(RowProblem(id=qid, problem="empty body", dropped=True))
                continue
            ideal_raw = q.get("ideal_answer")
            ideal = [ideal_raw] if isinstance(ideal_raw, str) else [i for i in ideal_raw or [] if isinstance(i, str)]
            ideal = [i.strip() for i in ideal if i.strip()]
            exact = gold_synonyms(q.get("exact_answer"), kind) if kind in ("factoid", "list") else []
            snippets = [str(s.get("text") or "").strip() for s in q.get("snippets") or [] if isinstance(s, dict)]
            snippets = [s for s in snippets if s]
            if kind in ("factoid", "list") and not exact:
                problems.append(RowProblem(id=qid, problem="no exact answer", dropped=True))
                continue
            if kind == "summary" and not ideal:
                problems.append(RowProblem(id=qid, problem="no ideal answer", dropped=True))
                continue
            if kind == "yesno":
                label = str(q.get("exact_answer") or "").strip().lower()
                if label not in ("yes", "no"):
                    problems.append(RowProblem(id=qid, problem=f"exact_answer {q.get('exact_answer')!r} is not yes or no", dropped=True))
                    continue
            key = " ".join(text.casefold().split())
            if key in by_text:
                problems.append(RowProblem(id=qid, problem=f"same question text as id {by_text[key]}; both kept", dropped=False))
            by_text.setdefault(key, qid)
            if with_snippets and not snippets:
                problems.append(RowProblem(id=qid, problem="no snippets: asked without context; kept", dropped=False))
            context = "\n".join(snippets) if with_snippets and snippets else None
            metadata: dict[str, Any] = {
                "bioasq_type": kind, "file": file_name, "snippets": snippets, "ideal_answer": ideal,
                "gold_pmids": sorted({p for d in q.get("documents") or [] if (p := _pmid(d))}),
            }
            if kind == "yesno":
                question = Question(text=text, options=["yes", "no"], task="mcq", id=qid, context=context)
                items.append(EvalItem(id=qid, dataset=name, question=question, gold=str(q["exact_answer"]).strip().lower(),
                                      metadata=metadata))
                continue
            metadata["exact_answer"] = exact
            gold = "; ".join(" | ".join(answer) for answer in exact) if exact else ideal[0]
            question = Question(text=text, task="free", id=qid, context=context)
            items.append(EvalItem(id=qid, dataset=name, question=question, gold=gold, metadata=metadata))
        return items, problems, rows

    load.__doc__ = (f"BioASQ {kind} questions from the golden files, "
                    f"{'gold snippets as context (phase B)' if with_snippets else 'question only (phase A+)'}.")
    return load
