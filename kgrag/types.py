"""The pipeline's boundary types: a Question in, an Answer out, Evidence with provenance between."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from kgrag.errors import QuestionError

if TYPE_CHECKING:
    from kgrag.generators.base import Generation

Task = Literal["free", "true_false", "mcq", "yes_no_maybe"]

SupportKind = Literal["direct", "ontology", "class", "corpus", "passage", "identifier", "absence"]
"""What decided an evidence verdict: ``direct`` a graph edge between the named entities; ``ontology`` an edge of
a subtype (is-a descendant) of a named disease, or an is-a path (inferred); ``class`` an edge of a member of a
named pharmacologic class (inferred); ``corpus`` co-occurrence counts; ``passage`` retrieved passages;
``identifier`` a stated identifier checked against the linked node's id and xrefs."""

TASK_OPTIONS: dict[str, list[str]] = {
    "true_false": ["True", "False"],
    "yes_no_maybe": ["yes", "no", "maybe"],
}


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def option_key(option: str) -> str:
    """The form two options are compared in: case-folded, runs of white space made one space, trimmed."""
    return " ".join(option.split()).casefold()


def check_unicode(value: str, what: str) -> str:
    """``value`` if it is valid Unicode text, else :class:`QuestionError` naming ``what`` and the position.

    A lone surrogate (``\\ud800``...) is what Python makes of bytes that are not UTF-8 (command-line
    arguments, files read with ``surrogateescape``); it cannot be encoded, embedded or sent to an LLM.
    """
    bad = _LONE_SURROGATE.search(value)
    if bad:
        raise QuestionError(f"{what} is not valid Unicode text: a lone surrogate {bad.group()!r} at character "
                            f"{bad.start()} (bytes that are not UTF-8?)")
    return value


class Question(BaseModel):
    """A question as the pipeline takes it. ``options`` is set for MCQ; T/F and yes/no/maybe fill theirs.

    Invalid input raises :class:`kgrag.errors.QuestionError` (a ``ValueError``) naming the field: text that
    is not valid Unicode, an unknown task, or options that repeat once case and white space are ignored.

    Example::

        Question(text="Which gene is linked to psoriasis?", options=["HLA-B", "TP53"])
    """

    text: str
    options: list[str] | None = None
    task: Task = "free"
    id: str | None = None
    context: str | None = Field(default=None, description="Given context (e.g. PubMedQA's abstract), used as is")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise QuestionError("invalid question: " + "; ".join(_describe(err) for err in exc.errors())) from None

    @field_validator("text")
    @classmethod
    def _text_is_unicode(cls, value: str) -> str:
        return check_unicode(value, "the question text")

    @field_validator("context")
    @classmethod
    def _context_is_unicode(cls, value: str | None) -> str | None:
        return None if value is None else check_unicode(value, "the context")

    @field_validator("options")
    @classmethod
    def _options_distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: dict[str, str] = {}
        for number, option in enumerate(value, 1):
            check_unicode(option, f"option {number}")
            key = option_key(option)
            if key and key in seen:
                raise QuestionError(f"options {seen[key]!r} and {option!r} are the same once case and white space "
                                    "are ignored; give each option once")
            seen.setdefault(key, option)
        return value


def _describe(err: Any) -> str:
    """One pydantic error as 'field: message (got value)', the value cut to 80 characters."""
    field = ".".join(str(p) for p in err.get("loc", ())) or "question"
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "value_error":  # our own validators: the message already names the value
        return f"{field}: {message}"
    shown = repr(err.get("input"))
    return f"{field}: {message} (got {shown[:80]}{'...' if len(shown) > 80 else ''})"


class LinkedEntity(BaseModel):
    """A mention in the question linked to a graph node."""

    mention: str
    node_id: str
    label: str
    name: str
    method: Literal["exact", "synonym", "embedding", "llm", "option"]
    score: float = 1.0
    reason: str = Field(default="", description="Why it was linked: the match, and any cue or is-a relation that licensed it")
    within: str | None = Field(default=None, description="Node id of the entity whose longer mention names this one "
                               "(an is-a ancestor named inside it): reported, but neither a graph-context seed nor a claim's subject")


