"""Faces relative to the bone: a face depth map as the log of its soft-tissue depth over the bone envelope.

A model predicts u = log(face - envelope) and returns envelope + exp(u) held in front of the bone by a soft floor
(`face_from_log_tissue`): whatever it predicts, no skin lies inside bone. The smooth envelope
(`facegen.data.representations.bone_envelope`) may dip a little behind a sharp ridge of bone; the floor, a softplus
about MIN_TISSUE_MM in front of the bone, leaves the face as it is wherever it is a few mm clear of the bone and
bends it smoothly (no crease) where it would come near. The log also suits the tissue: its depth varies by a factor
(thin over the brow, thick over the cheeks, all of it thicker with BMI) more than by a fixed number of millimetres.
"""

from __future__ import annotations

import numpy as np

from facegen.data.representations.bone_envelope import bone_envelope
from facegen.data.representations.depth_map import DepthView

MIN_TISSUE_MM = 0.5
"""Training faces nearer their envelope than this (0.8% of face pixels over bone on synthetic heads, where the lid
closes a notch of the bone that the skin dips into) count as this thin: the log needs a positive depth."""


FLOOR_SOFTNESS_MM = 1.0
"""The soft floor's scale: a face 3 mm clear of the floor moves 0.05 mm; one on it sits 0.7 mm in front."""


def envelope_of(skull_depth_mm: np.ndarray, skull_mask: np.ndarray, view: DepthView) -> tuple[np.ndarray, np.ndarray]:
    """The bone envelope (..., H, W) in mm that tissue depths are measured from, and where it rests on bone."""
    return bone_envelope(skull_depth_mm, skull_mask, pixel_mm=view.pixel_mm)


def log_tissue(face_depth_mm: np.ndarray, envelope_mm: np.ndarray) -> np.ndarray:
    """u = log(face - envelope) in log-mm, the depth held at MIN_TISSUE_MM or more."""
    return np.log(np.maximum(np.asarray(face_depth_mm, np.float64) - envelope_mm, MIN_TISSUE_MM))


def soft_bone_floor(face_mm: np.ndarray, skull_depth_mm: np.ndarray, skull_mask: np.ndarray) -> np.ndarray:
    """The face (..., H, W) held in front of the bone: floor + s * log(1 + exp((face - floor) / s)) over bone, with
    floor = bone + MIN_TISSUE_MM and s = FLOOR_SOFTNESS_MM; strictly in front of the floor, unchanged (to 0.05 mm)
    3 mm beyond it, and left as it is where there is no bone."""
    face = np.asarray(face_mm, np.float64)
    floor = np.asarray(skull_depth_mm, np.float64) + MIN_TISSUE_MM
    lifted = floor + FLOOR_SOFTNESS_MM * np.logaddexp(0.0, (face - floor) / FLOOR_SOFTNESS_MM)
    return np.where(np.asarray(skull_mask, bool), lifted, face)


def face_from_log_tissue(
    log_tissue_mm: np.ndarray, envelope_mm: np.ndarray, skull_depth_mm: np.ndarray | None = None,
    skull_mask: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """The face depth (mm) of a log tissue depth: envelope + exp(u), held in front of the bone when it is given."""
    face = envelope_mm + np.exp(log_tissue_mm)
    if skull_depth_mm is not None and skull_mask is not None:
        face = soft_bone_floor(face, skull_depth_mm, skull_mask)
    return face.astype(np.float32)


def face_sd_of_log_tissue(log_tissue_mm: np.ndarray, log_variance: np.ndarray) -> np.ndarray:
    """SD (mm) of envelope + exp(u) for u ~ N(log_tissue, log_variance): the log-normal's SD."""
    variance = np.asarray(log_variance, np.float64)
    return (np.exp(log_tissue_mm) * np.sqrt(np.expm1(variance) * np.exp(variance))).astype(np.float32)
