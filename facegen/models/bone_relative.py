"""Faces relative to the bone: a face depth map as the log of its soft-tissue depth over the bone envelope.

A model predicts u = log(face - envelope) and returns envelope + exp(u) held in front of the bone by a soft floor
(`face_from_log_tissue`): whatever it predicts, no skin lies inside bone. The smooth envelope
(`facegen.data.representations.bone_envelope`) may dip behind a sharp ridge of bone; the floor, a softplus about the
bone's surface grown by BONE_CLEARANCE_MM in 3D, leaves the face as it is wherever it is a few mm clear of that and
bends it smoothly (no crease) where it would come near. The log also suits the tissue: its depth varies by a factor
(thin over the brow, thick over the cheeks, all of it thicker with BMI) more than by a fixed number of millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from facegen.data.representations.bone_envelope import ball_cap, bone_envelope
from facegen.data.representations.depth_map import DepthView

MIN_TISSUE_MM = 0.5
"""Training faces nearer their envelope than this (0.8% of face pixels over bone on synthetic heads, where the lid
closes a notch of the bone that the skin dips into) count as this thin: the log needs a positive depth."""


FLOOR_SOFTNESS_MM = 1.0
"""The soft floor's scale: a face 3 mm clear of the floor moves 0.05 mm; one on it sits 0.7 mm in front."""
BONE_CLEARANCE_MM = 3.0
"""Skin lies at least this far from every bone point, in 3D (the floor is the bone's surface grown by a ball of this
radius): the thinnest published mean depth is about this (rhinion 3.0 mm), and held along the view ray alone the
skin wraps a real chin's lower border at 0.4-2 mm (menton, gnathion, the mandibular border; published 7-8.5 mm).
On the real headsq skull (soft tissue removed) 31 of 33 landmark depths then lie within the published mean +- 2 SD
(27 with 0.5 mm along the ray), the face comes 0.3 mm nearer the person's own skin (5.95 mm), and on 45 held-out
synthetic heads the mean error is unchanged (2.48 mm); 2 mm: 29/33, 4 mm: 30/33."""


def envelope_of(skull_depth_mm: np.ndarray, skull_mask: np.ndarray, view: DepthView) -> tuple[np.ndarray, np.ndarray]:
    """The bone envelope (..., H, W) in mm that tissue depths are measured from, and where it rests on bone."""
    return bone_envelope(skull_depth_mm, skull_mask, pixel_mm=view.pixel_mm)


def log_tissue(face_depth_mm: np.ndarray, envelope_mm: np.ndarray) -> np.ndarray:
    """u = log(face - envelope) in log-mm, the depth held at MIN_TISSUE_MM or more."""
    return np.log(np.maximum(np.asarray(face_depth_mm, np.float64) - envelope_mm, MIN_TISSUE_MM))


def bone_clearance(skull_depth_mm: np.ndarray, skull_mask: np.ndarray, pixel_mm: float,
                   radius_mm: float = BONE_CLEARANCE_MM) -> np.ndarray:  # fmt: skip
    """(..., H, W) the nearest depth (z toward the viewer) at which a point is `radius_mm` from every bone point seen:
    the bone's surface grown by a ball (a grey dilation by a spherical cap). It reaches `radius_mm` beyond the bone's
    outline (under the chin, beside the jaw); -inf where no bone is that near."""
    depth = np.asarray(skull_depth_mm, np.float64)
    mask = np.broadcast_to(np.asarray(skull_mask, bool), depth.shape)
    reach, front = ball_cap(radius_mm, radius_mm, pixel_mm)
    cap = front + radius_mm  # the ball's height above the bone point at its centre
    images = np.where(mask, depth, -np.inf).reshape(-1, *depth.shape[-2:])
    grown = [ndimage.grey_dilation(image, footprint=reach, structure=cap, mode="constant", cval=-np.inf)
             for image in images]  # fmt: skip
    return np.stack(grown).reshape(depth.shape)


def soft_bone_floor(
    face_mm: np.ndarray, skull_depth_mm: np.ndarray, skull_mask: np.ndarray, pixel_mm: float
) -> np.ndarray:  # fmt: skip
    """The face (..., H, W) held off the bone: floor + s * log(1 + exp((face - floor) / s)), with the floor the
    bone grown by BONE_CLEARANCE_MM in 3D (`bone_clearance`; at least MIN_TISSUE_MM in front of the bone) and
    s = FLOOR_SOFTNESS_MM; strictly in front of the floor, unchanged (to 0.05 mm) 3 mm beyond it, and left as it is
    where no bone is near. Skull arrays may have fewer leading axes than the face (broadcast, e.g. over samples)."""
    face = np.asarray(face_mm, np.float64)
    bone = np.asarray(skull_depth_mm, np.float64)
    mask = np.asarray(skull_mask, bool)
    floor = np.maximum(bone_clearance(bone, mask, pixel_mm), np.where(mask, bone + MIN_TISSUE_MM, -np.inf))
    floor = np.broadcast_to(floor, face.shape)
    near = np.isfinite(floor)
    safe_floor = np.where(near, floor, 0.0)
    lifted = safe_floor + FLOOR_SOFTNESS_MM * np.logaddexp(0.0, (face - safe_floor) / FLOOR_SOFTNESS_MM)
    return np.where(near, lifted, face)


