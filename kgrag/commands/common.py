"""What the commands share: the built graph and the pipeline, opened from the settings and closed when the
command ends, however it ends.

Errors are not handled here nor in the commands: they reach the one boundary in :mod:`kgrag.cli`, which
prints one ``error:`` line and exits with the code of its table (``kgrag --help`` lists it).

Example::

    with built_graph(load_settings()) as store:
        report = coverage(settings, store, "biomixqa-mcq")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kgrag.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from kgrag.graph.base import GraphStore
    from kgrag.answer.pipeline import Pipeline


@contextmanager
def built_graph(settings: Settings) -> Iterator[GraphStore]:
    """The configured graph store, refusing a missing, empty, half-built or mismatched graph; closed at the end."""
    from kgrag.graph.serving import open_serving_graph  # noqa: PLC0415  (the driver loads only when a command needs it)

    store = open_serving_graph(settings)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def pipeline_for(settings: Settings) -> Iterator[Pipeline]:
    """The pipeline of ``settings`` (graph, indexes, generator), closed at the end."""
    from kgrag.answer.pipeline import Pipeline  # noqa: PLC0415  (models load only when a command answers)

    pipeline = Pipeline.from_settings(settings)
    try:
        yield pipeline
    finally:
        pipeline.close()
