"""Synthetic CT: surfaces at the usual thresholds, tissue values, geometry, determinism and NIfTI files."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from facegen.data.raycast import interval_coverage
from facegen.data.synthetic.ct import fat_thickness_mm, render_ct
from facegen.data.synthetic.generator import HeadGenerator, SyntheticHead
from facegen.data.synthetic.population import sample_subject
from facegen.io.volume import Volume, read_nifti, write_nifti

TEST_SPACING = (1.0, 1.0, 2.0)


@pytest.fixture(scope="module")
def head() -> SyntheticHead:
    rng = np.random.default_rng(0)
    return HeadGenerator().generate(sample_subject(rng, "s0"), rng)


@pytest.fixture(scope="module")
def ct(head: SyntheticHead) -> Volume:
    return render_ct(head, spacing_mm=TEST_SPACING, seed=3)


def _parts(head: SyntheticHead, *, teeth: bool) -> trimesh.Trimesh:
    """The skull's teeth components, or its bone components, as one mesh."""
    parts = head.skull.split(only_watertight=False)
    chosen = []
    for part in parts:
        # a part is teeth when its vertices are teeth vertices of the whole skull
        index = cKDTree(head.skull.vertices).query(part.vertices[:20])[1]
        if bool(head.skull_is_teeth[index].mean() > 0.5) == teeth:
            chosen.append(part)
    return trimesh.util.concatenate(chosen)


def _surface_points(mesh: trimesh.Trimesh, count: int, seed: int) -> np.ndarray:
    """Dense points on a mesh (samples and vertices): nearest-point distances to them are within ~0.2 mm."""
    samples, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.vstack([samples, mesh.vertices])


def _isosurface(volume: Volume, level: float) -> np.ndarray:
    """Vertices (canonical mm) of the marching-cubes surface at `level` HU."""
    vertices, _, _, _ = marching_cubes(volume.array.astype(np.float32), level=level)
    return volume.index_to_world(vertices)


def _hu_at(volume: Volume, points: np.ndarray) -> np.ndarray:
    """HU of the voxels containing canonical points."""
    i, j, k = np.round(volume.world_to_index(points)).astype(int).T
    return volume.array[i, j, k]


def _deep_points(mesh: trimesh.Trimesh, depth_mm: float, seed: int) -> np.ndarray:
    """Random points inside a mesh at least `depth_mm` from its surface."""
    lo, hi = mesh.bounds
    points = np.random.default_rng(seed).uniform(lo, hi, size=(200_000, 3))
    points = points[mesh.contains(points)]
    distance, _ = cKDTree(_surface_points(mesh, 300_000, seed)).query(points, distance_upper_bound=depth_mm)
    return points[distance > depth_mm]


@pytest.mark.parametrize(("level", "which"), [(-300.0, "face"), (300.0, "skull")])
def test_thresholds_give_face_and_skull_surfaces(head: SyntheticHead, ct: Volume, level: float, which: str) -> None:
    mesh = getattr(head, which)
    surface = _isosurface(ct, level)
    # beyond 5 mm a distance is inf: internal air (airway, nasal cavity) is far from the face and slow to query
    distance, _ = cKDTree(_surface_points(mesh, 1_000_000, seed=0)).query(surface, distance_upper_bound=5.0)
    assert np.median(distance) < 1.0
    back, _ = cKDTree(surface).query(_surface_points(mesh, 50_000, seed=1), distance_upper_bound=5.0)
    assert np.mean(back < 1.5) > 0.97  # the threshold surface covers the mesh, not only a part of it


def test_air_bone_and_teeth_values(head: SyntheticHead, ct: Volume) -> None:
    corner = ct.array[:8, :8, :8].astype(float)
    assert abs(corner.mean() + 1000.0) < 10.0
    assert 10.0 < corner.std() < 30.0
    bone = _hu_at(ct, _deep_points(_parts(head, teeth=False), 1.5, seed=0))
    teeth = _hu_at(ct, _deep_points(_parts(head, teeth=True), 1.0, seed=1))
    assert len(bone) > 500 and len(teeth) > 500
    assert 700.0 <= np.median(bone) <= 1900.0
    assert np.median(teeth) > np.median(bone) + 500.0


def test_internal_air_below_the_skin(ct: Volume) -> None:
    # a midline line front to back through the neck: skin, airway, skin again -> two air runs inside
    i, _, k = np.round(ct.world_to_index(np.array([0.0, -70.0, 0.0]))).astype(int)
    line = ct.array[i, :, k] < -500
    inside = np.flatnonzero(~line)
    runs = np.flatnonzero(np.diff(line[inside[0] : inside[-1] + 1].astype(int)) == 1)
    assert len(runs) >= 1


