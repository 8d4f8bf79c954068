"""Facial regions of the canonical frontal view, defined once in mm, and depth errors per region and per pixel.

The regions cut the face region ellipse (`FACE_REGION_CENTRE_MM`, `FACE_REGION_RADII_MM`) into seven parts
that meet edge to edge, so every facial pixel of any view (size, pixel size) belongs to exactly one region.
"""

from __future__ import annotations

import numpy as np

from facegen.data.representations.build import face_region_mask
from facegen.data.representations.depth_map import DepthView
from facegen.evaluation.metrics import _as_batch, depth_errors

Polygon = tuple[tuple[float, float], ...]

# Mean canonical face landmark positions (x, y) in mm, over 40 synthetic heads (HeadGenerator with
# sample_subject, rng seed 2026 as in the test `population` fixture); x is given for the subject's left (+x)
# side, the right mirrors it. SD of y across heads 1-9 mm, largest at the chin.
#   supraglabella (0, 69.8)   glabella (0, 54.7)      supraorbital (29.8, 50.1)    frontal eminence (26.9, 72.3)
#   nasion (0, 36.6)          rhinion (0, 20.1)       pronasale (0, 4.8)           alare (17.3, -7.5)
#   subnasale (0, -14.8)      endocanthion (18.6, 27.3)   exocanthion (44.5, 27.2) lateral orbit (52.5, 30.5)
#   infraorbital (28.0, 14.5) inferior malar (50.7, 0.2)  supra-M2 (43.6, -25.7)   infra-M2 (42.0, -52.7)
#   labrale superius (0, -26.2)   stomion (0, -35.2)  labrale inferius (0, -42.8)  cheilion (25.8, -38.6)
#   supramentale (0, -55.9)   pogonion (0, -66.9)     gnathion (0, -81.7)          menton (0, -87.6)
#   mid-mandibular border (36.6, -77.1)               gonion (57.5, -63.7)
# Boundaries, chosen between neighbouring landmarks with room for one to two SDs of variation, and on even mm
# (x on multiples of 4 mm) so that no pixel centre of the 1, 2 or 4 mm views lies on an axis-parallel edge:
BROW_Y_MM = 46.0
"""Forehead above, eyes and nasal root below: midway between nasion (36.6) and glabella (54.7)."""
NASAL_ROOT_HALF_WIDTH_MM = 8.0
"""Half width of the nasal root between the eyes: inside the endocanthia (|x| 18.6, lowest 14.2)."""
INFRAORBITAL_Y_MM = 8.0
"""Eyes above, cheeks below: between infraorbital (14.5) and inferior malar (0.2)."""
ALAR_HALF_WIDTH_MM = 24.0
"""Half width of the nose at the alae: alare |x| 17.3 (highest 21.2); nasal width 41-43 mm (cfr-facts 2)."""
SUBNASAL_Y_MM = -20.0
"""Nose above, mouth below: between subnasale (-14.8) and labrale superius (-26.2)."""
MOUTH_HALF_WIDTH_MM = 32.0
"""Half width of mouth and chin: outside the cheilia (|x| 25.8, highest 32.6; mouth width 52-56 mm)."""
MENTOLABIAL_Y_MM = -50.0
"""Mouth above, chin below: between labrale inferius (-42.8) and supramentale (-55.9)."""
JAW_LINE_EDGE_MM = ((MOUTH_HALF_WIDTH_MM, MENTOLABIAL_Y_MM), (68.0, -30.0))
"""Cheeks above, jaw line below: from the mouth's lower corner up toward the ramus, leaving infra-M2
(42.0, -52.7), the mid-mandibular border and the gonion (outside the ellipse on average) in the jaw line."""
_FAR = 100.0
"""Beyond the face region ellipse (|x| <= 68, -93 <= y <= 83 mm): outer vertices the ellipse then clips."""

_XN, _XA, _XM = NASAL_ROOT_HALF_WIDTH_MM, ALAR_HALF_WIDTH_MM, MOUTH_HALF_WIDTH_MM
_Y_BROW, _Y_IO, _Y_SN, _Y_ML = BROW_Y_MM, INFRAORBITAL_Y_MM, SUBNASAL_Y_MM, MENTOLABIAL_Y_MM
_JAW_TOP = JAW_LINE_EDGE_MM[1]

