"""The pose from the bone alone: synthetic skull meshes as scanners leave them (holes, noise, no mandible, 0.5-3 mm
triangles) in random poses and units come back within 2 degrees and 2 mm of their true pose; the skull-scan
generator is seeded and degrades what it says; the symmetry plane is found from any orientation."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from facegen.data.alignment.coarse import plane_rotations
from facegen.data.alignment.scan_surface import ScanSurfaces
from facegen.data.alignment.symmetry import symmetry_plane
from facegen.data.pose import RigidTransform
from facegen.data.scans.ingest import IngestOptions, ingest_input
from facegen.data.synthetic.population import sample_subject
from facegen.data.synthetic.skull_scans import SkullScanSpec, pose_error, skull_scan
from tests.conftest import SMALL_SPEC


@pytest.fixture(scope="module")
def second_head(generator):
    """A male head whose skull the mean shape, fitted rigidly, meets 10-20 degrees nodded (the coarse search alone
    put the old fit in the wrong basin on every degraded scan of it)."""
    rng = np.random.default_rng(8)
    return generator.generate(sample_subject(rng, "H1"), rng)


def _open_edges(mesh: trimesh.Trimesh) -> int:
    return len(trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1))


def test_skull_scans_are_seeded_and_degraded_as_specified(one_head):
    plain = skull_scan(one_head, SkullScanSpec(resolution_mm=3.0, posed=False), seed=1)
    assert abs(plain.mesh.edges_unique_length.mean() - 3.0) < 0.3
    assert np.allclose(plain.canonical_to_scan.as_matrix(), np.eye(4))
    assert _open_edges(plain.mesh) == 0
    spec = SkullScanSpec(resolution_mm=3.0, noise_mm=0.5, holes=5, mandible=False, units="cm")
    scan, again, other = (skull_scan(one_head, spec, seed=s) for s in (1, 1, 2))
    assert np.array_equal(scan.mesh.vertices, again.mesh.vertices) and np.array_equal(scan.mesh.faces, again.mesh.faces)
    assert not np.allclose(scan.canonical_to_scan.rotation, other.canonical_to_scan.rotation)
    assert _open_edges(scan.mesh) > 50  # the holes' rims
    # in cm, turned and moved: back in mm and canonical, the skull lies where the head's does, less its mandible
    back = trimesh.Trimesh(scan.scan_to_canonical.apply(10.0 * np.asarray(scan.mesh.vertices)), scan.mesh.faces)
    near = {k: float(back.nearest.on_surface(one_head.skull_landmarks[k][None])[1][0]) for k in ("nasion", "pogonion")}
    assert near["nasion"] < 2.0 and near["pogonion"] > 10.0


def test_the_symmetry_plane_is_found_from_any_orientation(one_head):
    scan = skull_scan(one_head, SkullScanSpec(resolution_mm=2.0, noise_mm=0.3, holes=6, mandible=False), seed=3)
    plane = symmetry_plane(ScanSurfaces(scan.mesh))
    left = scan.canonical_to_scan.rotation[:, 0]  # the head's left, in the scan: the true plane's normal
    assert plane.angle_deg(left) < 2.0 and plane.matched_share > 0.8
    mid_porion = scan.canonical_to_scan.translation
    assert abs(float(plane.normal @ mid_porion) - plane.offset) < 1.5
    for rotation in plane_rotations(plane.normal):  # the coarse search's starts: model's left on the plane's normal
        assert abs(abs(float(rotation[:, 0] @ plane.normal)) - 1.0) < 1e-9 and np.isclose(np.linalg.det(rotation), 1)


CONDITIONS = {
    "0.5 mm, noisy (decimated on reading)": ("one_head", SkullScanSpec(resolution_mm=0.5, noise_mm=0.15), 11),
    "1 mm, holed, in cm": ("second_head", SkullScanSpec(resolution_mm=1.0, noise_mm=0.3, holes=8, units="cm"), 12),
    "2 mm, no mandible, holed, noisy": (
        "second_head", SkullScanSpec(resolution_mm=2.0, noise_mm=0.5, holes=6, mandible=False), 13),
    "3 mm, no mandible": ("one_head", SkullScanSpec(resolution_mm=3.0, noise_mm=0.3, mandible=False), 14),
}  # fmt: skip


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_a_degraded_skull_mesh_in_any_pose_gets_its_pose_from_the_bone(condition, request, tmp_path):
    head_fixture, spec, seed = CONDITIONS[condition]
    head = request.getfixturevalue(head_fixture)
    scan = skull_scan(head, spec, seed=seed)
    path = tmp_path / ("skull.stl" if spec.resolution_mm >= 2.0 else "skull.ply")
    scan.mesh.export(path)
    ingested = ingest_input(path, IngestOptions(spec=SMALL_SPEC, mesh_units=spec.units))
    at = [np.zeros(3), head.skull_landmarks["nasion"]]  # mid-porion (the origin) and nasion
    degrees, mm = pose_error(ingested.alignment.to_canonical, scan.scan_to_canonical, at)
    assert degrees < 2.0 and mm < 2.0, (degrees, mm)
    alignment = ingested.alignment
    assert not alignment.weak and alignment.symmetry_share > 0.7 and alignment.midline_tilt_deg < 3.0


def test_pose_error_measures_turns_and_shifts():
    truth = RigidTransform(Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix(), np.array([5.0, 0, 1]))
    turn = RigidTransform(Rotation.from_rotvec([0.0, np.radians(3.0), 0.0]).as_matrix(), np.array([0.0, 0.0, 2.0]))
    found = RigidTransform(turn.rotation @ truth.rotation, turn.rotation @ truth.translation + turn.translation)
    degrees, mm = pose_error(found, truth, [np.zeros(3), np.array([0.0, 30.0, 70.0])])
    assert np.isclose(degrees, 3.0)
    assert np.isclose(mm, np.linalg.norm(turn.apply(np.array([0.0, 30.0, 70.0])) - [0.0, 30.0, 70.0]))
