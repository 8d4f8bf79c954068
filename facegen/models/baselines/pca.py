"""Statistical shape regression: the classical computerized reconstruction on depth maps.

Skull and face depth maps are each reduced by PCA; a ridge regression maps the skull's coefficients and
the metadata to the face's coefficients. The residual spread of the face coefficients in training, plus the
face detail the kept modes cannot carry, gives each pixel a predictive SD in closed form (and samples), so
even this baseline says how sure it is.

`relative_to_bone` (the default for new fits): the skull enters as its bone envelope (its openings lidded: what
real and synthetic skulls share) and the face as the log of its tissue depth over that envelope
(`facegen.models.bone_relative`), so that no prediction can pass into the bone. A skull farther from the training
skulls than nearly all of them (a real skull read by a model of synthetic ones) is read as the nearest skull within
their spread, so that the regression does not extrapolate into faces no training face resembles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

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
from facegen.models.bone_relative import (
    envelope_of,
    face_from_log_tissue,
    face_sd_of_log_tissue,
    log_tissue,
    require_view,
)
from facegen.models.registry import register

FOREIGN_BONE = 0.02
"""Bone at pixels where fewer than this share of training skulls have any is not read (relative to bone)."""
COMPLETION_FADE_MM = 15.0
SEAM_BAND_MM = 12.0
"""Within this distance of a cut (2 SD of the envelope's smoothing) a cut skull's envelope falls away as at the bone's
real outline; there it gives way to the completion. Without it the real headsq CT's face (cut above the brow) had a
crease across the forehead: an 8 mm step between two pixel rows."""
SKULL_SCORE_PERCENTILE = 99.0
"""A skull's whitened scores are held within this percentile of the training skulls' score lengths. The real headsq
skull's scores are 3.3x as long as a training skull's (RMS); read as they are, its face's coefficients reach 6-7 SD of
the training faces' and the face breaks into ripples (mean distance to the person's own skin 6.8 mm, 27% of the face
within 2.5 mm); held, 6.2 mm and 39%. Held-out synthetic heads (within the spread) are not changed."""
LOG_TISSUE_SMOOTH_MM = 1.4
"""The predicted log tissue depth is smoothed by a Gaussian of this SD: the modes carry pixel-scale detail (each
training face's nostrils and lid creases, at 2 mm pixels) that no single face has where the sum puts it. On 45
held-out synthetic heads the mean error falls from 2.50 to 2.48 mm."""


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

    def __init__(
        self, skull_components: int = 40, face_components: int = 40, ridge: float = 1.0, relative_to_bone: bool = True
    ) -> None:
        if min(skull_components, face_components) < 1 or ridge < 0:
            raise ValueError("components must be at least 1 and ridge non-negative")
        self.skull_components, self.face_components, self.ridge = skull_components, face_components, ridge
        self.relative_to_bone = relative_to_bone
        self.state: dict[str, np.ndarray] | None = None
        self.view: DepthView | None = None
        self._sd: np.ndarray | None = None
        self._support: np.ndarray | None = None

    def _skull_vectors(self, skull_depth: np.ndarray, skull_mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
        """(N, P) what the regression reads of each skull: its envelope (bone the training skulls have and this
        one lacks completed from the envelope's modes, once fitted), or its depth with unseen pixels filled."""
        n = len(skull_depth)
        if not self.relative_to_bone:
            return _filled(skull_depth.reshape(n, -1), skull_mask.reshape(n, -1), fill)
        self._support = None
        fitted = self.state is not None and "skull_support" in self.state
        if fitted:  # bone where no training skull has any (vertebrae, a support, the hyoid) is not read
            skull_mask = skull_mask & (self.state["skull_support"].reshape(skull_mask.shape[-2:]) >= FOREIGN_BONE)
        envelope, support = envelope_of(skull_depth, skull_mask, require_view(self.view))
        self._support = support.reshape(n, -1)  # fit() keeps where the training skulls rest
        x = envelope.reshape(n, -1).astype(np.float64)
        if fitted:
            x = np.stack([self._completed(row, seen) for row, seen in zip(x, support.reshape(n, -1), strict=True)])
        return x

    def _completed(self, envelope: np.ndarray, support: np.ndarray) -> np.ndarray:
        """(P,) the envelope with the pixels that most training skulls cover and this one does not (a field of view
        cut above the brow, missing bone) taken from the envelope modes fitted to the pixels it has, away from the
        cut (ridge, unit prior), their misfit there carried in and fading over COMPLETION_FADE_MM. Within
        SEAM_BAND_MM of the cut the envelope (which falls away there as at a real outline) gives way to the
        completion gradually: no step and no crease at the seam."""
        s = self.state
        shape = tuple(int(v) for v in s["shape"])
        missing = (s["skull_support"] >= 0.5) & ~support
        have = (s["skull_support"] >= 0.5) & support
        if not missing.any():
            return envelope
        from_cut = ndimage.distance_transform_edt(~missing.reshape(shape)).reshape(-1) * self.view.pixel_mm
        reliable = have & (from_cut >= SEAM_BAND_MM)
        if reliable.sum() < len(s["skull_sd"]):
            return envelope
        basis = (s["skull_modes"] * s["skull_sd"][:, None])[:, reliable].T
        coefficients = np.linalg.solve(basis.T @ basis + np.eye(basis.shape[1]),
                                       basis.T @ (envelope[reliable] - s["skull_mean"][reliable]))  # fmt: skip
        completion = s["skull_mean"] + (coefficients * s["skull_sd"]) @ s["skull_modes"]
        misfit = np.where(reliable, envelope - completion, 0.0).reshape(shape)
        distance, (rows, cols) = ndimage.distance_transform_edt(~reliable.reshape(shape), return_indices=True)
        carried = misfit[rows, cols] * np.exp(-distance * self.view.pixel_mm / COMPLETION_FADE_MM)
        filled = completion + carried.reshape(-1)
        weight = np.clip(from_cut / SEAM_BAND_MM, 0.0, 1.0)  # 0 at the cut, 1 where the envelope is reliable
        return np.where(missing, filled, np.where(have, weight * envelope + (1.0 - weight) * filled, envelope))

    def _skull_scores(self, skull_depth: np.ndarray, skull_mask: np.ndarray) -> np.ndarray:
        s = self.state
        x = self._skull_vectors(skull_depth, skull_mask, s["skull_fill"])
        return (x - s["skull_mean"]) @ s["skull_modes"].T / s["skull_sd"]

    def fit(self, data: DepthData, *, seed: int = 0) -> dict[str, float]:
        """Closed form: PCA by SVD, ridge by a linear solve (the seed is not needed)."""
        n, h, w = data.skull_depth.shape
        self._sd = None
        self.view = data.view
        skull_mask = data.skull_mask.reshape(n, -1)
        face_mask = data.face_mask.reshape(n, -1)
        skull_fill = _masked_mean(data.skull_depth.reshape(n, -1), skull_mask)
        x = self._skull_vectors(data.skull_depth, data.skull_mask, skull_fill)  # unfitted: no completion
        y = data.face_depth.reshape(n, -1)
        if self.relative_to_bone:  # the face as log tissue depth over the envelope (x is the envelope)
            y = log_tissue(y, x)
        y = _filled(y, face_mask, _masked_mean(y, face_mask))
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
        skull_scores = (x - skull_mean) @ skull_modes.T / skull_sd
        design = self._design(skull_scores, data.metadata)
        self.state["skull_score_radius"] = np.array(np.percentile(np.linalg.norm(skull_scores, axis=1),
                                                                   SKULL_SCORE_PERCENTILE))  # fmt: skip
        self.state["log_tissue_smooth_mm"] = np.array(LOG_TISSUE_SMOOTH_MM if self.relative_to_bone else 0.0)
        if self.relative_to_bone:  # where training skulls rest (to complete a cut skull); the log depths' range
            self.state.update(skull_support=self._support.mean(axis=0), log_tissue_low=np.min(y, axis=0),
                              log_tissue_high=np.max(y, axis=0))  # fmt: skip
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
        if self.relative_to_bone:
            fitted = face_from_log_tissue(fitted.reshape(n, h, w), x.reshape(n, h, w), data.skull_depth,
                                          data.skull_mask, self.view.pixel_mm).reshape(n, -1)  # fmt: skip
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
        x = self._skull_vectors(skull_depth[None], skull_mask[None], s["skull_fill"])
        scores = self._held_in_spread((x - s["skull_mean"]) @ s["skull_modes"].T / s["skull_sd"])
        coefficients = self._design(scores, metadata_features(subject)[None]) @ s["weights"]
        central = s["face_mean"] + coefficients[0] @ s["face_modes"]  # the regression's own face: the SD's centre
        if n_samples > 1:
            rng = np.random.default_rng(seed)
            noise = rng.multivariate_normal(np.zeros(len(s["residual_cov"])), s["residual_cov"], size=n_samples)
            coefficients = coefficients + noise
        faces = s["face_mean"] + coefficients @ s["face_modes"]
        sd = self.predictive_sd()
        if self.relative_to_bone:  # log tissue depth (within the range training faces had) back to the face
            faces = np.clip(self._smoothed(faces), s["log_tissue_low"], s["log_tissue_high"])
            central = np.clip(self._smoothed(central), s["log_tissue_low"], s["log_tissue_high"])[0]
            sd = face_sd_of_log_tissue(central, self._smoothed(sd)[0] ** 2)  # the smoothed SD bounds the samples
            faces = face_from_log_tissue(faces.reshape(-1, h, w), x[0].reshape(h, w), skull_depth, skull_mask,
                                         self.view.pixel_mm)  # fmt: skip
        return Reconstruction(faces.reshape(-1, h, w).astype(np.float32), s["claimed"].reshape(h, w),
                              predictive_sd_mm=sd.reshape(h, w))  # fmt: skip

    def _held_in_spread(self, scores: np.ndarray) -> np.ndarray:
        """(N, K) skull scores, each shortened to the training skulls' SKULL_SCORE_PERCENTILE length if longer
        (models fitted before it: as they are)."""
        if "skull_score_radius" not in self.state:
            return scores
        length = np.linalg.norm(scores, axis=1, keepdims=True)
        return scores * np.minimum(1.0, float(self.state["skull_score_radius"]) / np.maximum(length, 1e-12))

    def _smoothed(self, log_tissue_mm: np.ndarray) -> np.ndarray:
        """(N, P) log tissue depths smoothed over each image by the fitted LOG_TISSUE_SMOOTH_MM (models fitted
        before it: as they are)."""
        smooth_mm = float(self.state.get("log_tissue_smooth_mm", 0.0))
        if smooth_mm <= 0:
            return log_tissue_mm
        h, w = (int(v) for v in self.state["shape"])
        sigma = (0.0, smooth_mm / require_view(self.view).pixel_mm, smooth_mm / self.view.pixel_mm)
        images = np.asarray(log_tissue_mm, np.float64).reshape(-1, h, w)
        return ndimage.gaussian_filter(images, sigma, mode="nearest").reshape(len(images), -1)

    def predictive_sd(self) -> np.ndarray:
        """(P,) SD of a new face about the regression's, in the regression's own units (mm; log-mm relative to
        bone): residual covariance of the kept modes, plus the per-pixel detail they leave out."""
        if self._sd is None:
            s = self.state
            modes = s["face_modes"]
            variance = np.einsum("ip,ij,jp->p", modes, s["residual_cov"], modes) + s.get("detail_var", 0.0)
            self._sd = np.sqrt(np.maximum(variance, 0.0)).astype(np.float32)
        return self._sd

    def save(self, folder: Path) -> None:
        options = {"skull_components": self.skull_components, "face_components": self.face_components,
                   "ridge": self.ridge, "relative_to_bone": self.relative_to_bone}  # fmt: skip
        view = self.view.to_dict() if self.view is not None else None
        save_arrays_model(folder, self.state, {"family": self.family, **options, "view": view})

    @classmethod
    def load(cls, folder: Path) -> StatisticalShapeRegression:
        state, record = load_arrays_model(folder)
        model = cls(record["skull_components"], record["face_components"], record["ridge"],
                    relative_to_bone=bool(record.get("relative_to_bone", False)))  # models fitted before it: absolute
        model.view = DepthView.from_dict(record["view"]) if record.get("view") else None
        model.state = state
        return model


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-pixel mean over the subjects where the pixel is seen (0 where never seen)."""
    count = mask.sum(axis=0)
    return np.where(count > 0, (values * mask).sum(axis=0) / np.maximum(count, 1), 0.0)