# fmt: off
FACIAL_REGIONS: dict[str, Polygon] = {
    "forehead": ((0.0, _Y_BROW), (_FAR, _Y_BROW), (_FAR, _FAR), (0.0, _FAR)),
    "eyes": ((_XN, _Y_IO), (_FAR, _Y_IO), (_FAR, _Y_BROW), (_XN, _Y_BROW)),
    "nose": (  # the nasal root between the eyes, widening over the alae, closed below the subnasale
        (0.0, _Y_BROW), (_XN, _Y_BROW), (_XN, _Y_IO), (_XA, -4.0), (_XA, -14.0), (18.0, _Y_SN), (0.0, _Y_SN),
    ),
    "mouth": ((0.0, _Y_SN), (_XM, _Y_SN), (_XM, _Y_ML), (0.0, _Y_ML)),
    "cheeks": (
        (_XN, _Y_IO), (_FAR, _Y_IO), (_FAR, _JAW_TOP[1]), _JAW_TOP, (_XM, _Y_ML), (_XM, _Y_SN), (18.0, _Y_SN),
        (_XA, -14.0), (_XA, -4.0),
    ),
    "chin": ((0.0, _Y_ML), (_XM, _Y_ML), (_XM, -_FAR), (0.0, -_FAR)),
    "jaw_line": ((_XM, _Y_ML), _JAW_TOP, (_FAR, _JAW_TOP[1]), (_FAR, -_FAR), (_XM, -_FAR)),
}
# fmt: on
"""Each region as a polygon (x, y) in canonical mm on the subject's left half (x >= 0), mirrored to the right.

The polygons share their edges (nose and eyes meet at |x| = 8, nose and cheeks along the nose's side, ...),
so together with the ellipse they partition the facial area; a pixel centre on a shared edge goes to the
region above it or on its lateral side (half-open edges). Order: top to bottom, for tables."""


def _inside(x: np.ndarray, y: np.ndarray, polygon: Polygon) -> np.ndarray:
    """Even-odd test of points against a polygon, half-open so that polygons sharing edges never both claim a point.

    Each edge is evaluated with its endpoints ordered by y, so an edge two polygons share gives both the same
    crossing; a point counts as inside when it lies on a polygon's lower or left (medial) edge."""
    inside = np.zeros(np.broadcast_shapes(x.shape, y.shape), bool)
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if y1 == y2:
            continue
        if y1 > y2:
            x1, y1, x2, y2 = x2, y2, x1, y1
        crosses = (y >= y1) & (y < y2)
        x_edge = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_edge)
    return inside


def region_masks(view: DepthView) -> dict[str, np.ndarray]:
    """(H, W) bool mask per facial region for a frontal view: disjoint, inside the face region ellipse."""
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(np.abs(x), y)
    face = face_region_mask(view)
    taken = np.zeros(view.shape, bool)
    out: dict[str, np.ndarray] = {}
    for name, polygon in FACIAL_REGIONS.items():
        out[name] = _inside(xx, yy, polygon) & face & ~taken  # ~taken guards disjointness should edges ever overlap
        taken |= out[name]
    return out


def _batch_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A bool (N, H, W) mask from an (H, W) or (N, H, W) one, checked against the images' (N, H, W) shape."""
    mask = np.asarray(mask).astype(bool)
    mask = mask[None] if mask.ndim == 2 else mask
    if mask.ndim != 3 or mask.shape[1:] != shape[1:] or mask.shape[0] not in (1, shape[0]):
        raise ValueError(f"mask {mask.shape} does not fit images {shape}")
    return np.broadcast_to(mask, shape)


def region_errors(
    pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, view: DepthView
) -> dict[str, dict[str, np.ndarray]]:
    """Per region, per-subject MAE and signed error (mm, pred - truth) over mask & region; NaN without pixels.

    `pred` and `truth` are (N, H, W) or (H, W) depth maps of `view`; see `depth_errors` for the conventions."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    pred, truth = (pred[None], truth[None]) if pred.ndim == 2 else (pred, truth)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(f"expected (N, H, W) pred and truth of one shape, got {pred.shape} and {truth.shape}")
    if pred.shape[1:] != tuple(view.shape):
        raise ValueError(f"images {pred.shape[1:]} do not match the view's shape {tuple(view.shape)}")
    mask = _batch_mask(mask, pred.shape)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, region in region_masks(view).items():
        in_region = mask & region
        has = in_region.any(axis=(1, 2))
        values = {"mae_mm": np.full(len(pred), np.nan), "signed_mm": np.full(len(pred), np.nan)}
        if has.any():
            errors = depth_errors(pred[has], truth[has], in_region[has])
            for key, v in values.items():
                v[has] = errors[key]
        out[name] = values
    return out


def error_heat_map(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean |pred - truth| (mm) per pixel over the subjects whose mask holds it (NaN where none), and that count.

    Shows where on the face a model errs; returns (mean_abs (H, W) float64, count (H, W) int64)."""
    pred, truth, mask = _as_batch(pred, truth, mask)
    count = mask.sum(axis=0)
    total = np.abs(pred - truth).sum(axis=0)  # both are 0 outside the mask
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_abs = np.where(count > 0, total / count, np.nan)
    return mean_abs, count.astype(np.int64)
