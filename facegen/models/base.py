"""The interface every model family shares, and the depth-map data they learn from.

A model maps a skull depth map and the subject's metadata to face depth maps: `reconstruct(...)` returns
K samples (K = 1 for a deterministic model), so a model that knows its uncertainty can show it. Metadata
enters as three standardised features; an unknown value is 0 (the population centre), never a guess.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from facegen.data.dataset.reader import Dataset
from facegen.data.representations.depth_map import DepthView
from facegen.data.representations.voxel_grid import GridSpec
from facegen.data.subject import Sex, Subject

if TYPE_CHECKING:
    import torch
    import trimesh

AGE_CENTRE_YEARS, AGE_SCALE_YEARS = 50.0, 20.0
BMI_CENTRE, BMI_SCALE = 26.0, 6.0
METADATA_FEATURES = ("sex", "age", "bmi")


def metadata_features(subject: Subject) -> np.ndarray:
    """(3,) float32: sex (+1 male, -1 female), standardised age and BMI; 0 where unknown."""
    sex = 0.0 if subject.sex is None else (1.0 if subject.sex is Sex.MALE else -1.0)
    age = 0.0 if subject.age_years is None else (subject.age_years - AGE_CENTRE_YEARS) / AGE_SCALE_YEARS
    bmi = 0.0 if subject.bmi is None else (subject.bmi - BMI_CENTRE) / BMI_SCALE
    return np.array([sex, age, bmi], np.float32)


def drop_metadata(conditions: torch.Tensor, rate: float) -> torch.Tensor:
    """Training-time dropout of metadata features (B, 3): each set to 0 (unknown) with probability `rate`, so a
    model learns to answer for a subject whose sex, age or BMI is not known."""
    if rate <= 0:
        return conditions
    import torch

    keep = torch.rand(conditions.shape, device=conditions.device) >= rate
    return conditions * keep


GRID_KINDS = ("skull", "face")


@dataclass(frozen=True)
class ArraySource:
    """Where a data set's subjects live on disk: the dataset folder, their rows in its arrays, its voxel grid."""

    root: Path
    rows: tuple[int, ...]
    grid: GridSpec

    @cached_property
    def arrays(self):
        """The dataset's arrays, opened once (read-only) on first use."""
        return Dataset.open(self.root).arrays()


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
    skull_landmarks: dict[str, np.ndarray] | None = None
    """Canonical (N, 3) mm per skull landmark that every subject's landmarks.json has (None: no files)."""
    view: DepthView | None = None
    """Where the depth maps look (pixel size, centre), from the dataset card."""
    source: ArraySource | None = None
    """Where the subjects came from, so 3D models read their voxel grids on demand (None: built in memory)."""

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
            skull_landmarks=_skull_landmarks(ds, [r.subject.subject_id for r in rows]),
            view=ds.spec.view,
            source=ArraySource(Path(root).resolve(), tuple(index), ds.spec.grid),
        )

    def __len__(self) -> int:
        return len(self.subjects)

    @property
    def grid_spec(self) -> GridSpec:
        """The voxel grid of the dataset the subjects came from."""
        return self._source().grid

    def grid(self, kind: str, i: int) -> np.ndarray:
        """Subject i's occupancy grid (X, Y, Z) uint8 0/1 of `kind` 'skull' or 'face', read from the dataset."""
        if kind not in GRID_KINDS:
            raise ValueError(f"grid kind must be one of {', '.join(GRID_KINDS)}, got {kind!r}")
        source, name = self._source(), f"{kind}_grid"
        if name not in source.arrays:
            raise ValueError(f"{source.root} holds no {name} array; write the dataset with grids")
        return np.asarray(source.arrays[name][source.rows[i]], np.uint8)

    def _source(self) -> ArraySource:
        if self.source is None:
            raise ValueError("these depth data were built in memory and hold no voxel grids; load them from a "
                             "dataset folder (DepthData.load) for a 3D model")  # fmt: skip
        return self.source


def _skull_landmarks(ds: Dataset, subject_ids: list[str]) -> dict[str, np.ndarray] | None:
    """The skull landmarks all subjects share, stacked per name; None when a subject has no landmark file."""
    per_subject = []
    for subject_id in subject_ids:
        path = ds.paths.subject_dir(subject_id) / "landmarks.json"
        if not path.exists():
            return None
        per_subject.append(json.loads(path.read_text()).get("skull", {}))
    shared = set.intersection(*(set(p) for p in per_subject))
    return {name: np.array([p[name] for p in per_subject], np.float64) for name in sorted(shared)} or None


CLAIMED_SHARE = 0.5
"""A learned model answers for the pixels where at least half of its training faces were seen."""


