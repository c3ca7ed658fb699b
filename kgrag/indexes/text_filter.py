"""Which passages a text search may return: :class:`TextFilter` (a year range, MeSH terms).

Example::

    TextFilter(year_min=2015, mesh=["Psoriasis", "Arthritis, Psoriatic"])
    settings_filter(settings)          # from KGRAG_TEXT_YEAR_MIN, KGRAG_TEXT_YEAR_MAX, KGRAG_TEXT_MESH
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from kgrag.settings import Settings


class TextFilter(BaseModel):
    """Which passages a search may return: a publication-year range and/or MeSH terms (any of them).

    A passage without a year (or without MeSH terms) is excluded by a year (MeSH) filter. Terms match
    MeSH descriptor names case-insensitively (``"Psoriasis"``, ``"Diabetes Mellitus, Type 2"``).
    """

    year_min: int | None = Field(default=None, ge=0, le=9999)
    year_max: int | None = Field(default=None, ge=0, le=9999)
    mesh: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> "TextFilter":
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise ValueError(f"year range {self.year_min}-{self.year_max} is empty (year_min > year_max)")
        if any(not term.strip() for term in self.mesh):
            raise ValueError("a MeSH term is blank")
        return self

    @property
    def active(self) -> bool:
        return self.year_min is not None or self.year_max is not None or bool(self.mesh)

    def key(self) -> tuple[object, ...]:
        return self.year_min, self.year_max, tuple(sorted(term.casefold() for term in self.mesh))


def settings_filter(settings: Settings) -> TextFilter:
    """The filter the settings ask for (``text_year_min``, ``text_year_max``, ``text_mesh``)."""
    return TextFilter(year_min=settings.text_year_min, year_max=settings.text_year_max, mesh=list(settings.text_mesh))