def face_from_log_tissue(
    log_tissue_mm: np.ndarray, envelope_mm: np.ndarray, skull_depth_mm: np.ndarray | None = None,
    skull_mask: np.ndarray | None = None, pixel_mm: float | None = None,
) -> np.ndarray:  # fmt: skip
    """The face depth (mm) of a log tissue depth: envelope + exp(u), held off the bone when it is given (with the
    depth maps' pixel size)."""
    face = envelope_mm + np.exp(log_tissue_mm)
    if skull_depth_mm is not None and skull_mask is not None:
        if pixel_mm is None:
            raise ValueError("holding the face off the bone needs the depth maps' pixel size (pixel_mm)")
        face = soft_bone_floor(face, skull_depth_mm, skull_mask, pixel_mm)
    return face.astype(np.float32)


def face_sd_of_log_tissue(log_tissue_mm: np.ndarray, log_variance: np.ndarray) -> np.ndarray:
    """SD (mm) of envelope + exp(u) for u ~ N(log_tissue, log_variance): the log-normal's SD."""
    variance = np.asarray(log_variance, np.float64)
    return (np.exp(log_tissue_mm) * np.sqrt(np.expm1(variance) * np.exp(variance))).astype(np.float32)


MIN_LOG_TISSUE_SPREAD = 0.05
"""A network's output is scaled by the training faces' log tissue spread, held at this (5% of the depth) or more."""
TISSUE_RANGE_MARGIN = float(np.log(2.0))
"""A network's log tissue depth is held within the training faces' range widened by this on both sides (half their
thinnest tissue, twice their thickest): whatever it outputs, the face is finite."""


def require_view(view: DepthView | None) -> DepthView:
    """The depth maps' view that the envelope needs (its pixel size), or a ValueError that says how to get one."""
    if view is None:
        raise ValueError("faces relative to the bone need the depth maps' view (pixel size): load the data from a "
                         "dataset folder, or pass relative_to_bone=False")  # fmt: skip
    return view


class TrainingEnvelope:
    """The envelope of a training set's skulls, computed once though both `prepare` and `training_set` ask for it."""

    def __init__(self) -> None:
        self._skull_depth: np.ndarray | None = None
        self._envelope: np.ndarray | None = None

    def of(self, skull_depth_mm: np.ndarray, skull_mask: np.ndarray, view: DepthView | None) -> np.ndarray:
        """(N, H, W) envelope in mm of these skulls: the one kept when they are the same array, else computed."""
        if self._skull_depth is not skull_depth_mm or self._envelope is None:
            self._envelope = envelope_of(skull_depth_mm, skull_mask, require_view(view))[0]
            self._skull_depth = skull_depth_mm
        return self._envelope

    def clear(self) -> None:
        """Forget the kept envelope (training tensors are built: its memory is not needed any more)."""
        self._skull_depth, self._envelope = None, None


@dataclass(frozen=True, eq=False)
class LogTissueScale:
    """How a network's output y maps to the log tissue depth u = mean + spread * y (held within [low, high]), fitted
    on the training faces so that the network reads and writes values of order 1."""

    mean: np.ndarray
    """(H, W) log-mm: mean u per pixel over the training faces seen there (their overall mean elsewhere)."""
    spread: float
    """log-mm: RMS of u about `mean` over the training faces, at least MIN_LOG_TISSUE_SPREAD."""
    low: float
    high: float
    """log-mm: the training faces' range of u widened by TISSUE_RANGE_MARGIN."""

    @classmethod
    def fit(cls, log_tissue_mm: np.ndarray, face_mask: np.ndarray) -> LogTissueScale:
        """The scale of training log tissue depths (N, H, W) over their face masks (N, H, W)."""
        u, mask = np.asarray(log_tissue_mm, np.float64), np.asarray(face_mask, bool)
        if not mask.any():
            raise ValueError("no training face pixel: the log tissue scale needs faces with a face mask")
        seen = mask.sum(axis=0)
        mean = np.where(seen > 0, np.where(mask, u, 0.0).sum(axis=0) / np.maximum(seen, 1), u[mask].mean())
        spread = max(float(np.sqrt(np.mean((u - mean)[mask] ** 2))), MIN_LOG_TISSUE_SPREAD)
        low, high = float(u[mask].min()) - TISSUE_RANGE_MARGIN, float(u[mask].max()) + TISSUE_RANGE_MARGIN
        return cls(mean.astype(np.float32), spread, low, high)

    def normalised(self, log_tissue_mm: np.ndarray) -> np.ndarray:
        """(..., H, W) float32 network targets (u - mean) / spread."""
        return ((np.asarray(log_tissue_mm, np.float64) - self.mean) / self.spread).astype(np.float32)

    def log_tissue(self, output: np.ndarray) -> np.ndarray:
        """(..., H, W) log-mm u of network outputs: mean + spread * output, held within [low, high]."""
        return np.clip(self.mean + self.spread * np.asarray(output, np.float64), self.low, self.high)

    def to_record(self) -> dict[str, float]:
        """The scalars, for model.json (the mean map goes with the weights)."""
        return {"spread": self.spread, "low": self.low, "high": self.high}
