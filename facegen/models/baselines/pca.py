"""Statistical shape regression: the classical computerized reconstruction on depth maps.

Skull and face depth maps are each reduced by PCA; a ridge regression maps the skull's coefficients and
the metadata to the face's coefficients. The residual spread of the face coefficients in training, plus the
face detail the kept modes cannot carry, gives each pixel a predictive SD in closed form (and samples), so
even this baseline says how sure it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegen.data.representations.depth_map import DepthView
from facegen.data.subject import Subject
from facegen.models.base import (
    DepthData,
    FaceModel,
    Reconstruction,
    claimed_pixels,
    load_arrays_model,
    metadata_features,
    save_arrays_model,
)
from facegen.models.registry import register


def _filled(depth: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Depth maps (N, P) with unseen pixels replaced by the per-pixel fill value."""
    return np.where(mask, depth, fill)


def _pca(data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Mean (P,), components (k, P), score SDs (k,) and the explained share of variance."""
    mean = data.mean(axis=0)
    _, s, vt = np.linalg.svd(data - mean, full_matrices=False)
    k = min(k, len(s), max(len(data) - 1, 1))
    variance = s**2
    sd = s[:k] / np.sqrt(max(len(data) - 1, 1))
    return mean, vt[:k], np.maximum(sd, 1e-6), float(variance[:k].sum() / max(variance.sum(), 1e-12))


@register
class StatisticalShapeRegression(FaceModel):
    """PCA of skull and face depth maps with a ridge regression between them (and the metadata)."""

    family = "pca"
    description = "PCA of skull and face depth maps + ridge regression on skull coefficients and sex, age, BMI"

    def __init__(self, skull_components: int = 40, face_components: int = 40, ridge: float = 1.0) -> None:
        if min(skull_components, face_components) < 1 or ridge < 0:
            raise ValueError("components must be at least 1 and ridge non-negative")
        self.skull_components, self.face_components, self.ridge = skull_components, face_components, ridge
        self.state: dict[str, np.ndarray] | None = None
        self.view: DepthView | None = None
        self._sd: np.ndarray | None = None

    def _skull_scores(self, skull_depth: np.ndarray, skull_mask: np.ndarray) -> np.ndarray:
        s = self.state
        x = _filled(skull_depth.reshape(len(skull_depth), -1), skull_mask.reshape(len(skull_mask), -1), s["skull_fill"])
        return (x - s["skull_mean"]) @ s["skull_modes"].T / s["skull_sd"]

    def fit(self, data: DepthData, *, seed: int = 0) -> dict[str, float]:
        """Closed form: PCA by SVD, ridge by a linear solve (the seed is not needed)."""
        n, h, w = data.skull_depth.shape
        self._sd = None
        self.view = data.view
        skull_mask = data.skull_mask.reshape(n, -1)
        face_mask = data.face_mask.reshape(n, -1)
        skull_fill = _masked_mean(data.skull_depth.reshape(n, -1), skull_mask)
        face_fill = _masked_mean(data.face_depth.reshape(n, -1), face_mask)
        x = _filled(data.skull_depth.reshape(n, -1), skull_mask, skull_fill)
        y = _filled(data.face_depth.reshape(n, -1), face_mask, face_fill)
        skull_mean, skull_modes, skull_sd, skull_explained = _pca(x, self.skull_components)
        face_mean, face_modes, face_sd, face_explained = _pca(y, self.face_components)
        self.state = {
            "shape": np.array([h, w]),
            "skull_fill": skull_fill,
            "skull_mean": skull_mean,
            "skull_modes": skull_modes,
            "skull_sd": skull_sd,
            "face_mean": face_mean,
            "face_modes": face_modes,
            "claimed": claimed_pixels(face_mask),
        }
        design = self._design(self._skull_scores(data.skull_depth, data.skull_mask), data.metadata)
        target = (y - face_mean) @ face_modes.T
        penalty = self.ridge * np.eye(design.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        weights = np.linalg.solve(design.T @ design + penalty, design.T @ target)
        residual = target - design @ weights
        self.state["weights"] = weights
        self.state["residual_cov"] = residual.T @ residual / max(n - design.shape[1], 1)
        unexplained = (y - face_mean) - ((y - face_mean) @ face_modes.T) @ face_modes  # what the modes cannot carry
        self.state["detail_var"] = _masked_mean(unexplained**2, face_mask)
        fitted = face_mean + (design @ weights) @ face_modes
        train_mae = float(np.abs(fitted - data.face_depth.reshape(n, -1))[data.face_region.reshape(n, -1)].mean())
        return {"skull_explained": skull_explained, "face_explained": face_explained, "train_mae_mm": train_mae}

    @staticmethod
    def _design(skull_scores: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        return np.hstack([skull_scores, metadata, np.ones((len(skull_scores), 1))])

    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """The regression's face (n_samples = 1), or samples with the training residual spread around it."""
        if self.state is None:
            raise RuntimeError("the model is not fitted: call fit() or load() first")
        s = self.state
        h, w = (int(v) for v in s["shape"])
        if skull_depth.shape != (h, w):
            raise ValueError(f"skull depth map is {skull_depth.shape}, the model was fitted on {(h, w)}")
        design = self._design(self._skull_scores(skull_depth[None], skull_mask[None]), metadata_features(subject)[None])
        coefficients = design @ s["weights"]
        if n_samples > 1:
            rng = np.random.default_rng(seed)
            noise = rng.multivariate_normal(np.zeros(len(s["residual_cov"])), s["residual_cov"], size=n_samples)
            coefficients = coefficients + noise
        faces = s["face_mean"] + coefficients @ s["face_modes"]
        return Reconstruction(faces.reshape(-1, h, w).astype(np.float32), s["claimed"].reshape(h, w),
                              predictive_sd_mm=self.predictive_sd().reshape(h, w))  # fmt: skip

    def predictive_sd(self) -> np.ndarray:
        """(P,) SD in mm of a new face about the regression's: residual covariance of the kept modes, plus the
        per-pixel detail they leave out (the same for every input: the regression's error is homoscedastic)."""
        if self._sd is None:
            s = self.state
            modes = s["face_modes"]
            variance = np.einsum("ip,ij,jp->p", modes, s["residual_cov"], modes) + s.get("detail_var", 0.0)
            self._sd = np.sqrt(np.maximum(variance, 0.0)).astype(np.float32)
        return self._sd

    def save(self, folder: Path) -> None:
        options = {"skull_components": self.skull_components, "face_components": self.face_components,
                   "ridge": self.ridge}  # fmt: skip
        view = self.view.to_dict() if self.view is not None else None
        save_arrays_model(folder, self.state, {"family": self.family, **options, "view": view})

    @classmethod
    def load(cls, folder: Path) -> StatisticalShapeRegression:
        state, record = load_arrays_model(folder)
        model = cls(record["skull_components"], record["face_components"], record["ridge"])
        model.view = DepthView.from_dict(record["view"]) if record.get("view") else None
        model.state = state
        return model


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-pixel mean over the subjects where the pixel is seen (0 where never seen)."""
    count = mask.sum(axis=0)
    return np.where(count > 0, (values * mask).sum(axis=0) / np.maximum(count, 1), 0.0)