def claimed_pixels(face_mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels seen in at least CLAIMED_SHARE of the training faces (N, H, W)."""
    return face_mask.mean(axis=0) >= CLAIMED_SHARE


@dataclass(frozen=True)
class Reconstruction:
    """K face depth samples (K, H, W) in mm with the pixels the model claims (H, W)."""

    face_depth_mm: np.ndarray
    mask: np.ndarray
    face_mesh: trimesh.Trimesh | None = None
    """A 3D model's face surface in canonical mm, scored in 3D beside the depth map (None: depth maps only)."""
    predictive_sd_mm: np.ndarray | None = None
    """(H, W) the model's own predictive SD of the face depth in mm, where it has one in closed form."""

    @property
    def mean_mm(self) -> np.ndarray:
        """The mean face depth over the samples."""
        return self.face_depth_mm.mean(axis=0)

    @property
    def sd_mm(self) -> np.ndarray:
        """Per-pixel SD of the face depth: the model's predictive SD when it states one, else over the samples."""
        if self.predictive_sd_mm is not None:
            return self.predictive_sd_mm
        return self.face_depth_mm.std(axis=0)

    @property
    def has_spread(self) -> bool:
        """Whether `sd_mm` says something: a predictive SD, or several samples."""
        return self.predictive_sd_mm is not None or self.face_depth_mm.shape[0] > 1


class FaceModel(ABC):
    """A model family: fitted or trained on depth data, then asked for faces."""

    family: ClassVar[str]
    description: ClassVar[str]
    stochastic: ClassVar[bool] = True
    """False for a model that gives one face per input whatever the seed (it returns a single sample)."""
    view: DepthView | None = None
    """Where the depth maps it was trained on look: a new case is rendered in this view."""
    grid: GridSpec | None = None
    """A 3D model's voxel grid: a case's skull is voxelized on it for `reconstruct_grid` (None: depth maps only)."""

    @property
    def default_samples(self) -> int:
        """Samples per face when the caller does not say: 1 (the model's single answer) unless it knows better."""
        return 1

    @abstractmethod
    def fit(self, data: DepthData, *, seed: int = 0) -> dict[str, float]:
        """Learn from training data; returns named figures of the fit (losses, explained variance)."""

    def fit_held_out(self, val: DepthData) -> dict[str, float]:
        """Learn what only subjects unseen in training can teach (an ensemble's member weights); the trainer calls
        it with the val split after `fit`. Most families learn nothing there."""
        return {}

    @abstractmethod
    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """Face depth samples for one skull depth map (H, W) and the subject's metadata."""

    def reconstruct_many(self, data: DepthData, *, seed: int = 0, n_samples: int = 1) -> list[Reconstruction]:
        """Faces for every subject of a data set (families override this to batch)."""
        return [
            self.reconstruct(data.skull_depth[i], data.skull_mask[i], s, seed=seed, n_samples=n_samples)
            for i, s in enumerate(data.subjects)
        ]

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the fitted state into a folder (atomically, file by file)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> FaceModel:
        """A model from a folder written by `save`."""


STATE_FILE, RECORD_FILE = "state.npz", "model.json"


def save_arrays_model(folder: Path, state: dict[str, np.ndarray] | None, record: dict) -> None:
    """A model made of arrays: state.npz and model.json (family, options, view), each written atomically."""
    from facegen.io.atomic import write_bytes_atomic, write_json_atomic

    if state is None:
        raise RuntimeError("nothing to save: the model is not fitted")
    buf = io.BytesIO()
    np.savez_compressed(buf, **state)
    write_bytes_atomic(Path(folder) / STATE_FILE, buf.getvalue())
    write_json_atomic(Path(folder) / RECORD_FILE, record)


def load_arrays_model(folder: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The (state, record) written by `save_arrays_model`."""
    record = json.loads((Path(folder) / RECORD_FILE).read_text())
    with np.load(Path(folder) / STATE_FILE) as state:
        return {k: state[k] for k in state.files}, record


class TrainableModel(FaceModel):
    """A neural family trained in steps by the shared trainer (`facegen.training`), 2D or 3D alike.

    The trainer owns devices, precision, data order, distribution and checkpoints; the family owns its
    networks, optimisers and what one step does.
    """

    def fit(self, data: DepthData, *, seed: int = 0) -> dict[str, float]:
        """Refused: a neural family is trained by the trainer, which models never import (it sits above them)."""
        raise TypeError(f"{self.family} is trained in steps: call facegen.training.loop.fit_model(model, data, "
                        "seed=...) to train it in memory, or run `facegen train`")  # fmt: skip

    @abstractmethod
    def networks(self) -> dict[str, torch.nn.Module]:
        """Every network with weights, by name (the trainer moves, wraps and checkpoints them)."""

    @abstractmethod
    def training_set(self, data: DepthData) -> TrainingSet:
        """The training tensors, cut into batches by the trainer."""

    @abstractmethod
    def prepare(self, data: DepthData) -> None:
        """Learn what is not learned by gradient (e.g. the pixels the model claims) from the training data."""

    @abstractmethod
    def optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per network group, by name."""

    @abstractmethod
    def training_step(
        self,
        nets: dict[str, torch.nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        batch: dict[str, torch.Tensor],
        autocast: Callable[[], AbstractContextManager],
    ) -> dict[str, float]:
        """One optimisation step on a batch with `nets` (possibly DDP-wrapped); returns named losses."""


class TrainingSet(Protocol):
    """What the trainer needs of training data: a length and batches by index."""

    def __len__(self) -> int: ...

    def batch(self, index: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]: ...


class TensorBatches:
    """A TrainingSet of named tensors held in memory (first axis: subjects), cut into batches by index."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        sizes = {len(t) for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"training tensors disagree on the number of subjects: {sorted(sizes)}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def batch(self, index: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        import torch

        i = torch.from_numpy(np.asarray(index, np.int64))
        return {name: tensor[i].to(device) for name, tensor in self.tensors.items()}
