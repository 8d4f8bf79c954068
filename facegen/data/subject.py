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


UNKNOWN = ""
"""How an unknown value is written in tables (an empty cell)."""


@dataclass(frozen=True)
class Subject:
    """Who a head belongs to. Age in years, BMI in kg/m^2; values outside the adult ranges are refused.

    Sex, age, BMI and group may be unknown (None): a real case often arrives without them.
    """

    subject_id: str
    sex: Sex | None
    age_years: float | None
    bmi: float | None
    group: str | None = "A"

    def __post_init__(self) -> None:
        if not self.subject_id or any(c in self.subject_id for c in '/\\:*?"<>|') or self.subject_id.startswith("."):
            raise ValueError(f"subject id {self.subject_id!r} must be a non-empty name usable as a folder name")
        if self.sex is not None:
            try:
                object.__setattr__(self, "sex", Sex(self.sex))
            except ValueError:
                raise ValueError(f"sex {self.sex!r} must be F or M (or left unknown)") from None
        lo, hi = AGE_RANGE_YEARS
        if self.age_years is not None and not lo <= self.age_years <= hi:
            raise ValueError(f"age {self.age_years} years is outside the adult range {lo:g}-{hi:g} years")
        lo, hi = BMI_RANGE
        if self.bmi is not None and not lo <= self.bmi <= hi:
            raise ValueError(f"BMI {self.bmi} is outside the supported range {lo:g}-{hi:g} kg/m^2")
        if self.group is not None and self.group not in GROUPS:
            raise ValueError(f"unknown population group {self.group!r}; known groups: {', '.join(GROUPS)}")

    def describe(self) -> str:
        """A short label for figures: "sex F, age 40 y, BMI 24.5", with "unknown" where unknown."""
        sex = self.sex.value if self.sex is not None else "unknown"
        age = f"{self.age_years:g} y" if self.age_years is not None else "unknown"
        bmi = f"{self.bmi:g}" if self.bmi is not None else "unknown"
        return f"sex {sex}, age {age}, BMI {bmi}"

    @property
    def is_complete(self) -> bool:
        """Whether sex, age and BMI are all known (models are conditioned on them)."""
        return self.sex is not None and self.age_years is not None and self.bmi is not None

    def to_dict(self) -> dict[str, object]:
        """Plain values for tables and JSON (None where unknown)."""
        row = asdict(self)
        row["sex"] = self.sex.value if self.sex is not None else None
        return row

    def to_row(self) -> list[str]:
        """Table cells: sex, age, BMI, group, with empty cells where unknown."""
        return [
            self.sex.value if self.sex is not None else UNKNOWN,
            UNKNOWN if self.age_years is None else f"{self.age_years:g}",
            UNKNOWN if self.bmi is None else f"{self.bmi:g}",
            self.group or UNKNOWN,
        ]

    @staticmethod
    def from_cells(subject_id: str, sex: str, age_years: str, bmi: str, group: str) -> Subject:
        """A subject from table cells (empty = unknown); a bad cell raises ValueError naming it."""

        def number(name: str, cell: str) -> float | None:
            cell = cell.strip()
            if cell == UNKNOWN:
                return None
            try:
                return float(cell)
            except ValueError:
                raise ValueError(f"{name} {cell!r} is not a number") from None

        return Subject(
            subject_id.strip(),
            sex.strip().upper() or None,
            number("age", age_years),
            number("BMI", bmi),
            group.strip() or None,
        )
