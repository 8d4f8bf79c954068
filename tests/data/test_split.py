from collections import Counter

import numpy as np
import pytest

from facegen.data.dataset.split import bmi_band, stratified_split
from facegen.data.subject import Subject


def _subjects(n: int, seed: int = 0) -> list[Subject]:
    rng = np.random.default_rng(seed)
    return [
        Subject(f"S{i}", "M" if rng.random() < 0.5 else "F", 40.0, float(rng.uniform(16, 45)), "A") for i in range(n)
    ]


def test_bmi_bands_follow_who_edges():
    assert [bmi_band(b) for b in (17.0, 18.5, 24.9, 25.0, 34.9, 35.0, 44.0)] == [
        "0-18.5", "18.5-25", "18.5-25", "25-30", "30-35", "35+", "35+"
    ]  # fmt: skip


def test_split_is_stratified_by_sex_and_bmi_band_and_reproducible():
    subjects = _subjects(1000)
    split = stratified_split(subjects, seed=1)
    assert split == stratified_split(subjects, seed=1)
    assert split != stratified_split(subjects, seed=2)
    assert Counter(split.values()) == {"train": 700, "val": 150, "test": 150}
    for sex in ("F", "M"):
        for band in ("18.5-25", "25-30", "35+"):
            ids = [s.subject_id for s in subjects if s.sex.value == sex and bmi_band(s.bmi) == band]
            share = Counter(split[i] for i in ids)
            assert abs(share["train"] / len(ids) - 0.7) < 0.03, (sex, band, share)


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="must be non-negative and sum to 1"):
        stratified_split(_subjects(10), seed=0, fractions=(0.5, 0.5, 0.5))
