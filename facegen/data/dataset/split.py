"""Train/val/test split by subject, stratified by sex and BMI band, reproducible from a seed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from facegen.data.subject import Subject

BMI_BANDS = (18.5, 25.0, 30.0, 35.0)
"""WHO bands: under 18.5, 18.5-25, 25-30, 30-35, 35 and over."""
SPLITS = ("train", "val", "test")


def bmi_band(bmi: float | None) -> str:
    """The WHO band label of a BMI value ("unknown" for None)."""
    if bmi is None:
        return "unknown"
    edges = (0.0, *BMI_BANDS, np.inf)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if lo <= bmi < hi:
            return f"{lo:g}-{hi:g}" if np.isfinite(hi) else f"{lo:g}+"
    raise ValueError(f"BMI {bmi} is not a number")


SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
"""Train, val and test fractions of a split unless asked otherwise."""


def stratified_split(
    subjects: Sequence[Subject], *, seed: int, fractions: tuple[float, float, float] = SPLIT_FRACTIONS
) -> dict[str, str]:
    """Split label per subject id; within each (sex, BMI band) stratum the fractions hold to rounding."""
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions {fractions} must be non-negative and sum to 1")
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in subjects:
        strata[(s.sex.value if s.sex else "unknown", bmi_band(s.bmi))].append(s.subject_id)
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    carry = np.zeros(3)
    for key in sorted(strata):
        ids = sorted(strata[key])
        rng.shuffle(ids)
        # carry the rounding remainders across strata so small strata still add up to the fractions
        want = carry + len(ids) * np.asarray(fractions)
        counts = np.floor(want).astype(int)
        short = len(ids) - counts.sum()
        counts[np.argsort(-(want - counts), kind="stable")[:short]] += 1
        carry = want - counts
        bounds = np.cumsum(counts)
        for i, sid in enumerate(ids):
            out[sid] = SPLITS[int(np.searchsorted(bounds, i, side="right"))]
    return out
