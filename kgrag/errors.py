"""The package's own exceptions, so a user sees what was wrong in our words."""


class KgragError(Exception):
    """Base class of every error raised by kgrag, quco, graph_loaders and eval."""


class SettingsError(KgragError):
    """A setting is invalid; the message names the setting (its environment variable)."""


class QuestionError(KgragError, ValueError):
    """A question is empty, too long or not text."""


class GraphStoreError(KgragError):
    """The graph store cannot be reached, or a query or load failed."""


class SourceFileError(KgragError):
    """A public source file is missing or unreadable; the message names the file and the setting."""


class IndexMismatchError(KgragError):
    """An index was built with another model or corpus than the one in use."""


class BackendUnavailableError(KgragError):
    """An optional backend (vLLM, faiss-gpu, ...) is not installed or cannot start."""


class ArtefactError(KgragError):
    """A built artefact (text index, statistics index, embedding cache) is damaged, incomplete, or gave
    values it cannot give (a similarity that is not a cosine); the message names the file and how to rebuild it.
    """


class InputError(KgragError, ValueError):
    """Bad input at the edge (an argument, an option value, a file the user named); the CLI exits with 2."""


class CannotWriteError(KgragError):
    """A build cannot write its output: the disk is full, the home is read-only, a quota is reached."""
