"""Open a dataset folder: its card, its subjects table and its arrays, with errors that name the file."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import zarr

from facegen.data.dataset import layout
from facegen.data.representations.build import RepresentationSpec
from facegen.data.subject import Subject


def _optional_float(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


@dataclass(frozen=True)
class SubjectRow:
    """One row of subjects.csv: the subject, its position in the arrays, its split and floors."""

    index: int
    subject: Subject
    split: str
    floor_mm: float | None
    floor_depth_mae_mm: float | None
    """The floors are known for synthetic heads only (None for real scans)."""


@dataclass(frozen=True)
class Dataset:
    """A dataset folder on disk (read-only view)."""

    root: Path

    @staticmethod
    def open(root: Path | str) -> Dataset:
        """Open and check that the folder looks like a facegen dataset."""
        paths = layout.DatasetLayout(Path(root))
        for required in (paths.card, paths.table, paths.arrays):
            if not required.exists():
                raise ValueError(f"{root} is not a facegen dataset: {required.name} is missing")
        return Dataset(Path(root))

    @property
    def paths(self) -> layout.DatasetLayout:
        return layout.DatasetLayout(self.root)

    @cached_property
    def card(self) -> dict:
        """The dataset card (dataset.json)."""
        try:
            return json.loads(self.paths.card.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.paths.card}: unreadable dataset card ({exc})") from exc

    @cached_property
    def rows(self) -> list[SubjectRow]:
        """Subjects in array order."""
        try:
            with self.paths.table.open(newline="") as fh:
                records = list(csv.DictReader(fh))
            return [
                SubjectRow(
                    index=int(r["index"]),
                    subject=Subject.from_cells(r["subject_id"], r["sex"], r["age_years"], r["bmi"], r["group"]),
                    split=r["split"],
                    floor_mm=_optional_float(r["floor_mm"]),
                    floor_depth_mae_mm=_optional_float(r["floor_depth_mae_mm"]),
                )
                for r in records
            ]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{self.paths.table}: unreadable subjects table ({exc})") from exc

    @cached_property
    def spec(self) -> RepresentationSpec:
        """How the heads are represented (depth-map view, grid)."""
        return RepresentationSpec.from_dict(self.card["representation"])

    def arrays(self) -> zarr.Group:
        """The chunked arrays, opened read-only (open one per worker process)."""
        return zarr.open_group(self.paths.arrays, mode="r")

    def row(self, subject_id: str) -> SubjectRow:
        """The row of one subject, or a ValueError listing a few known ids."""
        for r in self.rows:
            if r.subject.subject_id == subject_id:
                return r
        known = ", ".join(r.subject.subject_id for r in self.rows[:5])
        raise ValueError(f"subject {subject_id!r} is not in {self.root} (ids look like: {known}, ...)")