class Evidence(BaseModel):
    """One piece of context the answer may rest on, with where it came from."""

    kind: Literal["kg", "text", "given"]
    text: str
    score: float = Field(description="The ranking's score after pruning: relevance tier plus strength (ranking=strength, "
                         "0-4), or cosine similarity to the question (ranking=similarity); a passage's retrieval score")
    id: str = Field(description="Edge key (source|type|target) or passage id")
    sources: list[str] = Field(default_factory=list, description="Provenance: databases, or PMIDs")
    properties: dict[str, Any] = Field(default_factory=dict)
    option: str | None = Field(default=None, description="The option this evidence joins to the question, if any")
    support: SupportKind | None = Field(default=None, description="For evidence that decided an answer: direct, or how "
                                        "it was inferred (ontology, class)")
    path: list[str] = Field(default_factory=list, description="Inferred support: the edge keys it rests on, the "
                            "supporting edge first, then the is-a or class-membership steps")
    confidence: float | None = Field(default=None, description="Inferred support's own confidence (direct edges: 1.0)")
    strength: float | None = Field(default=None, description="Strength of the evidence in [0, 1]: for an edge, what its "
                                   "sources record (kgrag.graph.strength, docs/evidence_strength.md); None: not rated")


class AnswerItem(BaseModel):
    """One entity that a question asking for entities ("Which genes ...") gets, in ranked order, with what backs it."""

    name: str
    id: str = Field(description="Graph node id")
    label: str = Field(description="Node label: Gene, Compound, Disease, Variant, ...")
    synonyms: list[str] = Field(default_factory=list)
    strength: float = Field(ge=0.0, le=1.0, description="How strongly the evidence supports it (the best edge's strength, "
                            "raised by the passages that name it)")
    evidence: list[str] = Field(default_factory=list, description="Ids of the Evidence behind it (edge keys, passage ids)")
    sources: list[str] = Field(default_factory=list, description="Databases of its edges, then PMIDs of its passages")
    origin: Literal["graph", "text", "graph+text"] = "graph"


class GateDecision(BaseModel):
    """One decision of the uncertainty gate, with the counts that made it."""

    stage: Literal[1, 2]
    retrieve: bool
    reason: str
    counts: dict[str, float | int | None] = Field(default_factory=dict)
    failed: bool = False


class ClaimVerdict(BaseModel):
    """Whether a pair of entities named together is supported."""

    sentence: str
    head: str
    tail: str
    verdict: Literal["graph", "inferred", "corpus", "unsupported", "unknown"] = Field(
        description="graph: an edge joins them; inferred: an edge of a subtype (is-a descendant) of one joins the "
        "other, or an is-a path joins them (see path); corpus: they co-occur; unsupported: none of these; unknown: "
        "no edge and the corpus statistics could not be read")
    note: str | None = None
    sources: list[str] = Field(default_factory=list)
    cooccurrence: int | None = None
    path: list[str] = Field(default_factory=list, description="inferred: the supporting edge's key, then the is-a steps")
    confidence: float | None = Field(default=None, description="graph: 1.0; inferred: its own, lower confidence")


DecidedBy = Literal["evidence", "llm-tied", "llm", "abstained"]
"""Who chose among a question's options: ``evidence`` the evidence check; ``llm-tied`` the LLM among the options the
evidence left tied; ``llm`` the LLM among all of them (the check found nothing, or did not run); ``abstained``
nobody (evidence selection alone, and the evidence did not decide)."""


