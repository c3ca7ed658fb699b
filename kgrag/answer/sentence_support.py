"""An LLM answer held against its evidence, sentence by sentence: what no evidence supports is marked (or dropped).

A sentence of the answer is **supported** when

* the claim verdicts of its entity pairs (:meth:`kgrag.evidence.checker.EvidenceChecker.claims`) include one the
  graph or the corpus supports (``graph``, ``inferred``, ``corpus``) and none ``unsupported``; or, when it names
  no pair,
* at least ``LEXICAL_SUPPORT`` of its content words stand in the evidence it was given (kept edges and passages,
  the given context, the question itself).

Otherwise it is listed in ``Answer.unsupported`` and marked in the text with ``UNSUPPORTED_MARK``; under
``writer_strict`` it is dropped. :func:`complete_sentences` cuts a generation that stopped mid-sentence (at the
token limit) back to its last whole sentence.

Example::

    text, unsupported = mark_unsupported(answer_text, claims, evidence, question, strict=False)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kgrag.answer.evidence_writer import content_words
from kgrag.evidence.claims import split_sentences
from kgrag.types import ClaimVerdict, Evidence, Question

LEXICAL_SUPPORT = 0.6
UNSUPPORTED_MARK = "[unsupported]"
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
SUPPORTING = ("graph", "inferred", "corpus")
_TRAILING_ENUMERATOR = re.compile(r"(?<=[.!?])\s+\(?\d{1,3}[.)]$")
"""A list item's number after the last whole sentence: where a generation cut at its token limit often stops."""


def complete_sentences(text: str) -> str:
    """``text`` up to its last sentence end, without a list number the generation stopped after ("... 14."); a text
    with no sentence end stays as it is (it is one fragment)."""
    stripped = _TRAILING_ENUMERATOR.sub("", text.rstrip())
    ends = list(_SENTENCE_END.finditer(stripped))
    if not ends or ends[-1].end() == len(stripped):
        return stripped
    return stripped[: ends[-1].end()]


def sentence_supported(sentence: str, verdicts: Sequence[ClaimVerdict], evidence_words: set[str]) -> bool:
    """See the module doc: claim verdicts first, else the share of content words found in the evidence."""
    if verdicts:
        return (any(v.verdict in SUPPORTING for v in verdicts)
                and not any(v.verdict == "unsupported" for v in verdicts))
    words = content_words(sentence)
    if not words:
        return True  # "Yes." / "In short:" say nothing to check
    return len(words & evidence_words) / len(words) >= LEXICAL_SUPPORT


def mark_unsupported(text: str, claims: Sequence[ClaimVerdict], evidence: Sequence[Evidence], question: Question,
                     *, strict: bool) -> tuple[str, list[str]]:
    """(the answer with unsupported sentences marked, or dropped when ``strict``; those sentences)."""
    evidence_words = content_words(" ".join([question.text, question.context or ""] + [e.text for e in evidence]))
    by_sentence: dict[str, list[ClaimVerdict]] = {}
    for verdict in claims:
        by_sentence.setdefault(verdict.sentence, []).append(verdict)
    kept: list[str] = []
    unsupported: list[str] = []
    for sentence in split_sentences(text):
        if sentence_supported(sentence, by_sentence.get(sentence, []), evidence_words):
            kept.append(sentence)
            continue
        unsupported.append(sentence)
        if not strict:
            kept.append(f"{sentence} {UNSUPPORTED_MARK}")
    return " ".join(kept), unsupported
