"""Tissue-depth template: the manual forensic method, computerized.

Population soft-tissue depths (FSTT_TABLE, shifted for the subject's sex, age and BMI) stand as pegs on the
skull's landmarks, perpendicular to the bone; the skin runs through the peg tips over the bony envelope and
spans the bone's hollows, as the clay does. Nose (Rynn, Wilkinson & Peters 2010) and eyes (Stephan &
Davidson 2008) follow the published rules. No face shape is learned: `fit` only learns where the landmarks
lie on a skull of a given size, since a skull depth map carries none. Samples draw the depths from the
table's spread.
"""

from __future__ import annotations

from functools import lru_cache
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
RECONSTRUCT_STACK = 8
"""Subjects whose image steps `reconstruct_many` runs together: few enough for the stack to stay in cache."""


def _default_view(shape: tuple[int, int]) -> DepthView:
    return DepthView(shape, DEFAULT_FIELD_MM / shape[1], DEFAULT_CENTRE_MM)


def _support(skull_mask: np.ndarray, pixel_mm: float) -> np.ndarray:
    """The skull's silhouette (..., H, W) with the gaps between teeth and any enclosed holes filled."""
    disc = _disc(3.0 / pixel_mm)
    dilated = _flat_filter(skull_mask, disc, maximum=True, border=False)
    closed = _flat_filter(dilated, disc, maximum=False, border=False)  # = binary_closing(border_value=0)
    return _fill_holes(closed | skull_mask)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Masks (..., H, W) with every background region that does not reach the image's edge filled.

    As ndimage.binary_fill_holes (4-connected background), image by image, with one labelling of the stack."""
    within = np.zeros((3,) * (mask.ndim - 2) + (3, 3), bool)  # 4-neighbours in the image, none across the stack
    within[(1,) * (mask.ndim - 2)] = ndimage.generate_binary_structure(2, 1)
    labels, _ = ndimage.label(~mask, within)
    edge = np.concatenate([labels[..., [0, -1], :].reshape(-1), labels[..., :, [0, -1]].reshape(-1)])
    return ~np.isin(labels, edge[edge > 0])


def _disc(radius_px: float) -> np.ndarray:
    r = max(int(np.ceil(radius_px)), 1)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx**2 + yy**2 <= radius_px**2


def _flat_filter(image: np.ndarray, disc: np.ndarray, *, maximum: bool, border: bool | None = None) -> np.ndarray:
    """Grey dilation (maximum) or erosion of images (..., H, W) by a disc footprint, exactly as scipy.ndimage's.

    Each row of a disc is a centred run, so the 2D extremum is the extremum over rows of running extrema along
    the rows, each built from one half as wide (O(r) per pixel, not O(r^2)). Border: mirrored as ndimage's
    'reflect', or this constant."""
    r, (h, w) = disc.shape[0] // 2, image.shape[-2:]
    pad = [(0, 0)] * (image.ndim - 2) + [(r, r), (r, r)]
    padded = np.pad(image, pad, mode="symmetric") if border is None else np.pad(image, pad, constant_values=border)
    op = np.maximum if maximum else np.minimum
    widths = disc.sum(axis=1).tolist()
    runs = _running_extrema(padded, sorted(set(widths) - {0}), op)
    out = None
    for i, n in enumerate(widths):
        if n:
            rows = runs[n][..., i : i + h, r - n // 2 : r - n // 2 + w]
            out = rows.copy() if out is None else op(out, rows, out=out)
    return out


def _running_extrema(image: np.ndarray, widths: list[int], op: np.ufunc) -> dict[int, np.ndarray]:
    """Extremum over centred windows of each odd width n along the last axis, at columns n // 2 ... W - 1 - n // 2.

    A window of width n is the union of two of width m >= (n + 1) / 2 shifted by (n - m) / 2 either way."""
    runs = {1: image}
    if widths and widths[-1] > 1:
        runs[3] = op(op(image[..., :-2], image[..., 1:-1]), image[..., 2:])
    for n in widths:
        while n not in runs:
            m = max(runs)
            target = n if 2 * m - 1 >= n else 2 * m - 1
            m = min(k for k in runs if 2 * k - 1 >= target)
            shift, size = target - m, runs[m].shape[-1] - (target - m)
            runs[target] = op(runs[m][..., :size], runs[m][..., shift : shift + size])
    return runs


def _size_features(support: np.ndarray, view: DepthView) -> np.ndarray:
    """Left, right, top and bottom edge (mm) of the skull's silhouette: what sets the landmark layout."""
    x, y = view.pixel_centres()
    cols, rows = np.flatnonzero(support.any(axis=0)), np.flatnonzero(support.any(axis=1))
    if not len(cols):
        raise ValueError("the skull mask is empty")
    return np.array([x[cols[0]], x[cols[-1]], y[rows[0]], y[rows[-1]]])


