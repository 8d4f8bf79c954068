"""The interface every model family shares, and the depth-map data they learn from.

A model maps a skull depth map and the subject's metadata to face depth maps: `reconstruct(...)` returns
K samples (K = 1 for a deterministic model), so a model that knows its uncertainty can show it. Metadata
enters as three standardised features; an unknown value is 0 (the population centre), never a guess.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from facegen.data.dataset.reader import Dataset
from facegen.data.subject import Sex, Subject

AGE_CENTRE_YEARS, AGE_SCALE_YEARS = 50.0, 20.0
BMI_CENTRE, BMI_SCALE = 26.0, 6.0
METADATA_FEATURES = ("sex", "age", "bmi")


def metadata_features(subject: Subject) -> np.ndarray:
    """(3,) float32: sex (+1 male, -1 female), standardised age and BMI; 0 where unknown."""
    sex = 0.0 if subject.sex is None else (1.0 if subject.sex is Sex.MALE else -1.0)
    age = 0.0 if subject.age_years is None else (subject.age_years - AGE_CENTRE_YEARS) / AGE_SCALE_YEARS
    bmi = 0.0 if subject.bmi is None else (subject.bmi - BMI_CENTRE) / BMI_SCALE
    return np.array([sex, age, bmi], np.float32)


@dataclass(frozen=True)
class DepthData:
    """Depth maps of a set of subjects, in memory: (N, H, W) arrays and (N, 3) metadata features."""

    subjects: list[Subject]
    skull_depth: np.ndarray
    skull_mask: np.ndarray
    face_depth: np.ndarray
    face_mask: np.ndarray
    face_region: np.ndarray
    metadata: np.ndarray
    noise_free_face_depth: np.ndarray | None = None

    @staticmethod
    def load(root: Path | str, split: str | None) -> DepthData:
        """Subjects of one split (None: all) from a dataset folder."""
        ds = Dataset.open(root)
        rows = [r for r in ds.rows if split is None or r.split == split]
        if not rows:
            raise ValueError(f"{root} has no subjects in split {split!r}")
        arrays = ds.arrays()
        index = [r.index for r in rows]

        def take(name: str, dtype) -> np.ndarray:
            return np.stack([np.asarray(arrays[name][i]) for i in index]).astype(dtype)

        has_noise_free = bool(ds.card.get("noise_free_face", True))
        return DepthData(
            subjects=[r.subject for r in rows],
            skull_depth=take("skull_depth", np.float32),
            skull_mask=take("skull_mask", bool),
            face_depth=take("face_depth", np.float32),
            face_mask=take("face_mask", bool),
            face_region=take("face_region", bool),
            metadata=np.stack([metadata_features(r.subject) for r in rows]),
            noise_free_face_depth=take("noise_free_face_depth", np.float32) if has_noise_free else None,
        )

    def __len__(self) -> int:
        return len(self.subjects)


@dataclass(frozen=True)
class Reconstruction:
    """K face depth samples (K, H, W) in mm with the pixels the model claims (H, W)."""

    face_depth_mm: np.ndarray
    mask: np.ndarray

    @property
    def mean_mm(self) -> np.ndarray:
        """The mean face depth over the samples."""
        return self.face_depth_mm.mean(axis=0)

    @property
    def sd_mm(self) -> np.ndarray:
        """Per-pixel standard deviation over the samples (zeros for a single sample)."""
        return self.face_depth_mm.std(axis=0)


class FaceModel(ABC):
    """A model family: fitted or trained on depth data, then asked for faces."""

    family: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def fit(self, data: DepthData, *, seed: int = 0) -> dict[str, float]:
        """Learn from training data; returns named figures of the fit (losses, explained variance)."""

    @abstractmethod
    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """Face depth samples for one skull depth map (H, W) and the subject's metadata."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the fitted state into a folder (atomically, file by file)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> FaceModel:
        """A model from a folder written by `save`."""
