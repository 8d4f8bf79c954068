"""An ensemble family: the mean of trained members' faces, with the spread they state and their disagreement.

Two families that err differently (the statistical regression reads the skull's global modes, the GAN its local
shape) err less on average together: on the benchmark's 200 held-out heads (2026-12-03) 0.65 gan2d + 0.35 pca was
2.12 mm from the truth where the better alone was 2.21. The ensemble states an uncertainty as a mixture of its
members does: per pixel, the mean of the variances its members state (a member that states none adds nothing)
plus the variance of the members' faces about their mean. Members are trained runs on the same depth-map view;
each is copied into the ensemble's folder, so that it is one self-contained model (and one weights hash).

The mean is weighted: by `weights` when given, else by the weights that give the val split's faces the least mean
error (a stacked regression, Breiman 1996, on subjects no member trained on; on a simplex grid, since the mean
absolute error is the benchmark's figure), equal where there is no val split.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np

from facegen.data.subject import Subject
from facegen.models.base import RECORD_FILE, DepthData, FaceModel, Reconstruction
from facegen.models.registry import load_trained, model_folder, register

MEMBERS_DIR = "members"
"""The folder of an ensemble's model that holds a copy of each member's model folder (0, 1, ...)."""
WEIGHT_STEP = 0.05
"""The grid of member weights searched on the val split (every weight a multiple of it, summing to 1)."""


@register
class Ensemble(FaceModel):
    """The mean of trained depth-map models' faces; spread: members' stated variances plus their disagreement."""

    family = "ensemble"
    description = "mean of trained depth-map models' faces (e.g. gan2d + pca), spread from members and disagreement"

    def __init__(
        self, members: list[str] | tuple[str, ...] = (), weights: list[float] | tuple[float, ...] = ()
    ) -> None:
        self.members = [str(m) for m in members]
        self.models: list[FaceModel] = []
        self.sources: list[Path] = []
        given = np.asarray(weights if weights else [1.0] * len(self.members), np.float64)
        if len(given) != len(self.members) or (given < 0).any() or (len(given) and given.sum() <= 0):
            raise ValueError(f"model.weights must be one non-negative weight per member, not all 0; got "
                             f"{list(weights)} for {len(self.members)} members")  # fmt: skip
        self.weights = given / max(given.sum(), 1e-12)
        self.weighed_on = "given" if weights else "equal"
        """Where the weights come from: given (kept, not fitted), equal (no val split) or the val split's subjects."""

    def fit(self, data: DepthData, *, seed: int = 0) -> dict[str, float]:
        """Load the member runs (trained beforehand) and check they read the data's view (the weights are learned on
        held-out subjects: `fit_held_out`)."""
        if len(self.members) < 2:
            raise ValueError(f"an ensemble needs at least two member runs (model.members), got {self.members}")
        self.sources = [model_folder(Path(m)) for m in self.members]
        self.models = [load_trained(m) for m in self.members]
        view = data.view or self.models[0].view  # every member reads the dataset's view (or the first member's)
        for run, model in zip(self.members, self.models, strict=True):
            if model.grid is not None or model.view is None:
                raise ValueError(f"ensemble member {run} is not a depth-map model ({model.family})")
            if model.view != view:
                raise ValueError(f"ensemble member {run} reads another view than this dataset's: {model.view} "
                                 f"against {view}")  # fmt: skip
        self.view = view
        return {"members": float(len(self.models))}

    def fit_held_out(self, val: DepthData) -> dict[str, float]:
        """Member weights that give the val subjects' faces the least mean absolute error (unless given); the run's
        validation figures then come from the subjects they were fitted on (a grid of a few weights: little optimism,
        the benchmark scores on its test split)."""
        self._require_fitted()
        if self.weighed_on == "given" or not len(val):
            return {}
        answers = [m.reconstruct_many(val, seed=0) for m in self.models]
        faces = np.stack([[a.mean_mm for a in per_member] for per_member in answers]).astype(np.float64)
        mask = np.logical_and.reduce([[a.mask for a in per_member] for per_member in answers])
        mask &= val.face_region & val.face_mask
        counts = np.maximum(mask.sum(axis=(1, 2)), 1)

        def error(w: np.ndarray) -> float:  # per subject's mean over its pixels, then over subjects
            face = np.tensordot(w, faces, axes=1)
            return float(((np.abs(face - val.face_depth) * mask).sum(axis=(1, 2)) / counts).mean())

        steps = round(1 / WEIGHT_STEP)
        grid = [np.array(c, np.float64) / steps for c in itertools.product(range(steps + 1), repeat=len(faces))
                if sum(c) == steps]  # fmt: skip
        errors = [error(w) for w in grid]
        self.weights, self.weighed_on = grid[int(np.argmin(errors))], "val"
        equal = error(np.full(len(faces), 1 / len(faces)))
        figures = {f"weight_{i}": float(w) for i, w in enumerate(self.weights)}
        return figures | {"val_mae_mm_weighted": min(errors), "val_mae_mm_equal": equal}

    def _combined(self, answers: list[Reconstruction], n_samples: int, seed: int) -> Reconstruction:
        """One subject's members' answers as the ensemble's: weighted mean face, mixture SD, samples about the mean."""
        w = self.weights
        means = np.stack([a.mean_mm for a in answers]).astype(np.float64)
        mask = np.logical_and.reduce([a.mask for a in answers])
        mean = np.tensordot(w, means, axes=1)
        stating = [i for i, a in enumerate(answers) if a.predictive_sd_mm is not None]
        stated = sum(w[i] * answers[i].predictive_sd_mm.astype(np.float64) ** 2 for i in stating)
        stated = stated / max(w[stating].sum(), 1e-12) if stating else 0.0  # members that state none add nothing
        variance = np.tensordot(w, (means - mean) ** 2, axes=1) + stated
        faces = mean[None]
        if n_samples > 1:  # members' own samples (drawn by member weight), moved so that their means become this one
            rng = np.random.default_rng(seed)
            sampled = [(i, a.face_depth_mm - a.mean_mm) for i, a in enumerate(answers) if a.face_depth_mm.shape[0] > 1]
            if sampled:
                pooled = np.concatenate([d for _, d in sampled])
                p = np.concatenate([np.full(len(d), w[i] / len(d)) for i, d in sampled])
                p = p / p.sum() if p.sum() > 0 else None
                faces = mean + pooled[rng.choice(len(pooled), n_samples, replace=True, p=p)]
        return Reconstruction(faces.astype(np.float32), mask, predictive_sd_mm=np.sqrt(variance).astype(np.float32))

    def _require_fitted(self) -> None:
        if not self.models:
            raise RuntimeError("the ensemble has no members: fit() (with model.members) or load() it first")

    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """The mean of every member's face for one skull; with n_samples > 1, members' samples about that mean."""
        self._require_fitted()
        answers = [m.reconstruct(skull_depth, skull_mask, subject, seed=seed, n_samples=n_samples)
                   for m in self.models]  # fmt: skip
        return self._combined(answers, n_samples, seed)

    def reconstruct_many(self, data: DepthData, *, seed: int = 0, n_samples: int = 1) -> list[Reconstruction]:
        """Every member over the whole set (each batches its own way), then combined per subject."""
        self._require_fitted()
        answers = [m.reconstruct_many(data, seed=seed, n_samples=n_samples) for m in self.models]
        return [self._combined(list(per_subject), n_samples, seed) for per_subject in zip(*answers, strict=True)]

    def save(self, folder: Path) -> None:
        """A copy of each member's model folder, then model.json (written last: a half-copied ensemble has none)."""
        from facegen.io.atomic import write_json_atomic

        self._require_fitted()
        folder = Path(folder)
        for i, source in enumerate(self.sources):
            target = folder / MEMBERS_DIR / str(i)
            if target.resolve() != source.resolve():
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target)
        record = {"family": self.family, "members": self.members, "families": [m.family for m in self.models],
                  "weights": [float(w) for w in self.weights], "weighed_on": self.weighed_on,
                  "view": self.view.to_dict() if self.view is not None else None}  # fmt: skip
        write_json_atomic(folder / RECORD_FILE, record)

    @classmethod
    def load(cls, folder: Path) -> Ensemble:
        record = json.loads((Path(folder) / RECORD_FILE).read_text())
        model = cls(record["members"])
        if "weights" in record:  # ensembles saved before weights were fitted: equal
            model.weights, model.weighed_on = np.asarray(record["weights"], np.float64), record["weighed_on"]
        model.sources = [Path(folder) / MEMBERS_DIR / str(i) for i in range(len(record["members"]))]
        model.models = [load_trained(source) for source in model.sources]
        model.view = model.models[0].view
        return model
