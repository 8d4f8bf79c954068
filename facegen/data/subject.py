"""A subject's metadata: sex, age in years, BMI and population group, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Sex(StrEnum):
    """Biological sex as read from the skeleton or records."""

    FEMALE = "F"
    MALE = "M"


AGE_RANGE_YEARS = (18.0, 90.0)
BMI_RANGE = (16.0, 45.0)
GROUPS = ("A", "B", "C")
"""Population-group labels of the synthetic generator: neutral names, each with its own face-shape mean."""


@dataclass(frozen=True)
class Subject:
    """Who a head belongs to. Age in years, BMI in kg/m^2; values outside the adult ranges are refused."""

    subject_id: str
    sex: Sex
    age_years: float
    bmi: float
    group: str = "A"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sex", Sex(self.sex))
        lo, hi = AGE_RANGE_YEARS
        if not lo <= self.age_years <= hi:
            raise ValueError(f"age {self.age_years} years is outside the adult range {lo:g}-{hi:g} years")
        lo, hi = BMI_RANGE
        if not lo <= self.bmi <= hi:
            raise ValueError(f"BMI {self.bmi} is outside the supported range {lo:g}-{hi:g} kg/m^2")
        if self.group not in GROUPS:
            raise ValueError(f"unknown population group {self.group!r}; known groups: {', '.join(GROUPS)}")

    def to_dict(self) -> dict[str, object]:
        """Plain values for tables and JSON."""
        row = asdict(self)
        row["sex"] = self.sex.value
        return row
