"""Group labels of subjects (sex, age band, BMI band, population group): the groups a bias report compares
and balanced training draws evenly, so they live with the data that both read."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facegen.data.dataset.split import bmi_band
from facegen.data.subject import AGE_RANGE_YEARS, Subject

GROUPINGS = ("sex", "age", "bmi", "group")
"""What subjects can be grouped by: sex (F, M), age band, WHO BMI band, population group."""
AGE_BANDS_YEARS = (30.0, 45.0, 60.0, 75.0)
"""Upper edges of the adult age bands: 18-30, 30-45, 45-60, 60-75, 75+ years (lower edge included)."""
UNKNOWN_GROUP = "unknown"
"""The label of subjects whose value is unknown: listed in a report, never compared (it mixes groups)."""


def age_band(age_years: float | None) -> str:
    """The age band label of an age ("18-30", ..., "75+"; lower edge included; "unknown" for None)."""
    if age_years is None:
        return UNKNOWN_GROUP
    edges = (AGE_RANGE_YEARS[0], *AGE_BANDS_YEARS, np.inf)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if lo <= age_years < hi:
            return f"{lo:g}-{hi:g}" if np.isfinite(hi) else f"{lo:g}+"
    raise ValueError(f"age {age_years} years is not an adult age (bands start at {edges[0]:g})")


def group_labels(subjects: Sequence[Subject], by: str) -> list[str]:
    """One group label per subject for a grouping in GROUPINGS; "unknown" where the value is unknown.

    BMI bands are `bmi_band`'s WHO bands ("0-18.5", "18.5-25", "25-30", "30-35", "35+"), as in the split."""
    if by == "sex":
        return [s.sex.value if s.sex is not None else UNKNOWN_GROUP for s in subjects]
    if by == "age":
        return [age_band(s.age_years) for s in subjects]
    if by == "bmi":
        return [bmi_band(s.bmi) for s in subjects]
    if by == "group":
        return [s.group if s.group is not None else UNKNOWN_GROUP for s in subjects]
    raise ValueError(f"unknown grouping {by!r}; choose one of {', '.join(GROUPINGS)}")
