"""kgrag: grounded biomedical question answering over a SPOKE-style knowledge graph and the literature."""

from kgrag.errors import KgragError, QuestionError, SettingsError
from kgrag.settings import Settings, load_settings
from kgrag.types import Answer, Evidence, Question

__all__ = ["Answer", "Evidence", "KgragError", "Question", "QuestionError", "Settings", "SettingsError", "load_settings"]
__version__ = "0.1.0"
