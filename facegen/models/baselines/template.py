"""Tissue-depth template: the manual forensic method, computerized.

Population soft-tissue depths (FSTT_TABLE, shifted for the subject's sex, age and BMI) stand as pegs on the
skull's landmarks, perpendicular to the bone; the skin runs through the peg tips over the bony envelope and
spans the bone's hollows, as the clay does. Nose (Rynn, Wilkinson & Peters 2010) and eyes (Stephan &
Davidson 2008) follow the published rules. No face shape is learned: `fit` only learns where the landmarks
lie on a skull of a given size, since a skull depth map carries none. Samples draw the depths from the
table's spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.interpolate import RBFInterpolator

from facegen.data.representations.depth_map import DepthView
from facegen.data.subject import Sex, Subject
from facegen.data.synthetic.population import population_moments
from facegen.data.synthetic.tissue_table import FSTT_TABLE, LandmarkDepth
from facegen.models.base import DepthData, FaceModel, Reconstruction, load_arrays_model, save_arrays_model
from facegen.models.registry import register

DEFAULT_FIELD_MM, DEFAULT_CENTRE_MM = 256.0, (0.0, -3.0)
"""Without a view, the image is taken to cover what `facegen synth` renders: 256 mm square around (0, -3)."""
TABLE_ROWS: dict[str, LandmarkDepth] = {
    name: row for row in FSTT_TABLE for name in ([f"{row.name}_l", f"{row.name}_r"] if row.bilateral else [row.name])
}
ENVELOPE_RADIUS_MM = 22.0
"""A grey closing with a disc of this radius bridges the orbits (~40 mm) and nasal aperture (~25 mm), as clay does."""
SPLINE_SMOOTHING = 1.0
NORMAL_SMOOTHING_MM = 1.5
"""Bone normals for the pegs come from the envelope smoothed over this width (Gaussian SD)."""
SKIN_SPAN_MM = 20.0
"""The skin bridges hollows of the bone that a ball of this radius cannot enter (as clay strips between pegs)."""
DEPTH_CORRELATION_MM = 22.0
"""Sampled landmark depths correlate as exp(-d^2 / 2L^2): r ~ 0.77 at 16 mm, as lips and chin (FSI 2018)."""
EYE_PROJECTION_MM, EYEBALL_RADIUS_MM, EYE_OFFSET_MM, EYELID_MM = 16.0, 12.0, (2.3, 1.4), 1.0
"""Corneal apex 16 mm in front of the lateral orbital rim; eyeball 2.3 mm lateral and 1.4 mm above the orbit
centre (Stephan & Davidson 2008); a 12 mm radius eyeball under 1 mm closed lids."""
NOSE_WIDTH_MM, NOSE_PROJECTION_SD_MM = 42.0, 3.5
"""Alar width (adult mean of cfr-facts section 2) and the single-case error of the Rynn pronasale rules."""


def _default_view(shape: tuple[int, int]) -> DepthView:
    return DepthView(shape, DEFAULT_FIELD_MM / shape[1], DEFAULT_CENTRE_MM)


def _support(skull_mask: np.ndarray, pixel_mm: float) -> np.ndarray:
    """The skull's silhouette with the gaps between teeth and any enclosed holes filled."""
    closed = ndimage.binary_closing(skull_mask, _disc(3.0 / pixel_mm), border_value=0)
    return ndimage.binary_fill_holes(closed | skull_mask)


def _disc(radius_px: float) -> np.ndarray:
    r = max(int(np.ceil(radius_px)), 1)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx**2 + yy**2 <= radius_px**2


def _size_features(support: np.ndarray, view: DepthView) -> np.ndarray:
    """Left, right, top and bottom edge (mm) of the skull's silhouette: what sets the landmark layout."""
    x, y = view.pixel_centres()
    cols, rows = np.flatnonzero(support.any(axis=0)), np.flatnonzero(support.any(axis=1))
    if not len(cols):
        raise ValueError("the skull mask is empty")
    return np.array([x[cols[0]], x[cols[-1]], y[rows[0]], y[rows[-1]]])


