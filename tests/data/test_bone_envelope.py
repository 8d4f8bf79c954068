"""The bone envelope: its closing never lies behind the bone, lids openings narrower than its disc, leaves domes as
they are, falls back beyond the bone's outline; its smoothing takes the small relief (teeth) off."""

from __future__ import annotations

import numpy as np
import pytest

from facegen.data.representations.bone_envelope import bone_envelope


def _dome(size: int = 64, pixel_mm: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A skull-like dome (z toward the viewer, mm) over a disc of bone."""
    yy, xx = (np.mgrid[:size, :size] - (size - 1) / 2) * pixel_mm
    r2 = xx**2 + yy**2
    return 80.0 - r2 / 150.0, r2 < (0.4 * size * pixel_mm) ** 2


@pytest.mark.parametrize("seed", range(12))
def test_the_closing_never_lies_behind_the_bone(seed):
    rng = np.random.default_rng(seed)
    depth = rng.normal(0.0, 30.0, (48, 48)).cumsum(axis=0) / 5 + rng.normal(0.0, 8.0, (48, 48))  # rough relief
    mask = rng.random((48, 48)) < rng.uniform(0.3, 0.95)
    envelope, support = bone_envelope(depth, mask, pixel_mm=rng.uniform(0.5, 3.0), smooth_mm=0.0)
    assert np.all(envelope[mask] >= depth[mask].astype(np.float32)) and np.all(support[mask])


def test_an_orbit_is_lidded_at_its_rim_and_a_dome_left_as_it_is():
    depth, mask = _dome()
    yy, xx = (np.mgrid[:64, :64] - 31.5) * 2.0
    orbit = (xx - 12.0) ** 2 + (yy + 8.0) ** 2 < 16.0**2  # a 32 mm wide, 30 mm deep pit
    pitted = np.where(orbit, depth - 30.0, depth)
    envelope, support = bone_envelope(pitted, mask, pixel_mm=2.0, smooth_mm=0.0)
    lid_error = np.abs(envelope - depth)[orbit]  # the lid is flat, between the rim's heights (they span 6 mm here)
    assert lid_error.max() < 5.0 and np.median(lid_error) < 3.0  # a 30 mm pit before
    away = (np.hypot(xx, yy) < 51.2 - 20.0) & (np.hypot(xx - 12.0, yy + 8.0) > 40.0)  # a disc from outline and pit
    assert away.sum() > 20 and np.abs(envelope - depth)[away].max() < 1e-3
    assert support[orbit].all()


def test_beyond_the_outline_the_envelope_falls_back_and_no_bone_gives_zero():
    depth, mask = _dome()
    envelope, support = bone_envelope(depth, mask, pixel_mm=2.0, falloff=3.0)
    corner, edge = envelope[0, 0], envelope[mask].min()
    assert not support[0, 0] and corner < edge - 3.0 * 2.0 * 10  # well over ten pixels out, 3 mm per mm
    empty, none = bone_envelope(depth, np.zeros_like(mask), pixel_mm=2.0)
    assert not empty.any() and not none.any()
    with pytest.raises(ValueError, match="matching"):
        bone_envelope(depth, mask[:10], pixel_mm=2.0)


def test_the_smoothing_takes_a_sharp_ridge_down_and_leaves_the_dome():
    depth, mask = _dome()
    yy, xx = (np.mgrid[:64, :64] - 31.5) * 2.0
    ridge = (np.abs(xx) < 3.0) & (np.abs(yy) < 30.0)  # a 6 mm wide, 5 mm high crest (a suture, a row of teeth)
    crested = np.where(ridge, depth + 5.0, depth)
    on = ridge & (np.abs(yy) < 15.0)
    sharp, _ = bone_envelope(crested, mask, pixel_mm=2.0, smooth_mm=0.0)
    smooth, _ = bone_envelope(crested, mask, pixel_mm=2.0)
    assert np.all(sharp[on] - depth[on] > 4.9)  # the closing keeps a convex crest whole
    assert np.all(smooth[on] - depth[on] < 2.5)  # the smoothed envelope runs over most of it
    away = (np.hypot(xx, yy) < 30.0) & (np.abs(xx) > 25.0)
    assert np.abs(smooth - depth)[away].max() < 1.5  # a dome stays where it is (a Gaussian lowers it slightly)
