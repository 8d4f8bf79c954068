"""Faces relative to the bone: a face depth map as the log of its soft-tissue depth over the bone envelope.

A model that predicts u = log(face - envelope) and returns envelope + exp(u) cannot put skin inside bone, whatever
it predicts: exp(u) > 0 and the envelope never lies behind the bone (`facegen.data.representations.bone_envelope`).
The log also suits the tissue: its depth varies by a factor (thin over the brow, thick over the cheeks, all of it
thicker with BMI) more than by a fixed number of millimetres.
"""

from __future__ import annotations

import numpy as np

from facegen.data.representations.bone_envelope import bone_envelope
from facegen.data.representations.depth_map import DepthView

MIN_TISSUE_MM = 0.5
"""Training faces nearer their envelope than this (0.8% of face pixels over bone on synthetic heads, where the lid
closes a notch of the bone that the skin dips into) count as this thin: the log needs a positive depth."""


def envelope_of(skull_depth_mm: np.ndarray, skull_mask: np.ndarray, view: DepthView) -> tuple[np.ndarray, np.ndarray]:
    """The bone envelope (..., H, W) in mm that tissue depths are measured from, and where it rests on bone."""
    return bone_envelope(skull_depth_mm, skull_mask, pixel_mm=view.pixel_mm)


def log_tissue(face_depth_mm: np.ndarray, envelope_mm: np.ndarray) -> np.ndarray:
    """u = log(face - envelope) in log-mm, the depth held at MIN_TISSUE_MM or more."""
    return np.log(np.maximum(np.asarray(face_depth_mm, np.float64) - envelope_mm, MIN_TISSUE_MM))


def face_from_log_tissue(log_tissue_mm: np.ndarray, envelope_mm: np.ndarray) -> np.ndarray:
    """The face depth (mm) of a log tissue depth: envelope + exp(u), in front of the bone by construction."""
    return (envelope_mm + np.exp(log_tissue_mm)).astype(np.float32)


def face_sd_of_log_tissue(log_tissue_mm: np.ndarray, log_variance: np.ndarray) -> np.ndarray:
    """SD (mm) of envelope + exp(u) for u ~ N(log_tissue, log_variance): the log-normal's SD."""
    variance = np.asarray(log_variance, np.float64)
    return (np.exp(log_tissue_mm) * np.sqrt(np.expm1(variance) * np.exp(variance))).astype(np.float32)