def bony_envelope(skull_depth: np.ndarray, support: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Skull depth with orbits, nasal aperture and teeth gaps bridged, lightly smoothed; -inf off the skull."""
    low = float(skull_depth[support].min()) - 1.0
    filled = ndimage.grey_closing(np.where(support, skull_depth, low), footprint=_disc(ENVELOPE_RADIUS_MM / pixel_mm))
    filled = np.where(support, filled, 0.0)
    weight = ndimage.gaussian_filter(support.astype(float), 1.5 / pixel_mm)
    smooth = ndimage.gaussian_filter(filled, 1.5 / pixel_mm) / np.maximum(weight, 1e-6)
    return np.where(support, smooth, -np.inf)


def roll_over_rim(envelope: np.ndarray, rim: np.ndarray, thickness: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Skin beyond the silhouette (K, H, W): the upper envelope of balls of radius t (K, R) on the R rim pixels.

    There the frontal view sees the tissue on the sides of the head: the bone's offset surface."""
    rows, cols = np.nonzero(rim)
    bone, reach2 = envelope[rows, cols], thickness.max(axis=0) ** 2
    out = np.full((len(thickness), *rim.shape), -np.inf)
    r = int(np.sqrt(reach2.max()) // pixel_mm)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            d2 = (dy * dy + dx * dx) * pixel_mm**2
            rr, cc = rows + dy, cols + dx
            keep = (reach2 >= d2) & (rr >= 0) & (rr < rim.shape[0]) & (cc >= 0) & (cc < rim.shape[1])
            if keep.any():
                left = thickness[:, keep] ** 2 - d2
                lift = np.where(left >= 0, np.sqrt(np.abs(left)), -np.inf)
                out[:, rr[keep], cc[keep]] = np.maximum(out[:, rr[keep], cc[keep]], bone[keep] + lift)
    return out


def tissue_field(xy: np.ndarray, depths: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Depths (L, K) at landmarks spread over the grid points (P, 2): a thin-plate spline, kept in their range."""
    spline = RBFInterpolator(xy, depths, kernel="thin_plate_spline", smoothing=SPLINE_SMOOTHING)
    return np.clip(spline(grid), depths.min(axis=0), depths.max(axis=0))


def skin_surface(envelope, support, xy, depths, view: DepthView) -> np.ndarray:
    """Faces (K, H, W) through the tips of tissue-depth pegs (L, K) set on the bone along its normals.

    As in the manual method, each peg stands on the bone at its landmark, perpendicular to the bone; the skin
    passes through the peg tips, its height over the bony envelope interpolated between them, and spans the
    bone's hollows as clay strips do. Beyond the skull's silhouette it rolls over the rim with the local
    tissue depth as radius."""
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(x, y)
    rim = support & ~ndimage.binary_erosion(support)
    grid, rim_grid = np.column_stack([xx[support], yy[support]]), np.column_stack([xx[rim], yy[rim]])
    dense = _dense(envelope)
    smooth = ndimage.gaussian_filter(dense, NORMAL_SMOOTHING_MM / view.pixel_mm)
    slope_y, slope_x = np.gradient(smooth, -view.pixel_mm, view.pixel_mm)  # rows run toward -y
    normals = np.stack([-_at(slope_x, xy, view), -_at(slope_y, xy, view), np.ones(len(xy))], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    bone = np.column_stack([xy, _at(dense, xy, view)])
    face = np.full((depths.shape[1], *support.shape), -np.inf)
    rim_depth = np.zeros((depths.shape[1], len(rim_grid)))
    for k, t in enumerate(depths.T):
        tips = bone + t[:, None] * normals
        on_bone = _at(support.astype(float), tips[:, :2], view, order=0) > 0
        rise = tips[on_bone, 2] - _at(dense, tips[on_bone, :2], view)
        face[k, support] = envelope[support] + tissue_field(tips[on_bone, :2], rise[:, None], grid)[:, 0]
        rim_depth[k] = tissue_field(xy, t[:, None], rim_grid)[:, 0]
    face = np.where(support, face, roll_over_rim(envelope, rim, rim_depth, view.pixel_mm))
    return _ball_closing(face, SKIN_SPAN_MM, view.pixel_mm)


def _ball_closing(surface: np.ndarray, radius_mm: float, pixel_mm: float) -> np.ndarray:
    """Surfaces (K, H, W) with every hollow a ball of this radius cannot enter filled: the skin spans them."""
    r = int(np.ceil(radius_mm / pixel_mm))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1] * pixel_mm
    footprint = xx**2 + yy**2 <= radius_mm**2
    ball = np.sqrt(np.where(footprint, radius_mm**2 - xx**2 - yy**2, 0.0))
    closed = np.stack([ndimage.grey_closing(_dense(s), footprint=footprint, structure=ball) for s in surface])
    return np.where(np.isfinite(surface), np.maximum(closed, surface), surface)


def _dense(surface: np.ndarray) -> np.ndarray:
    """A surface with its -inf pixels given the value of the nearest finite one."""
    index = ndimage.distance_transform_edt(~np.isfinite(surface), return_distances=False, return_indices=True)
    return surface[tuple(index)]


def _at(image: np.ndarray, xy: np.ndarray, view: DepthView, order: int = 1) -> np.ndarray:
    """Image values at canonical points (P, 2), bilinear by default."""
    rc = view.to_pixel(np.column_stack([xy, np.zeros(len(xy))]))
    return ndimage.map_coordinates(image, rc.T, order=order, mode="nearest")


def landmark_depths(subject: Subject, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Expected tissue depth (mm) at each landmark for this subject, and its SD given what is known.

    Shifts are centred on the population as in the synthetic tissue model; an unknown covariate adds nothing
    to the mean and keeps its share of the spread."""
    pop = population_moments()
    mean, sd = np.zeros(len(names)), np.zeros(len(names))
    for i, name in enumerate(names):
        row = TABLE_ROWS[name]
        explained = 0.0
        mean[i] = row.mean_mm
        if subject.bmi is not None:
            mean[i] += row.bmi_slope_mm * (subject.bmi - pop["bmi_mean"])
            explained += (row.bmi_slope_mm * pop["bmi_sd"]) ** 2
        if subject.sex is not None:
            mean[i] += row.male_minus_female_mm * (0.5 if subject.sex is Sex.MALE else -0.5)
            explained += (row.male_minus_female_mm / 2) ** 2
        if subject.age_years is not None:
            mean[i] += row.age_slope_mm * (subject.age_years - pop["age_mean"]) / 10.0
            explained += (row.age_slope_mm * pop["age_sd"] / 10.0) ** 2
        sd[i] = np.sqrt(max(row.sd_mm**2 - explained, (0.5 * row.sd_mm) ** 2))
    return np.maximum(mean, 1.0), sd


@register
class TissueDepthTemplate(FaceModel):
    """Table soft-tissue depths at skull landmarks, interpolated into a face, plus rule-based nose and eyes."""

    family = "template"
    description = "population soft-tissue depths at skull landmarks (the manual method), rule-based nose and eyes"

    def __init__(self, view: DepthView | None = None) -> None:
        self.view = view
        self.names: list[str] = list(TABLE_ROWS)
        self.state: dict[str, np.ndarray] | None = None

    def _design(self, features: np.ndarray) -> np.ndarray:
        s = self.state
        return np.hstack([np.ones((len(features), 1)), (features - s["feature_mean"]) / s["feature_sd"]])

    def fit(self, data: DepthData, *, seed: int = 0) -> dict[str, float]:
        """Least squares of each landmark's (x, y) on the silhouette edges; deterministic (the seed is unused)."""
        landmarks = data.skull_landmarks or {}
        missing = [n for n in self.names if n not in landmarks]
        if missing:
            raise ValueError(f"the training data lack skull landmarks: {', '.join(missing)}")
        n, h, w = data.skull_depth.shape
        self.view = self.view or data.view or _default_view((h, w))
        if self.view.shape != (h, w):
            raise ValueError(f"depth maps are {(h, w)}, the view is {self.view.shape}")
        features = np.stack([_size_features(_support(m, self.view.pixel_mm), self.view) for m in data.skull_mask])
        target = np.concatenate([landmarks[name][:, :2] for name in self.names], axis=1)  # (N, 2L)
        self.state = {"feature_mean": features.mean(axis=0), "feature_sd": np.maximum(features.std(axis=0), 1.0)}
        design = self._design(features)
        penalty = np.diag([0.0] + [1.0] * features.shape[1])  # ridge on the size terms, not the mean layout
        self.state["weights"] = np.linalg.solve(design.T @ design + penalty, design.T @ target)
        error = np.linalg.norm((design @ self.state["weights"] - target).reshape(n, -1, 2), axis=2)
        spread = np.linalg.norm((target - target.mean(axis=0)).reshape(n, -1, 2), axis=2)
        return {"landmark_error_mm": float(error.mean()), "mean_layout_error_mm": float(spread.mean())}

    def landmarks(self, skull_mask: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted (x, y) in mm of every landmark on this skull."""
        if self.state is None:
            raise RuntimeError("the model is not fitted: call fit() or load() first")
        features = _size_features(_support(skull_mask, self.view.pixel_mm), self.view)
        xy = (self._design(features[None]) @ self.state["weights"]).reshape(-1, 2)
        return dict(zip(self.names, xy, strict=True))

    def reconstruct(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subject: Subject, *, seed: int = 0, n_samples: int = 1
    ) -> Reconstruction:
        """The table's face (n_samples = 1), or faces with landmark depths and nose drawn from their spread."""
        if self.state is None:
            raise RuntimeError("the model is not fitted: call fit() or load() first")
        if skull_depth.shape != self.view.shape or skull_mask.shape != self.view.shape:
            raise ValueError(f"skull depth map is {skull_depth.shape}, the model was fitted on {self.view.shape}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        points = self.landmarks(skull_mask)
        support = _support(skull_mask, self.view.pixel_mm)
        envelope = bony_envelope(np.where(skull_mask, skull_depth, 0.0), support, self.view.pixel_mm)
        xy = np.stack([points[n] for n in self.names])
        mean, sd = landmark_depths(subject, self.names)
        depths, nose_noise = mean[:, None], np.zeros(1)
        if n_samples > 1:
            rng = np.random.default_rng(seed)
            d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)
            cov = np.exp(-d2 / (2 * DEPTH_CORRELATION_MM**2)) * np.outer(sd, sd) + 1e-6 * np.eye(len(sd))
            depths = depths + np.linalg.cholesky(cov) @ rng.standard_normal((len(sd), n_samples))
            nose_noise = rng.normal(0.0, NOSE_PROJECTION_SD_MM, n_samples)
        depths = np.clip(depths, 1.0, None)
        face = skin_surface(envelope, support, xy, depths, self.view)
        bone = dict(zip(self.names, np.column_stack([xy, _at(_dense(envelope), xy, self.view)]), strict=True))
        face = _add_nose(face, bone, self.view, subject, nose_noise, depths[self.names.index("rhinion")])
        face = _add_eyes(face, bone, envelope - np.where(skull_mask, skull_depth, -1e3), self.view)
        mask = np.isfinite(face).all(axis=0)
        return Reconstruction(np.where(mask, face, 0.0).astype(np.float32), mask)

    def save(self, folder: Path) -> None:
        view = self.view.to_dict() if self.view is not None else None
        save_arrays_model(folder, self.state, {"family": self.family, "view": view, "landmarks": self.names})

    @classmethod
    def load(cls, folder: Path) -> TissueDepthTemplate:
        state, record = load_arrays_model(folder)
        model = cls(DepthView.from_dict(record["view"]))
        model.names = list(record["landmarks"])
        model.state = state
        return model


def _add_nose(face, bone, view, subject, noise, rhinion_depth) -> np.ndarray:
    """The soft nose by Rynn, Wilkinson & Peters (2010): pronasale 0.83 Y - 3.5 mm in front of the acanthion
    and 0.9 X - 2 mm below nasion, nasal height 0.78 Z + 9.5 (M) or 0.63 Z + 17 (F); a rounded ridge from the
    rhinion to the tip, widening to the alae, then the columella down to subnasale."""
    nasion, rhinion, acanthion = bone["nasion"], bone["rhinion"], bone["subnasale"]
    big_x, big_y = float(np.linalg.norm(nasion - acanthion)), float(np.linalg.norm(rhinion - acanthion))
    heights = {Sex.MALE: 0.78 * big_x + 9.5, Sex.FEMALE: 0.63 * big_x + 17.0}
    height = heights.get(subject.sex, 0.5 * sum(heights.values()))
    tip_y, sub_y, x0 = nasion[1] - (0.9 * big_x - 2.0), nasion[1] - height, 0.5 * (nasion[0] + acanthion[0])
    tip_z = acanthion[2] + 0.83 * big_y - 3.5 + noise  # (K,)
    x, y = view.pixel_centres()
    col = int(np.argmin(np.abs(x - x0)))
    s = np.clip((rhinion[1] - y) / max(rhinion[1] - tip_y, 1.0), 0.0, 1.0)  # 0 at rhinion, 1 at the tip
    dorsum = rhinion[2] + rhinion_depth[:, None]  # (K, 1): the skin over the rhinion
    ridge = dorsum + s[None] * (tip_z[:, None] - dorsum)  # (K, H)
    base = np.where(np.isfinite(face[:, :, col]), face[:, :, col], np.inf)
    rise = np.clip(ridge - base, 0.0, None)
    below = np.clip((tip_y - y) / max(tip_y - sub_y, 3.0), 0.0, 1.0)
    rise = np.where(y < tip_y, rise[:, [int(np.argmin(np.abs(y - tip_y)))]] * np.sqrt(1.0 - below**2), rise)
    rise = np.where(y > rhinion[1], 0.0, rise)
    width = 6.0 + s * (0.5 * NOSE_WIDTH_MM - 6.0)
    across = np.clip(1.0 - ((x[None] - x0) / width[:, None]) ** 2, 0.0, None) ** 1.5  # (H, W)
    return face + rise[:, :, None] * across[None]


def _add_eyes(face, bone, hollow, view) -> np.ndarray:
    """Closed eyes: a 12 mm eyeball whose apex lies 16 mm in front of the lateral orbital rim, 2.3 mm lateral
    and 1.4 mm above the orbit centre, found as the centroid of the orbit's hollow in the skull depth map."""
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(x, y)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        guess = 0.5 * (bone[f"supraorbital_{side}"][:2] + bone[f"infraorbital_{side}"][:2])
        near = (xx - guess[0]) ** 2 + (yy - guess[1]) ** 2 <= 20.0**2
        deep = near & (hollow > 10.0)
        centre = np.array([xx[deep].mean(), yy[deep].mean()]) if deep.sum() > 10 else guess
        cx, cy = centre[0] + sign * EYE_OFFSET_MM[0], centre[1] + EYE_OFFSET_MM[1]
        apex = bone[f"lateral_orbit_{side}"][2] + EYE_PROJECTION_MM
        r2 = (xx - cx) ** 2 + (yy - cy) ** 2
        cap = np.sqrt(np.clip(EYEBALL_RADIUS_MM**2 - r2, 0.0, None)) - EYEBALL_RADIUS_MM
        face = np.maximum(face, np.where(r2 < EYEBALL_RADIUS_MM**2, apex + cap + EYELID_MM, -np.inf)[None])
    return face
