"""A benchmark's rows as the runner takes them, the problems a loader met, and the loaders' error.

Every loader (eval/datasets.py, eval/bioasq.py) makes these; nothing here reads a file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kgrag.errors import KgragError
from kgrag.types import Question


class DatasetError(KgragError, ValueError):
    """A benchmark name is unknown or its file cannot be read as that benchmark."""


class EvalItem(BaseModel):
    """One benchmark row: the question as the pipeline takes it, and its gold option string."""

    id: str
    dataset: str
    question: Question
    gold: str = Field(description="The correct option, as a string from question.options")
    metadata: dict[str, Any] = Field(default_factory=dict)


class RowProblem(BaseModel):
    """Something wrong with one row of a benchmark file."""

    id: str
    problem: str
    dropped: bool = Field(description="True: the row is not in the items; False: kept and scored")
