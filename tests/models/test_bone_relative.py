"""Faces relative to the bone: whatever a model predicts, the face it gives lies in front of the bone."""

from __future__ import annotations

import numpy as np
import pytest

from facegen.models.bone_relative import MIN_TISSUE_MM, face_from_log_tissue, log_tissue


@pytest.mark.parametrize("seed", range(20))
def test_no_prediction_puts_skin_inside_bone(seed):
    rng = np.random.default_rng(seed)
    shape = (3, 32, 32)
    bone = rng.normal(80.0, 15.0, shape)
    mask = rng.random(shape) < rng.uniform(0.2, 1.0)
    envelope = bone + rng.normal(0.0, 10.0, shape)  # an envelope even well behind the bone (smoothing, completion)
    predicted = rng.normal(0.0, 3.0, shape) * rng.choice([1.0, 5.0])  # any log depth: tiny, huge, absurd
    face = face_from_log_tissue(predicted, envelope, bone, mask)
    assert np.all(face[mask] > bone[mask]) and np.all(face[mask] >= bone[mask] + MIN_TISSUE_MM - 1e-4)
    raw = envelope + np.exp(predicted)
    clear = mask & (raw > bone + MIN_TISSUE_MM + 4.0) & (raw < 1e4)  # (beyond: float32 rounding)
    assert np.allclose(face[clear], raw[clear], atol=0.05)  # a face clear of the bone is left as it is
    assert np.array_equal(face[~mask], raw[~mask].astype(np.float32))  # no bone: nothing to hold it from


def test_log_tissue_round_trips_over_the_bone():
    rng = np.random.default_rng(0)
    bone = rng.normal(80.0, 5.0, (16, 16))
    envelope = bone + 1.0
    face = envelope + rng.uniform(6.0, 30.0, bone.shape)
    back = face_from_log_tissue(log_tissue(face, envelope), envelope, bone, np.ones_like(bone, bool))
    assert np.allclose(back, face, atol=0.01)
