"""A PyTorch `Dataset` over a facegen dataset folder: random access to one subject's chunk at a time.

Each item holds tensors (depth maps in mm, masks, optionally grids) and the conditioning metadata (sex as
0 female / 1 male, age in years, BMI). The arrays are opened lazily in each worker process, so the dataset
works with a multi-process DataLoader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from facegen.data.dataset.layout import DEPTH_ARRAYS, GRID_ARRAYS, MASK_ARRAYS
from facegen.data.dataset.reader import Dataset
from facegen.data.subject import Sex

DEFAULT_FIELDS = ("skull_depth", "face_depth", "skull_mask", "face_mask", "face_region")


class HeadDataset(TorchDataset):
    """Subjects of one split (or all with `split=None`) as dicts of tensors."""

    def __init__(self, root: Path | str, *, split: str | None = "train", fields: tuple[str, ...] = DEFAULT_FIELDS):
        known = DEPTH_ARRAYS + MASK_ARRAYS + GRID_ARRAYS
        unknown = [f for f in fields if f not in known]
        if unknown:
            raise ValueError(f"unknown fields {unknown}; known fields: {', '.join(known)}")
        self.dataset = Dataset.open(root)
        self.rows = [r for r in self.dataset.rows if split is None or r.split == split]
        if not self.rows:
            raise ValueError(f"{root} has no subjects in split {split!r}")
        self.fields = fields
        self._arrays = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, object]:
        if self._arrays is None:
            self._arrays = self.dataset.arrays()
        row = self.rows[i]
        item: dict[str, object] = {}
        for name in self.fields:
            value = np.asarray(self._arrays[name][row.index])
            item[name] = torch.from_numpy(value.astype(np.float32) if name in DEPTH_ARRAYS else value.astype(bool))
        s = row.subject
        nan = float("nan")
        item["sex"] = torch.tensor(nan if s.sex is None else 1.0 if s.sex is Sex.MALE else 0.0)
        item["age_years"] = torch.tensor(nan if s.age_years is None else float(s.age_years))
        item["bmi"] = torch.tensor(nan if s.bmi is None else float(s.bmi))
        item["subject_id"] = s.subject_id
        return item