def bony_envelope(skull_depth: np.ndarray, support: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Skull depths (..., H, W) with orbits, nasal aperture and teeth gaps bridged, smoothed; -inf off the skull."""
    lowest = np.where(support, skull_depth, np.inf).min(axis=(-2, -1), keepdims=True).astype(float)
    low = (lowest - 1.0).astype(skull_depth.dtype)  # in double, then cast as a Python float would be
    disc = _disc(ENVELOPE_RADIUS_MM / pixel_mm)
    filled = _flat_filter(np.where(support, skull_depth, low), disc, maximum=True)
    filled = _flat_filter(filled, disc, maximum=False)  # a grey closing
    filled = np.where(support, filled, 0.0)
    weight = ndimage.gaussian_filter(support.astype(float), 1.5 / pixel_mm, axes=(-2, -1))
    smooth = ndimage.gaussian_filter(filled, 1.5 / pixel_mm, axes=(-2, -1)) / np.maximum(weight, 1e-6)
    return np.where(support, smooth, -np.inf)


def roll_over_rim(envelope: np.ndarray, rim: np.ndarray, thickness: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Skin beyond the silhouette (K, H, W): the upper envelope of balls of radius t (K, R) on the R rim pixels.

    There the frontal view sees the tissue on the sides of the head: the bone's offset surface. Every (offset,
    rim pixel) pair within reach is evaluated at once and scattered with a maximum."""
    rows, cols = np.nonzero(rim)
    bone, reach2 = envelope[rows, cols], thickness.max(axis=0) ** 2
    (h, w), r = rim.shape, int(np.sqrt(reach2.max()) // pixel_mm)
    dy, dx = (a.ravel() for a in np.mgrid[-r : r + 1, -r : r + 1])
    d2 = (dy * dy + dx * dx) * pixel_mm**2
    dy, dx, d2 = dy[d2 <= reach2.max()], dx[d2 <= reach2.max()], d2[d2 <= reach2.max()]
    rr, cc = rows[None] + dy[:, None], cols[None] + dx[:, None]  # (offsets, R)
    offset, pixel = np.nonzero((reach2[None] >= d2[:, None]) & (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w))
    left = thickness[:, pixel] ** 2 - d2[offset]
    lift = np.where(left >= 0, np.sqrt(np.abs(left)), -np.inf)
    target, out = rr[offset, pixel] * w + cc[offset, pixel], np.full((len(thickness), h * w), -np.inf)
    for k in range(len(thickness)):
        np.maximum.at(out[k], target, bone[pixel] + lift[k])
    return out.reshape(-1, h, w)


def tissue_field(xy: np.ndarray, depths: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Depths (L, K) at landmarks spread over the grid points (P, 2): a thin-plate spline, kept in their range."""
    spline = RBFInterpolator(xy, depths, kernel="thin_plate_spline", smoothing=SPLINE_SMOOTHING)
    return np.clip(spline(grid), depths.min(axis=0), depths.max(axis=0))


def skin_surface(
    envelope: np.ndarray,
    support: np.ndarray,
    xy: np.ndarray,
    depths: np.ndarray,
    view: DepthView,
    *,
    dense: np.ndarray | None = None,
    slopes: tuple[np.ndarray, np.ndarray] | None = None,
    rim: np.ndarray | None = None,
) -> np.ndarray:
    """Faces (K, H, W) through the tips of tissue-depth pegs (L, K) set on the bone along its normals.

    As in the manual method, each peg stands on the bone at its landmark, perpendicular to the bone; the skin
    passes through the peg tips, its height over the bony envelope interpolated between them, and spans the
    bone's hollows as clay strips do. Beyond the skull's silhouette it rolls over the rim with the local
    tissue depth as radius. The dense envelope, its slopes and the rim may come computed for a whole stack."""
    dense = _dense(envelope) if dense is None else dense
    slopes = _bone_slopes(dense, view.pixel_mm) if slopes is None else slopes
    rim = _rim(support) if rim is None else rim
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(x, y)
    grid, rim_grid = np.column_stack([xx[support], yy[support]]), np.column_stack([xx[rim], yy[rim]])
    slope_y, slope_x = slopes
    normals = np.stack([-_at(slope_x, xy, view), -_at(slope_y, xy, view), np.ones(len(xy))], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    bone = np.column_stack([xy, _at(dense, xy, view)])
    face = np.full((depths.shape[1], *support.shape), -np.inf)
    rim_depth = np.zeros((depths.shape[1], len(rim_grid)))
    on_support = support.astype(float)
    for k, t in enumerate(depths.T):
        tips = bone + t[:, None] * normals
        on_bone = _at(on_support, tips[:, :2], view, order=0) > 0
        rise = tips[on_bone, 2] - _at(dense, tips[on_bone, :2], view)
        face[k, support] = envelope[support] + tissue_field(tips[on_bone, :2], rise[:, None], grid)[:, 0]
        rim_depth[k] = tissue_field(xy, t[:, None], rim_grid)[:, 0]
    face = np.where(support, face, roll_over_rim(envelope, rim, rim_depth, view.pixel_mm))
    return _ball_closing(face, SKIN_SPAN_MM, view.pixel_mm)


def _bone_slopes(dense_envelope: np.ndarray, pixel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Slopes (y, x) of the envelope(s) (..., H, W) smoothed over NORMAL_SMOOTHING_MM, for the peg directions."""
    smooth = ndimage.gaussian_filter(dense_envelope, NORMAL_SMOOTHING_MM / pixel_mm, axes=(-2, -1))
    slope_y, slope_x = np.gradient(smooth, -pixel_mm, pixel_mm, axis=(-2, -1))  # rows run toward -y
    return slope_y, slope_x


def _rim(support: np.ndarray) -> np.ndarray:
    """The silhouette's edge pixels (..., H, W): those with a 4-neighbour off it (or off the image)."""
    return support & ~_flat_filter(support, _disc(1.0), maximum=False, border=False)


BallPlan = tuple[int, tuple[tuple[float, tuple[tuple[int, int, bool], ...]], ...]]
"""(radius_px, ((height, ((dy, dx, paired), ...)), ...)): a ball's pixel offsets grouped by their height."""


@lru_cache(maxsize=8)
def _ball(radius_mm: float, pixel_mm: float) -> BallPlan:
    """A ball's heights over its pixel offsets (as ndimage's structure would hold them), grouped by height.

    Offsets of a group share their height bit for bit, so the group's extremum of the shifted image takes the
    height once; `paired` stands for both (dy, dx) and (dy, -dx), whose extremum is shared by all rows."""
    r = int(np.ceil(radius_mm / pixel_mm))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1] * pixel_mm
    footprint = xx**2 + yy**2 <= radius_mm**2
    ball = np.sqrt(np.where(footprint, radius_mm**2 - xx**2 - yy**2, 0.0))
    groups: dict[float, list[tuple[int, int]]] = {}
    for i, j in zip(*np.nonzero(footprint), strict=True):
        groups.setdefault(float(ball[i, j]), []).append((int(i) - r, int(j) - r))
    plan = []
    for height, members in sorted(groups.items(), reverse=True):
        offsets, terms = set(members), []
        for dy, dx in members:
            if dx > 0 and (dy, -dx) in offsets:
                terms.append((dy, dx, True))
            elif not (dx < 0 and (dy, -dx) in offsets):
                terms.append((dy, dx, False))
        plan.append((height, tuple(terms)))
    return r, tuple(plan)


def _ball_filter(
    padded: np.ndarray, radius_mm: float, pixel_mm: float, rows: range, cols: range, *, maximum: bool
) -> np.ndarray:
    """Grey dilation, max_s f(x + s) + b(s) (or erosion, min_s f(x + s) - b(s)), by the ball b over rows x cols.

    Exactly ndimage's (the ball is symmetric, so its reflection is itself): rounding is monotone, so the
    extremum of a group of shifts plus their common height is the extremum of each shift plus it. `padded`:
    the images (..., H, W) padded by the ball's radius in pixels."""
    r, plan = _ball(radius_mm, pixel_mm)
    op, shift = (np.maximum, np.add) if maximum else (np.minimum, np.subtract)
    band = padded[..., rows.start : rows.stop + 2 * r, :]  # padded row y + r + dy for y in rows, |dy| <= r
    h, c0, c1 = len(rows), cols.start + r, cols.stop + r
    sources = {(dx, False): band[..., c0 + dx : c1 + dx] for dx in range(-r, r + 1)}
    sources |= {(dx, True): op(sources[dx, False], sources[-dx, False]) for dx in range(1, r + 1)}
    out = np.full((*band.shape[:-2], h, len(cols)), -np.inf if maximum else np.inf)
    tmp = np.empty_like(out)
    for height, terms in plan:
        views = [sources[dx, paired][..., r + dy : r + dy + h, :] for dy, dx, paired in terms]
        if len(views) == 1:
            shift(views[0], height, out=tmp)
        else:
            op(views[0], views[1], out=tmp)
            for v in views[2:]:
                op(tmp, v, out=tmp)
            shift(tmp, height, out=tmp)
        op(out, tmp, out=out)
    return out


def _ball_closing(surface: np.ndarray, radius_mm: float, pixel_mm: float) -> np.ndarray:
    """Surfaces (..., H, W) with every hollow a ball of this radius cannot enter filled: the skin spans them.

    A grey closing by the ball (as ndimage.grey_closing, 'reflect' border) of each surface with its -inf
    pixels filled from the nearest finite one, kept where the surface is finite; only the box around the
    finite pixels, and the dilation only within reach of it, is computed."""
    h, w = surface.shape[-2:]
    finite = np.isfinite(surface)
    seen = finite.reshape(-1, h, w).any(axis=0)
    if not seen.any():
        return surface.copy()
    dense = np.stack([_dense(s) for s in surface.reshape(-1, h, w)]).reshape(surface.shape)
    r = _ball(radius_mm, pixel_mm)[0]
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    (y0, y1), (x0, x1) = (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)
    pad = [(0, 0)] * (surface.ndim - 2) + [(r, r), (r, r)]
    dilated = np.full(surface.shape, np.nan)  # never read where it is not computed
    reach_rows, reach_cols = range(max(y0 - r, 0), min(y1 + r, h)), range(max(x0 - r, 0), min(x1 + r, w))
    dilated[..., reach_rows.start : reach_rows.stop, reach_cols.start : reach_cols.stop] = _ball_filter(
        np.pad(dense, pad, mode="symmetric"), radius_mm, pixel_mm, reach_rows, reach_cols, maximum=True
    )
    closed = _ball_filter(
        np.pad(dilated, pad, mode="symmetric"), radius_mm, pixel_mm, range(y0, y1), range(x0, x1), maximum=False
    )
    out, box = surface.copy(), (..., slice(y0, y1), slice(x0, x1))
    out[box] = np.where(finite[box], np.maximum(closed, surface[box]), surface[box])
    return out


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
        self._check(skull_depth.shape, skull_mask.shape, n_samples)
        return self._reconstruct_stack(skull_depth[None], skull_mask[None], [subject], seed, n_samples)[0]

    def reconstruct_many(self, data: DepthData, *, seed: int = 0, n_samples: int = 1) -> list[Reconstruction]:
        """Faces for every subject, as `reconstruct` gives them, with the image steps run on stacks of subjects."""
        self._check(data.skull_depth.shape[1:], data.skull_mask.shape[1:], n_samples)
        out: list[Reconstruction] = []
        for start in range(0, len(data), RECONSTRUCT_STACK):
            part = slice(start, start + RECONSTRUCT_STACK)
            depth, mask = data.skull_depth[part], data.skull_mask[part]
            out += self._reconstruct_stack(depth, mask, data.subjects[part], seed, n_samples)
        return out

    def _check(self, depth_shape: tuple[int, ...], mask_shape: tuple[int, ...], n_samples: int) -> None:
        """Refuse an unfitted model, depth maps of another size than the fitted view, and no samples."""
        if self.state is None:
            raise RuntimeError("the model is not fitted: call fit() or load() first")
        if depth_shape != self.view.shape or mask_shape != self.view.shape:
            raise ValueError(f"skull depth map is {depth_shape}, the model was fitted on {self.view.shape}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")

    def _reconstruct_stack(
        self, skull_depth: np.ndarray, skull_mask: np.ndarray, subjects: list[Subject], seed: int, n_samples: int
    ) -> list[Reconstruction]:
        """Faces for skull depth maps (N, H, W); each subject's samples are drawn from its own generator (seed)."""
        view = self.view
        support = _support(skull_mask, view.pixel_mm)
        features = [_size_features(s, view) for s in support]
        envelope = bony_envelope(np.where(skull_mask, skull_depth, 0.0), support, view.pixel_mm)
        dense = np.stack([_dense(e) for e in envelope])
        slope_y, slope_x = _bone_slopes(dense, view.pixel_mm)
        rim = _rim(support)
        out = []
        for i, subject in enumerate(subjects):
            xy = (self._design(features[i][None]) @ self.state["weights"]).reshape(-1, 2)
            mean, sd = landmark_depths(subject, self.names)
            depths, nose_noise = mean[:, None], np.zeros(1)
            if n_samples > 1:
                rng = np.random.default_rng(seed)
                d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)
                cov = np.exp(-d2 / (2 * DEPTH_CORRELATION_MM**2)) * np.outer(sd, sd) + 1e-6 * np.eye(len(sd))
                depths = depths + np.linalg.cholesky(cov) @ rng.standard_normal((len(sd), n_samples))
                nose_noise = rng.normal(0.0, NOSE_PROJECTION_SD_MM, n_samples)
            depths = np.clip(depths, 1.0, None)
            face = skin_surface(
                envelope[i], support[i], xy, depths, view, dense=dense[i], slopes=(slope_y[i], slope_x[i]), rim=rim[i]
            )
            bone = dict(zip(self.names, np.column_stack([xy, _at(dense[i], xy, view)]), strict=True))
            face = _add_nose(face, bone, view, subject, nose_noise, depths[self.names.index("rhinion")])
            face = _add_eyes(face, bone, envelope[i] - np.where(skull_mask[i], skull_depth[i], -1e3), view)
            mask = np.isfinite(face).all(axis=0)
            out.append(Reconstruction(np.where(mask, face, 0.0).astype(np.float32), mask))
        return out

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
    band, face = _box(view, (x0, 0.0), width.max())[1], face.copy()  # beyond it `across` is 0: the face stays
    across = np.clip(1.0 - ((x[None, band] - x0) / width[:, None]) ** 2, 0.0, None) ** 1.5  # (H, columns)
    face[:, :, band] += rise[:, :, None] * across[None]
    return face


def _add_eyes(face, bone, hollow, view) -> np.ndarray:
    """Closed eyes: a 12 mm eyeball whose apex lies 16 mm in front of the lateral orbital rim, 2.3 mm lateral
    and 1.4 mm above the orbit centre, found as the centroid of the orbit's hollow in the skull depth map."""
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(x, y)
    face = face.copy()
    for side, sign in (("l", 1.0), ("r", -1.0)):
        guess = 0.5 * (bone[f"supraorbital_{side}"][:2] + bone[f"infraorbital_{side}"][:2])
        box = _box(view, guess, 20.0)
        near = (xx[box] - guess[0]) ** 2 + (yy[box] - guess[1]) ** 2 <= 20.0**2
        deep = near & (hollow[box] > 10.0)
        centre = np.array([xx[box][deep].mean(), yy[box][deep].mean()]) if deep.sum() > 10 else guess
        cx, cy = centre[0] + sign * EYE_OFFSET_MM[0], centre[1] + EYE_OFFSET_MM[1]
        apex = bone[f"lateral_orbit_{side}"][2] + EYE_PROJECTION_MM
        box = _box(view, (cx, cy), EYEBALL_RADIUS_MM)
        r2 = (xx[box] - cx) ** 2 + (yy[box] - cy) ** 2
        cap = np.sqrt(np.clip(EYEBALL_RADIUS_MM**2 - r2, 0.0, None)) - EYEBALL_RADIUS_MM
        eye = np.where(r2 < EYEBALL_RADIUS_MM**2, apex + cap + EYELID_MM, -np.inf)
        face[(..., *box)] = np.maximum(face[(..., *box)], eye[None])
    return face


def _box(view: DepthView, centre: tuple[float, float] | np.ndarray, radius_mm: float) -> tuple[slice, slice]:
    """Rows and columns of a box holding every pixel within radius_mm of a point (mm): the rest is left alone."""
    x, y = view.pixel_centres()
    reach = radius_mm + view.pixel_mm
    rows, cols = np.flatnonzero(np.abs(y - centre[1]) <= reach), np.flatnonzero(np.abs(x - centre[0]) <= reach)
    return tuple(slice(i[0], i[-1] + 1) if len(i) else slice(0, 0) for i in (rows, cols))
