"""Answer -> option. Never drops a row: an answer that maps to no single option parses to ``None``.

Order of attempts (the first that yields exactly one option wins):

1. ``choice``: the pipeline's constrained choice (``Answer.choice``), if it is one of the options.
2. ``json``: a JSON-like ``{"answer": ...}`` in the text (KG-RAG's anchor files use it, sometimes
   with doubled braces ``{{ }}`` or an unquoted ``True``); the value must name one option.
3. ``exact``: the whole text (trimmed of quotes, punctuation, "Answer:") is an option.
4. ``letter``: an option letter: "B", "(B)", "B.", "B) ...", "answer is B", "Answer: (B)".
5. ``phrase``: "the answer is X" / "Answer: X" where X starts with exactly one option.
6. ``mention``: exactly one option is mentioned in the text as a whole word (for true/false and
   yes/no/maybe this is the first such word at the start of the text, or the only one present).

Two options named at once (GPT-4 once answered ``{"answer": "HLA-B, CHEK2"}``) is ambiguous and
parses to ``None``; the caller scores that row wrong and counts it as unparseable.

Example::

    parse_answer('{"answer": "True"}', ["True", "False"]).choice  # 'True'
"""

from __future__ import annotations

import json
import re
import string
from typing import Literal

from pydantic import BaseModel

from kgrag.types import Answer

ParseMethod = Literal["choice", "json", "exact", "letter", "phrase", "mention", "none"]

LETTERS = string.ascii_uppercase
_JSON_ANSWER = re.compile(r"""["']?answer["']?\s*:\s*(?:"([^"]*)"|'([^']*)'|([^,}\n]+))""", re.IGNORECASE)
_LETTER_PATTERNS = [
    re.compile(r"^\s*\(?([A-Z])\)?\s*[.):]?\s*$"),  # "B", "(B)", "B."
    re.compile(r"^\s*\(?([A-Z])\)?\s*[.):]\s+\S"),  # "B) text", "B. text"
    # "answer is B", "Answer: (B)"; the letter itself must be upper case ("the answer is a gene" is no letter).
    re.compile(r"\b(?i:answer|option|choice)\s*(?i:is|:)?\s*:?\s*\(?([A-Z])\)?(?=[\s.),:;]|$)"),
]
_PHRASE = re.compile(r"(?:the\s+(?:correct\s+|final\s+)?answer\s+is|answer\s*:)\s*:?\s*(.+)", re.IGNORECASE | re.DOTALL)
_STRIP = " \t\r\n\"'`*.,;:!()[]{}"


class ParsedAnswer(BaseModel):
    """The option an answer maps to (``None`` when it maps to no single option), and how."""

    choice: str | None
    method: ParseMethod
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.choice is None


def _norm(text: str) -> str:
    return " ".join(text.strip(_STRIP).lower().split())


def _match_exact(value: str, options: list[str]) -> str | None:
    """The option equal to ``value`` (case/space/punctuation-insensitive), if exactly one."""
    wanted = _norm(value)
    hits = [o for o in options if _norm(o) == wanted]
    return hits[0] if len(set(hits)) == 1 else None


def _word_pattern(option: str) -> re.Pattern[str]:
    # An option is a "word" when not glued to letters, digits or hyphens (HLA-B is not in HLA-B27).
    return re.compile(r"(?<![\w-])" + re.escape(option.strip()) + r"(?![\w-])", re.IGNORECASE)


def _mentioned(text: str, options: list[str]) -> list[str]:
    """Options mentioned as whole words, dropping an option contained in a longer mentioned one."""
    hits = [o for o in options if o.strip() and _word_pattern(o).search(text)]
    return [o for o in hits if not any(o != other and _word_pattern(o).search(other) for other in hits)]


def _balanced_objects(text: str) -> list[str]:
    """Top-level ``{...}`` spans of the text, braces balanced."""
    spans: list[str] = []
    depth, start = 0, -1
    for index, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : index + 1])
    return spans


def _strings(value: object) -> list[str]:
    """A JSON value flattened to its string leaves (a nested ``{"Gene": "X", ...}`` gives its values)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _json_values(text: str) -> list[str] | None:
    """Candidate values of an ``answer`` key in JSON-ish text; None if the text has no such key."""
    for span in _balanced_objects(text):
        candidate = span
        while candidate.startswith("{{") and candidate.endswith("}}"):
            candidate = candidate[1:-1]
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            for key, value in data.items():
                if key.strip().lower() == "answer":
                    return _strings(value)
    match = _JSON_ANSWER.search(text) if "{" in text else None
    if match:
        return [next(g for g in match.groups() if g is not None).strip()]
    return None


def _from_values(values: list[str], options: list[str], method: ParseMethod) -> ParsedAnswer:
    """One option from a JSON answer's values: a value equal to one option, else a single-value parse."""
    exact = {hit for hit in (_match_exact(v, options) for v in values) if hit is not None}
    if len(exact) == 1:
        return ParsedAnswer(choice=exact.pop(), method=method, detail=str(values)[:120])
    if len(exact) > 1:
        return ParsedAnswer(choice=None, method="none", detail=f"{method} values name {len(exact)} options: {sorted(exact)}")
    if len(values) != 1:
        return ParsedAnswer(choice=None, method="none", detail=f"{method} values {values!r} name no single option")
    return _from_value(values[0], options, method)


