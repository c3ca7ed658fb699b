"""Per-stage wall time of a batch, in milliseconds (the Answer's ``timings_ms``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Wall time per named stage, summed over the stage's runs, for one batch.

    Example::

        timer = StageTimer()
        with timer.stage("linking"):
            ...
        timer.ms["linking"]   # milliseconds
    """

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1000

    def per_question(self, n: int) -> dict[str, float]:
        """Each stage's time shared evenly by the ``n`` questions of the batch."""
        return {k: v / n for k, v in self.ms.items()}
