"""Who the synthetic subjects are: sex, age, BMI and population group drawn from a realistic adult population.

Age: truncated normal around 48 years (18-90). BMI: right-skewed (log-normal, median ~26 kg/m^2, rising
slightly with age to 60, men a little higher), truncated to 16-45, as in adult surveys.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from facegen.data.subject import AGE_RANGE_YEARS, BMI_RANGE, GROUPS, Sex, Subject


def _truncated(rng: np.random.Generator, draw, lo: float, hi: float) -> float:
    for _ in range(1000):
        value = float(draw())
        if lo <= value <= hi:
            return value
    raise RuntimeError("truncated sampling did not converge")


def sample_subject(rng: np.random.Generator, subject_id: str) -> Subject:
    """One subject's metadata from the generator's population."""
    sex = Sex.MALE if rng.random() < 0.5 else Sex.FEMALE
    age = _truncated(rng, lambda: rng.normal(48.0, 17.0), *AGE_RANGE_YEARS)
    log_median = np.log(26.0) + 0.004 * (min(age, 60.0) - 45.0) + (0.01 if sex is Sex.MALE else -0.01)
    bmi = _truncated(rng, lambda: np.exp(rng.normal(log_median, 0.18)), *BMI_RANGE)
    group = GROUPS[int(rng.integers(len(GROUPS)))]
    return Subject(subject_id, sex, round(age, 1), round(bmi, 1), group)


@lru_cache(maxsize=1)
def population_moments() -> dict[str, float]:
    """Mean and SD of age and BMI in the generator's population (Monte Carlo, fixed seed)."""
    rng = np.random.default_rng(0)
    subjects = [sample_subject(rng, "p") for _ in range(20_000)]
    age = np.array([s.age_years for s in subjects])
    bmi = np.array([s.bmi for s in subjects])
    return {"age_mean": age.mean(), "age_sd": age.std(), "bmi_mean": bmi.mean(), "bmi_sd": bmi.std()}
