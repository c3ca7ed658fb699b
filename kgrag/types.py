"""The pipeline's boundary types: a Question in, an Answer out, Evidence with provenance between."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Task = Literal["free", "true_false", "mcq", "yes_no_maybe"]

TASK_OPTIONS: dict[str, list[str]] = {
    "true_false": ["True", "False"],
    "yes_no_maybe": ["yes", "no", "maybe"],
}


class Question(BaseModel):
    """A question as the pipeline takes it. ``options`` is set for MCQ; T/F and yes/no/maybe fill theirs."""

    text: str
    options: list[str] | None = None
    task: Task = "free"
    id: str | None = None
    context: str | None = Field(default=None, description="Given context (e.g. PubMedQA's abstract), used as is")


class LinkedEntity(BaseModel):
    """A mention in the question linked to a graph node."""

    mention: str
    node_id: str
    label: str
    name: str
    method: Literal["exact", "synonym", "embedding", "llm", "option"]
    score: float = 1.0


class Evidence(BaseModel):
    """One piece of context the answer may rest on, with where it came from."""

    kind: Literal["kg", "text", "given"]
    text: str
    score: float = Field(description="Cosine similarity to the question (after pruning)")
    id: str = Field(description="Edge key (source|type|target) or passage id")
    sources: list[str] = Field(default_factory=list, description="Provenance: databases, or PMIDs")
    properties: dict[str, Any] = Field(default_factory=dict)
    option: str | None = Field(default=None, description="The option this evidence joins to the question, if any")


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
    verdict: Literal["graph", "corpus", "unsupported", "unknown"] = Field(
        description="graph: an edge joins them; corpus: they co-occur; unsupported: neither; unknown: no edge and "
        "the corpus statistics could not be read")
    note: str | None = None
    sources: list[str] = Field(default_factory=list)
    cooccurrence: int | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    context_tokens: int = 0
    llm_calls: int = 0
    retrievals: int = 0


class Answer(BaseModel):
    """What ``answer()`` returns."""

    question: str
    question_id: str | None = None
    task: Task = "free"
    text: str = Field(description="The generated answer text")
    choice: str | None = Field(default=None, description="The chosen option for T/F, MCQ, yes/no/maybe")
    option_scores: dict[str, float] | None = None
    selection_mode: str = "llm"
    abstained: bool = False
    entities: list[LinkedEntity] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    dropped_evidence: int = Field(default=0, description="Candidate evidence removed by pruning")
    gate: list[GateDecision] = Field(default_factory=list)
    claims: list[ClaimVerdict] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    trace: list[str] = Field(default_factory=list, description="Human-readable notes: backends, fallbacks")
    settings: dict[str, Any] = Field(default_factory=dict, description="Public settings that produced it")