def _from_value(value: str, options: list[str], method: ParseMethod) -> ParsedAnswer:
    exact = _match_exact(value, options)
    if exact is not None:
        return ParsedAnswer(choice=exact, method=method, detail=value)
    letter = _letter(value, options)
    if letter is not None:
        return ParsedAnswer(choice=letter, method=method, detail=f"letter in {value!r}")
    hits = _mentioned(value, options)
    if len(hits) == 1:
        return ParsedAnswer(choice=hits[0], method=method, detail=value)
    reason = f"names {len(hits)} options: {hits}" if hits else "names no option"
    return ParsedAnswer(choice=None, method="none", detail=f"{method} value {value!r} {reason}")


def _letter(text: str, options: list[str]) -> str | None:
    if len(options) > len(LETTERS):
        return None
    # A letter is only a letter if no option is itself that single letter.
    if any(_norm(o) in {c.lower() for c in LETTERS[: len(options)]} for o in options):
        return None
    for pattern in _LETTER_PATTERNS:
        match = pattern.search(text)
        if match:
            index = LETTERS.index(match.group(1).upper())
            return options[index] if index < len(options) else None
    return None


def parse_text(text: str | None, options: list[str]) -> ParsedAnswer:
    """Map free text to one of ``options`` (see the module docstring); ``None`` if not exactly one."""
    if not options:
        raise ValueError("parse_text needs the question's options (got none)")
    if not text or not text.strip():
        return ParsedAnswer(choice=None, method="none", detail="empty answer")
    values = _json_values(text)
    if values is not None:
        return _from_values(values, options, "json")
    body = re.sub(r"^\s*(?:final\s+)?answer\s*:\s*", "", text.strip(), flags=re.IGNORECASE)
    exact = _match_exact(body, options)
    if exact is not None:
        return ParsedAnswer(choice=exact, method="exact")
    letter = _letter(text, options)
    if letter is not None:
        return ParsedAnswer(choice=letter, method="letter")
    phrase = _PHRASE.search(text)
    if phrase:
        head = phrase.group(1).strip().splitlines()[0] if phrase.group(1).strip() else ""
        starts = [o for o in options if _norm(head).startswith(_norm(o)) and _word_pattern(o).match(head.strip(_STRIP))]
        starts = [o for o in starts if not any(o != p and _norm(p).startswith(_norm(o)) for p in starts)]
        if len(starts) == 1:
            return ParsedAnswer(choice=starts[0], method="phrase", detail=head[:80])
    hits = _mentioned(text, options)
    if _is_label_set(options) and re.search(r"\bnot\s+(?:true|false|yes|no)\b", text, re.IGNORECASE):
        return ParsedAnswer(choice=None, method="none", detail="a label is negated ('not true'); not guessing")
    if len(hits) == 1:
        return ParsedAnswer(choice=hits[0], method="mention")
    if hits and _is_label_set(options):
        first = min(hits, key=lambda o: _word_pattern(o).search(text).start())  # type: ignore[union-attr]
        if _word_pattern(first).search(text).start() == len(text) - len(text.lstrip(_STRIP)):  # type: ignore[union-attr]
            return ParsedAnswer(choice=first, method="mention", detail="label word opens the answer")
    reason = f"mentions {len(hits)} options: {hits}" if hits else "mentions no option"
    return ParsedAnswer(choice=None, method="none", detail=reason)


def _is_label_set(options: list[str]) -> bool:
    labels = {_norm(o) for o in options}
    return labels <= {"true", "false"} or labels <= {"yes", "no", "maybe"}


def parse_answer(answer: Answer | str | None, options: list[str]) -> ParsedAnswer:
    """The option an :class:`Answer` (or raw text) chose: its valid ``choice`` first, else its text."""
    if isinstance(answer, Answer):
        if answer.choice is not None:
            exact = answer.choice if answer.choice in options else _match_exact(answer.choice, options)
            if exact is not None:
                return ParsedAnswer(choice=exact, method="choice")
        parsed = parse_text(answer.text, options)
        if answer.choice is not None and parsed.failed:
            parsed.detail = f"choice {answer.choice!r} is not an option; {parsed.detail}"
        return parsed
    return parse_text(answer, options)