def test_landmarks_land_on_bone_in_voxel_coordinates(head: SyntheticHead, ct: Volume) -> None:
    for name in ("nasion", "glabella", "pogonion"):
        i, j, k = np.round(ct.world_to_index(head.skull_landmarks[name])).astype(int)
        assert ct.array[i - 2 : i + 3, j - 2 : j + 3, k - 2 : k + 3].max() > 700, name
    left, right = (ct.world_to_index(head.skull_landmarks[f"porion_{s}"]) for s in "lr")
    assert left[0] > right[0] + 50  # array axis i runs toward the subject's left


def test_scanner_orientation(ct: Volume) -> None:
    np.testing.assert_allclose(ct.direction[:, 2], [0.0, 1.0, 0.0])  # k: the slice axis, upward
    np.testing.assert_allclose(ct.spacing_mm, TEST_SPACING)
    assert ct.array.dtype == np.int16


def test_same_seed_same_scan_other_seed_other_noise(head: SyntheticHead) -> None:
    a = render_ct(head, spacing_mm=(2.0, 2.0, 3.0), seed=5)
    b = render_ct(head, spacing_mm=(2.0, 2.0, 3.0), seed=5)
    c = render_ct(head, spacing_mm=(2.0, 2.0, 3.0), seed=6)
    assert np.array_equal(a.array, b.array)
    np.testing.assert_array_equal(a.affine, c.affine)
    assert not np.array_equal(a.array, c.array)
    difference = a.array.astype(float) - c.array.astype(float)
    assert 10.0 < difference.std() < 40.0  # noise only: two draws of ~20 HU differ by ~28 HU


def test_noise_free_scan_has_exact_tissue_values(head: SyntheticHead) -> None:
    vol = render_ct(head, spacing_mm=(2.0, 2.0, 3.0), seed=0, noise_hu=0.0, margin_mm=4.0)
    assert vol.array.min() == -1000
    assert vol.array.max() >= 2400


@pytest.mark.slow
def test_default_spacing_scan(head: SyntheticHead) -> None:
    vol = render_ct(head, seed=1)
    np.testing.assert_allclose(vol.spacing_mm, [0.5, 0.5, 1.25])
    extent = (np.array(vol.shape) - 1) * vol.spacing_mm
    face = np.abs(vol.direction.T) @ (head.face.bounds[1] - head.face.bounds[0])
    assert np.all(extent >= face + 2 * 10.0 - 1e-6)
    i, j, k = np.round(vol.world_to_index(head.skull_landmarks["nasion"])).astype(int)
    assert vol.array[i - 3 : i + 4, j - 3 : j + 4, k - 2 : k + 3].max() > 700


def test_bad_options_are_refused(head: SyntheticHead) -> None:
    with pytest.raises(ValueError, match="spacing_mm"):
        render_ct(head, spacing_mm=(1.0, 0.0, 1.0), seed=0)
    with pytest.raises(ValueError, match="noise_hu"):
        render_ct(head, seed=0, noise_hu=-1.0)


def test_fat_thickness_follows_bmi() -> None:
    assert fat_thickness_mm(22.0) == pytest.approx(2.0)
    assert fat_thickness_mm(30.0) == pytest.approx(4.0)
    assert fat_thickness_mm(10.0) == 1.0 and fat_thickness_mm(80.0) == 10.0


def _reference_coverage(intervals: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Coverage by direct integration: clip every interval to every cell (slow, obviously right)."""
    covered = np.zeros((intervals.shape[0], len(boundaries)))
    for p in range(intervals.shape[1]):
        entry, exit_ = intervals[:, p, 0:1], intervals[:, p, 1:2]
        valid = np.isfinite(entry)
        span = np.where(valid, exit_ - entry, 0.0)
        covered += np.where(valid, np.clip(boundaries[None, :] - np.nan_to_num(entry), 0.0, span), 0.0)
    return np.diff(covered, axis=1) / np.diff(boundaries)[None, :]


def test_interval_coverage_matches_direct_integration() -> None:
    rng = np.random.default_rng(0)
    ends = np.sort(rng.uniform(-5.0, 45.0, size=(500, 6)), axis=1).reshape(500, 3, 2)
    ends[rng.random((500, 3)) < 0.3] = np.nan
    ends = np.take_along_axis(ends, np.argsort(np.isnan(ends[:, :, 0]), axis=1)[:, :, None], axis=1)
    ends[0] = [[2.0, 2.0], [7.5, 7.5], [np.nan, np.nan]]  # empty intervals on and between cell bounds
    boundaries = 1.0 + 1.25 * np.arange(31)
    expected = _reference_coverage(ends, boundaries)
    got = interval_coverage(ends, first_mm=1.0, step_mm=1.25, cells=30)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_ct_round_trip_keeps_voxels_and_geometry(tmp_path, ct: Volume) -> None:
    back = read_nifti(write_nifti(ct, tmp_path / "ct.nii.gz"))
    np.testing.assert_array_equal(back.array, ct.array)
    np.testing.assert_allclose(back.affine, ct.affine, atol=1e-4)
