"""kgrag: grounded biomedical question answering over a SPOKE-style knowledge graph and the literature.

Example::

    from kgrag import answer
    result = answer("Which genes are associated with psoriasis?")
    print(result.text)
    for ev in result.evidence:
        print(ev.text, ev.sources)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrag.errors import KgragError, QuestionError, SettingsError
from kgrag.settings import Settings, load_settings
from kgrag.types import Answer, Evidence, Question

if TYPE_CHECKING:  # pragma: no cover
    from kgrag.answer.pipeline import Pipeline


def answer(question: str, *, options: list[str] | None = None, task: str | None = None,
           settings: Settings | None = None) -> Answer:
    """Answer one question with the configured pipeline (see :func:`kgrag.answer.pipeline.answer`)."""
    from kgrag.answer.pipeline import answer as _answer

    return _answer(question, options=options, task=task, settings=settings)


def __getattr__(name: str):
    if name == "Pipeline":
        from kgrag.answer.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)


__all__ = ["Answer", "Evidence", "KgragError", "Pipeline", "Question", "QuestionError", "Settings", "SettingsError",
           "answer", "load_settings"]
__version__ = "0.1.0"