class OptionFinding(BaseModel):
    """What the evidence check found for one option (MCQ), or for the claim of a true/false statement."""

    option: str
    entities_joined: list[str] = Field(default_factory=list, description="Question entity ids joined by a graph edge")
    entities_inferred: list[str] = Field(default_factory=list, description="Question entity ids joined only by "
                                         "inferred support (an edge of a subtype or of a class member)")
    cooccurrence: int | None = Field(default=None, description="Summed corpus co-occurrence with the question's entities")
    passages: list[str] = Field(default_factory=list, description="Ids of retrieved passages naming it with an entity")
    evidence: list[str] = Field(default_factory=list, description="Ids of its supporting evidence (edge keys; an "
                                "inferred support's key)")


class Decision(BaseModel):
    """What decided the choice of a question with options, as data (the trace says the same in words)."""

    by: DecidedBy
    reason: str = Field(default="", description="The evidence check's reason ('' where the check did not run)")
    tied: list[str] = Field(default_factory=list, description="Options the evidence left tied at the top")
    evidence: list[str] = Field(default_factory=list, description="Ids of the Evidence that decided the choice, when "
                                "the evidence check decided it (each is in the Answer's evidence)")
    options: list[OptionFinding] = Field(default_factory=list, description="What the check found, option by option")


class Usage(BaseModel):
    """Tokens, LLM calls and retrievals of one answer; usages add up with ``+``."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    context_tokens: int = 0
    llm_calls: int = 0
    retrievals: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in Usage.model_fields})

    @classmethod
    def of_generation(cls, generation: "Generation") -> "Usage":
        """One LLM call and the tokens it read and wrote."""
        return cls(llm_calls=1, prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens)


class Reply(BaseModel):
    """What the selector (questions with options) or the writer (free text) gives for one question, before it
    becomes an :class:`Answer`: the question's evidence after the step (the input's, plus the edges that decided a
    choice or what the QuCo loop retrieved), stage-2 gate decisions, trace lines and the step's usage."""

    text: str = ""
    choice: str | None = None
    option_scores: dict[str, float] | None = None
    abstained: bool = False
    support: SupportKind | None = Field(default=None, description="What decided the choice, where evidence did")
    support_confidence: float | None = None
    decision: Decision | None = Field(default=None, description="What decided the choice (questions with options)")
    evidence: list[Evidence] = Field(default_factory=list)
    gate: list[GateDecision] = Field(default_factory=list)
    trace: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


class Answer(BaseModel):
    """What ``answer()`` returns."""

    question: str
    question_id: str | None = None
    task: Task = "free"
    text: str = Field(description="The answer text (composed from the evidence, or generated)")
    items: list[AnswerItem] = Field(default_factory=list, description="For a question asking for entities: the "
                                    "answer's entities, best supported first (the same whichever writer runs)")
    writer: str | None = Field(default=None, description="What wrote the free text: evidence (no LLM) or llm")
    unsupported: list[str] = Field(default_factory=list, description="Sentences of an LLM answer that no evidence "
                                   "supports (marked in the text; dropped from it under writer_strict)")
    choice: str | None = Field(default=None, description="The chosen option for T/F, MCQ, yes/no/maybe")
    option_scores: dict[str, float] | None = None
    selection_mode: str = "llm"
    abstained: bool = False
    support: SupportKind | None = Field(default=None, description="What decided the choice when evidence did: direct "
                                        "edges, or inferred (ontology, class), corpus, passage, identifier")
    support_confidence: float | None = Field(default=None, description="The deciding support's confidence (direct: 1.0)")
    decision: Decision | None = Field(default=None, description="For a question with options: who chose (evidence, the "
                                      "LLM among tied options, the LLM, nobody), the evidence check's reason and "
                                      "findings, and the ids of the evidence that decided")
    entities: list[LinkedEntity] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    dropped_evidence: int = Field(default=0, description="Candidate evidence removed by pruning")
    gate: list[GateDecision] = Field(default_factory=list)
    claims: list[ClaimVerdict] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    trace: list[str] = Field(default_factory=list, description="Human-readable notes: backends, fallbacks")
    settings: dict[str, Any] = Field(default_factory=dict, description="Public settings that produced it")
