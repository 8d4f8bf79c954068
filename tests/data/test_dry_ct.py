"""Synthetic dry-skull CTs: bone and air only, a plastic support under the skull touching its back, the table under
that, stored offsets, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from facegen.data.synthetic.ct import render_ct
from facegen.data.synthetic.dry_ct import SUPPORT_HU, render_dry_skull_ct, stored
from facegen.data.synthetic.generator import SyntheticHead
from facegen.io.volume import Volume


@pytest.fixture(scope="module")
def bare(one_head: SyntheticHead) -> Volume:
    return render_dry_skull_ct(one_head, seed=4, support="none")


@pytest.fixture(scope="module")
def on_cradle(one_head: SyntheticHead) -> Volume:
    return render_dry_skull_ct(one_head, seed=4, support="cradle", table=True)


def _world(volume: Volume, mask: np.ndarray) -> np.ndarray:
    return volume.index_to_world(np.argwhere(mask))


def test_a_dry_skull_is_bone_in_air_without_soft_tissue(one_head: SyntheticHead, bare: Volume) -> None:
    hu = bare.array
    bone = hu > 300
    assert bone.sum() * np.prod(bare.spacing_mm) / 1000 > 200  # ml of bone
    assert np.abs(hu[~bone] + 1000).mean() < 60  # air, and the bone's partial-volume rim
    soft = (hu > -200) & (hu < 200)
    assert soft.mean() < 0.01 and soft.sum() < 0.5 * bone.sum()  # no soft-tissue peak: only the rim of the bone
    # the box is the skull's (not the face's) plus the margin
    lo, hi = _world(bare, bone).min(axis=0), _world(bare, bone).max(axis=0)
    assert np.allclose(lo, one_head.skull.bounds[0], atol=3.0) and np.allclose(hi, one_head.skull.bounds[1], atol=3.0)
    with_tissue = render_ct(one_head, spacing_mm=(2.0, 2.0, 2.0), seed=4)
    assert ((with_tissue.array > -200) & (with_tissue.array < 200)).sum() > 10 * soft.sum()


def test_the_support_lies_under_the_skull_touching_its_back(one_head: SyntheticHead, bare, on_cradle) -> None:
    added = on_cradle.array.astype(np.int32) - bare.array
    support = (added > 500) & (bare.array < -900)  # drawn into the air
    points = _world(on_cradle, support)
    values = on_cradle.array[support]
    lowest = float(one_head.skull.vertices[:, 2].min())
    in_cradle = points[:, 2] > lowest - 12.0
    cradle, table = points[in_cradle], points[~in_cradle]
    assert len(cradle) > 2000 and len(table) > 2000  # the cradle, and the table's shell under it
    assert np.median(cradle[:, 2]) < lowest + 5.0  # posterior (down): under the back of the skull
    assert np.ptp(cradle[:, 0]) > 150.0  # wider than the skull
    assert SUPPORT_HU[0] - 60 < np.median(values[in_cradle]) < SUPPORT_HU[1] + 60  # plastic: above air, below bone
    assert np.sum(np.abs(cradle[:, 2] - lowest) < 3.0) > 10  # it touches the skull's lowest point


def test_same_seed_same_volume_and_stored_offsets(one_head: SyntheticHead, on_cradle: Volume) -> None:
    again = render_dry_skull_ct(one_head, seed=4, support="cradle", table=True)
    assert np.array_equal(again.array, on_cradle.array)
    shifted = stored(on_cradle, 1024.0)
    assert shifted.array.dtype == np.int16 and shifted.array.min() >= 0
    assert np.array_equal(shifted.array.astype(np.int32) - 1024, on_cradle.array)
    with pytest.raises(ValueError, match="does not fit 16 bits"):
        stored(on_cradle, 32000.0)
    with pytest.raises(ValueError, match="support 'pillow' is not one of none, plate, cradle"):
        render_dry_skull_ct(one_head, seed=4, support="pillow")  # type: ignore[arg-type]
