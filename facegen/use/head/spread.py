"""The reconstructed face's uncertainty carried over to the complete head.

Where the fitted skin lies on the reconstructed face, each head vertex takes the spread (SD, mm) of the face
point nearest it. Beyond the face (the back of the head, the ears, the neck, and the eyeballs and lashes) the
head is the face model's shape, fitted to the face only: the reconstruction says nothing there, so no spread
is stated (NaN), and the record says so in words.
"""

from __future__ import annotations

import numpy as np

from facegen.use.head.model import HeadModel
from facegen.use.head.target import TargetFace

SD_REACH_MM = 3.0
"""A skin vertex takes the face's spread when a face vertex lies within this distance of it."""
NOT_ESTIMATED = (
    "not estimated beyond the reconstructed face (back of the head, ears, neck, eyeballs and eyelashes): there "
    "the head is the face model's shape fitted to the face, and the reconstruction gives no spread"
)


def checked_face_sd(face_sd_mm: np.ndarray | None, n_face_vertices: int) -> np.ndarray | None:
    """The face's per-vertex spread as float64 (NaN allowed: not known there), or a ValueError naming the fix."""
    if face_sd_mm is None:
        return None
    sd = np.asarray(face_sd_mm, np.float64)
    if sd.shape != (n_face_vertices,):
        raise ValueError(
            f"face_sd_mm has shape {sd.shape}; it needs one SD per face vertex ({n_face_vertices},): for a depth-map "
            "face, facegen.use.uncertainty.vertex_values(face, sd_map, view) gives it"
        )
    if (sd[np.isfinite(sd)] < 0).any():
        raise ValueError("face_sd_mm holds negative values; it should be a standard deviation in mm")
    return sd


def head_spread(model: HeadModel, vertices: np.ndarray, target: TargetFace, face_sd: np.ndarray) -> np.ndarray:
    """(V,) spread (SD, mm) per head vertex: the nearest face vertex's where the skin lies on the face, NaN
    elsewhere."""
    distance, nearest = target.nearest_vertex(vertices)
    on_face = model.skin & (distance <= SD_REACH_MM) & ~target.on_border[nearest]
    return np.where(on_face, face_sd[nearest], np.nan)
