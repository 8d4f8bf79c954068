"""Depth maps and voxel grids against shapes whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facegen.data.representations.build import face_region_mask, represent
from facegen.data.representations.depth_map import DepthView, render_depth_map, tissue_depth_map
from facegen.data.representations.voxel_grid import SEED_GRID_SHAPE, GridSpec, voxelize


def _sphere(radius: float, centre=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=5, radius=radius).apply_translation(centre)


def test_depth_map_of_a_sphere_is_its_front_surface():
    view = DepthView(shape=(64, 64), pixel_mm=2.0, centre_mm=(0.0, 0.0))
    depth = render_depth_map(_sphere(40.0, (0, 0, 10)), view)
    x, y = view.pixel_centres()
    xx, yy = np.meshgrid(x, y)
    r2 = xx**2 + yy**2
    expected = 10 + np.sqrt(np.clip(40.0**2 - r2, 0, None))
    inner = r2 < 35.0**2
    assert np.all(depth.mask[inner]) and not depth.mask[r2 > 41.0**2].any()
    assert np.abs(depth.depth_mm[inner] - expected[inner]).max() < 0.3


def test_image_orientation_rows_down_columns_to_the_subjects_left():
    view = DepthView(shape=(64, 64), pixel_mm=2.0, centre_mm=(0.0, 0.0))
    depth = render_depth_map(_sphere(5.0, (30, 40, 0)), view)  # up and to the subject's left
    rows, cols = np.nonzero(depth.mask)
    assert rows.mean() < 32 and cols.mean() > 32
    np.testing.assert_allclose(view.to_pixel(np.array([30.0, 40.0, 0.0])), [rows.mean(), cols.mean()], atol=1.0)


def test_tissue_depth_map_needs_the_same_view():
    a = render_depth_map(_sphere(40.0), DepthView(shape=(32, 32)))
    b = render_depth_map(_sphere(30.0), DepthView(shape=(32, 32)))
    assert np.all(tissue_depth_map(a, b).depth_mm[b.mask] > 0)
    with pytest.raises(ValueError, match="different views"):
        tissue_depth_map(a, render_depth_map(_sphere(30.0), DepthView(shape=(16, 16))))


def test_voxel_grid_volume_of_a_sphere():
    spec = GridSpec(shape=(64, 64, 64), extent_mm=(128.0, 128.0, 128.0), centre_mm=(0.0, 0.0, 0.0))
    grid = voxelize(_sphere(40.0), spec)
    volume = grid.occupancy.sum() * np.prod(spec.spacing_mm)
    assert abs(volume / (4 / 3 * np.pi * 40.0**3) - 1) < 0.02
    assert grid.occupancy[32, 32, 32] == 1 and grid.occupancy[0, 0, 0] == 0


def test_overlapping_closed_parts_fill_as_their_union():
    spec = GridSpec(shape=(80, 40, 40), extent_mm=(160.0, 80.0, 80.0), centre_mm=(15.0, 0.0, 0.0))
    two = trimesh.util.concatenate([_sphere(30.0), _sphere(30.0, (30, 0, 0))])
    volume = voxelize(two, spec).occupancy.sum() * 8.0
    union = 2 * 4 / 3 * np.pi * 30**3 - np.pi * (4 * 30 + 30) * (2 * 30 - 30) ** 2 / 12
    assert abs(volume / union - 1) < 0.03


def test_grid_specs_are_checked():
    with pytest.raises(ValueError, match="must be three sizes"):
        GridSpec(shape=(1, 4, 4))
    with pytest.raises(ValueError, match="not a usable image"):
        DepthView(shape=(4, 4))


def test_seed_resolution_grid_of_a_real_skull(one_head):
    grid = voxelize(one_head.skull, GridSpec(shape=SEED_GRID_SHAPE))
    assert grid.occupancy.shape == (512, 512, 102)
    bone_ml = grid.occupancy.sum() * np.prod(grid.spec.spacing_mm) / 1000
    assert 150 < bone_ml < 700  # an adult skull's bone volume is a few hundred ml


def test_represent_builds_both_representations(one_head):
    rep = represent(one_head.skull, one_head.face, noise_free_face=one_head.noise_free_face)
    assert rep.face_depth.depth_mm.shape == (256, 256)
    assert rep.face_region.sum() > 0.5 * face_region_mask(rep.face_depth.view).sum()
    assert rep.skull_grid.occupancy.shape == (128, 128, 128)
    assert rep.face_grid.occupancy.sum() > 5 * rep.skull_grid.occupancy.sum()
    assert rep.noise_free_face_depth is not None
