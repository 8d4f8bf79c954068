"""Faces relative to the bone: whatever a model predicts, the face it gives lies in front of the bone."""

from __future__ import annotations

import numpy as np
import pytest

from facegen.models.bone_relative import BONE_CLEARANCE_MM, MIN_TISSUE_MM, face_from_log_tissue, log_tissue

PIXEL_MM = 2.0


def _shifted(images: np.ndarray, dr: int, dc: int, fill: float | bool) -> np.ndarray:
    """(N, H, W) images moved by (dr, dc) pixels, `fill` where nothing moved in (no wrapping round)."""
    out = np.full_like(images, fill)
    h, w = images.shape[-2:]
    out[:, max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = images[
        :, max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
    ]
    return out


@pytest.mark.parametrize("seed", range(20))
def test_no_prediction_puts_skin_inside_bone(seed):
    rng = np.random.default_rng(seed)
    shape = (3, 32, 32)
    bone = rng.normal(80.0, 15.0, shape)
    mask = rng.random(shape) < rng.uniform(0.2, 1.0)
    envelope = bone + rng.normal(0.0, 10.0, shape)  # an envelope even well behind the bone (smoothing, completion)
    predicted = rng.normal(0.0, 3.0, shape) * rng.choice([1.0, 5.0])  # any log depth: tiny, huge, absurd
    face = face_from_log_tissue(predicted, envelope, bone, mask, PIXEL_MM)
    assert np.all(face[mask] > bone[mask]) and np.all(face[mask] >= bone[mask] + MIN_TISSUE_MM - 1e-4)
    raw = envelope + np.exp(predicted)
    # in 3D: no face point nearer than the clearance to any bone point (every pair within reach, float32 rounding)
    k = int(np.ceil(BONE_CLEARANCE_MM / PIXEL_MM))
    for dr in range(-k, k + 1):
        for dc in range(-k, k + 1):
            lateral = PIXEL_MM * np.hypot(dr, dc)
            if lateral > BONE_CLEARANCE_MM:
                continue
            shifted_bone, shifted_mask = _shifted(bone, dr, dc, 0.0), _shifted(mask, dr, dc, False)
            gap = np.hypot(lateral, face - shifted_bone)[shifted_mask & (face > shifted_bone)]  # the skin's side
            assert np.all(gap >= BONE_CLEARANCE_MM - 1e-3), f"skin {gap.min():.2f} mm from bone {dr, dc} pixels away"
    nearest_bone = np.max([_shifted(np.where(mask, bone, -np.inf), dr, dc, -np.inf)
                           for dr in range(-k, k + 1) for dc in range(-k, k + 1)], axis=0)  # fmt: skip
    near = np.isfinite(nearest_bone)
    clear = (raw > nearest_bone + BONE_CLEARANCE_MM + 4.0) & (raw < 1e4)  # (beyond: float32 rounding)
    assert np.allclose(face[clear], raw[clear], atol=0.05)  # a face clear of the bone is left as it is
    assert np.array_equal(face[~near], raw[~near].astype(np.float32))  # no bone near: nothing to hold it from


def test_log_tissue_round_trips_over_the_bone():
    rng = np.random.default_rng(0)
    bone = 80.0 + 5.0 * np.sin(np.arange(16) / 4.0)[:, None] + np.cos(np.arange(16) / 5.0)[None]  # smooth bone
    envelope = bone + 1.0
    face = envelope + rng.uniform(10.0, 30.0, bone.shape)  # clear of the floor (bone + 3 mm) by 6 mm or more
    back = face_from_log_tissue(log_tissue(face, envelope), envelope, bone, np.ones_like(bone, bool), PIXEL_MM)
    assert np.allclose(back, face, atol=0.01)
