"""Text normalisation shared by entity linking and graph name lookup."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """Lower-case, strip accents, turn every run of punctuation/space into one space.

    ``"Crohn's disease"`` and ``"crohn s  Disease"`` both become ``"crohn s disease"``.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_WORD.sub(" ", ascii_text).strip()
