"""A skull mesh as a laboratory hands it in: the real headsq skull, meshed from the shared CT at 300 HU, reconstructs
with the pose from the bone alone within 3 degrees and 3 mm of the full CT's (skin included), in the scan's
world axes and in its voxel axes, and so does the CT with its soft tissue removed; a skull in the wrong units and a
mesh that is not a skull are refused by name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import trimesh
from skimage.measure import marching_cubes
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.pose import RigidTransform
from facegen.data.scans.ingest import IngestOptions, ingest_input
from facegen.data.scans.intensity import to_hounsfield
from facegen.data.scans.volumes import read_scan
from facegen.data.synthetic.skull_scans import pose_error
from tests.conftest import SHARED, SMALL_SPEC

runner = CliRunner()
HEADSQ = SHARED / "data" / "headsq-ct" / "quarter.nhdr"
needs_headsq = pytest.mark.skipif(not HEADSQ.exists(), reason="../shared/data/headsq-ct is not beside the repository")
BONE_HU = 300.0
ONE_FACE = ["--sex", "F", "--age", "40", "--bmi", "25"]
MAX_DEGREES = 3.0
MAX_MM = 3.0
"""Issue 17's tolerance for the bone-only poses of the headsq skull against the full CT's (skin included), measured
at mid-porion and nasion. Measured: the mesh 1.0-1.2 degrees and 1.6-1.8 mm in any orientation, the CT with its
soft tissue removed 1.9 degrees and 2.4 mm."""


@pytest.fixture(scope="module")
def headsq():
    """The CT's volume in HU, scan frame, and the full CT's pose (skin included) as a case finds it: scan (LPS)
    to canonical, and its mid-porion (origin) and nasion, where pose errors are measured."""
    scan = read_scan(HEADSQ)
    volume = to_hounsfield(scan, HEADSQ).volume
    alignment = ingest_input(HEADSQ, IngestOptions(spec=SMALL_SPEC, full_face=False)).alignment
    assert alignment.inlier_share > 0.3 and alignment.symmetry_share is None  # the skin pinned this pose
    at = [np.zeros(3), alignment.to_canonical.apply(alignment.landmarks["nasion"])]
    return volume, scan.frame.from_patient(), alignment.scan_to_canonical(scan.frame.from_patient()), at


def _skull_mesh(volume, linear: np.ndarray, offset: np.ndarray, path: Path) -> Path:
    """The CT's bone surface by marching cubes at BONE_HU, its voxel indices mapped by `linear` and `offset`."""
    vertices, faces, _, _ = marching_cubes(volume.array.astype(np.float32), BONE_HU)
    if np.linalg.det(linear) > 0:  # marching cubes winds its triangles facing into the bone, unless mirrored
        faces = faces[:, ::-1]
    trimesh.Trimesh(vertices @ linear.T + offset, faces, process=False).export(path)
    return path


@needs_headsq
def test_the_real_skull_mesh_reconstructs_in_the_full_cts_pose(headsq, case_model_run, tmp_path):
    volume, from_patient, ct_pose, at = headsq
    # in the scan's world frame (LPS, as the file states it): index -> patient -> scan
    mesh = _skull_mesh(volume, from_patient @ volume.affine[:3, :3], from_patient @ volume.origin_mm,
                       tmp_path / "headsq-skull.ply")  # fmt: skip
    out = tmp_path / "case"
    args = ["reconstruct", str(mesh), "--out", str(out), "--model", str(case_model_run), *ONE_FACE]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    case = json.loads((out / "case.json").read_text())
    to_scan = np.asarray(case["frames"]["canonical_to_scan"])
    found = RigidTransform(to_scan[:3, :3], to_scan[:3, 3]).inverse()
    degrees, mm = pose_error(found, ct_pose, at)
    assert degrees < MAX_DEGREES and mm < MAX_MM, (degrees, mm)
    pose = case["pose"]
    assert not pose["weak"] and pose["symmetry_matched_share"] > 0.6 and pose["midline_tilt_from_symmetry_deg"] < 3
    report = (out / "report.html").read_text()
    assert "bone matched by its mirror image" in report and (out / "F-age40-bmi25" / "face.ply").is_file()


@needs_headsq
def test_the_real_skull_mesh_in_the_ct_voxel_axes_gets_the_same_pose(headsq, tmp_path):
    volume, from_patient, ct_pose, at = headsq
    # voxel axes in mm, the slice axis turned around so the map stays a rotation (the file's space is mirrored)
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(volume.direction))])
    index_mm = np.diag(volume.spacing_mm) @ flip
    mesh = _skull_mesh(volume, index_mm, np.zeros(3), tmp_path / "voxel-axes.stl")
    mesh_to_canonical = ingest_input(mesh, IngestOptions(spec=SMALL_SPEC)).alignment.to_canonical
    # the mesh's point q is the patient point direction @ flip @ q + origin
    patient_to_mesh = RigidTransform(volume.direction @ flip, volume.origin_mm).inverse()
    found = RigidTransform(mesh_to_canonical.rotation @ patient_to_mesh.rotation,
                           mesh_to_canonical.apply(patient_to_mesh.translation))  # fmt: skip
    truth = RigidTransform(ct_pose.rotation @ from_patient, ct_pose.translation)  # patient -> canonical, the CT's
    degrees, mm = pose_error(found, truth, at)
    assert degrees < MAX_DEGREES and mm < MAX_MM, (degrees, mm)


@needs_headsq
def test_the_real_ct_without_soft_tissue_reconstructs_in_the_full_cts_pose(headsq, case_model_run, tmp_path):
    _, _, ct_pose, at = headsq
    raw = b"".join((HEADSQ.parent / f"quarter.{n}").read_bytes() for n in range(1, 94))
    values = np.frombuffer(raw, "<i2").copy()
    values[values < 1300] = 0  # below 300 HU to air (-1000 HU), in the file's units (HU + 1000): a dry skull's CT
    (tmp_path / "dry.raw").write_bytes(values.astype("<i2").tobytes())
    (tmp_path / "dry.nhdr").write_text(HEADSQ.read_text().replace("quarter.%d 1 93 1", "dry.raw"))
    out = tmp_path / "case"
    result = runner.invoke(app, ["reconstruct", str(tmp_path / "dry.nhdr"), "--out", str(out),
                                 "--model", str(case_model_run), *ONE_FACE])  # fmt: skip
    assert result.exit_code == 0, result.output
    case = json.loads((out / "case.json").read_text())
    assert case["skin"]["dry_skull"] and not case["pose"]["weak"]
    to_scan = np.asarray(case["frames"]["canonical_to_scan"])  # the NRRD's world frame is LPS, as the CT's
    degrees, mm = pose_error(RigidTransform(to_scan[:3, :3], to_scan[:3, 3]).inverse(), ct_pose, at)
    assert degrees < MAX_DEGREES and mm < MAX_MM, (degrees, mm)


@pytest.mark.parametrize(("scale", "units", "message"), [
    (0.1, "cm", "looks like cm: pass --mesh-units cm"),
    (1 / 25.4, "in", "looks like in: pass --mesh-units in"),
    (0.001, "m", "looks like m: pass --mesh-units m"),
])  # fmt: skip
def test_a_skull_in_the_wrong_units_is_refused_naming_its_size_and_units(
    one_head, case_model_run, tmp_path, scale, units, message
):
    path = tmp_path / f"skull-{units}.stl"
    trimesh.Trimesh(np.asarray(one_head.skull.vertices) * scale, one_head.skull.faces).export(path)
    out = tmp_path / "case"
    result = runner.invoke(app, ["reconstruct", str(path), "--out", str(out), "--model", str(case_model_run),
                                 *ONE_FACE])  # fmt: skip
    size = max(one_head.skull.extents) * scale
    assert result.exit_code == 2 and "wrong units" in result.output and message in result.output, result.output
    found = re.search(r"the mesh is ([0-9.]+) mm across", result.output)
    assert found and abs(float(found.group(1)) - size) < 0.02 * size and not out.exists()  # specks dropped first


def _blob(seed: int) -> trimesh.Trimesh:
    """A lumpy closed surface about a skull's size: a sphere pushed in and out by a dozen random bumps (seeded)."""
    rng = np.random.default_rng(seed)
    blob = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    directions = np.asarray(blob.vertices)
    bumps = np.zeros(len(directions))
    for _ in range(12):
        centre = rng.normal(size=3)
        centre /= np.linalg.norm(centre)
        bumps += rng.normal(0.0, 0.25) * np.exp(-np.sum((directions - centre) ** 2, axis=1) / 0.3)
    blob.vertices = directions * (90.0 * (1.0 + bumps))[:, None]
    return blob


@pytest.mark.parametrize("shape", ["sphere", "box", "blob"])
def test_a_mesh_that_is_not_a_skull_is_refused_by_name(shape, case_model_run, tmp_path):
    box = trimesh.creation.box(extents=(150.0, 180.0, 200.0))
    meshes = {
        "sphere": trimesh.creation.icosphere(subdivisions=5, radius=90.0),
        "box": trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(box.vertices, box.faces, 3.0)),
        "blob": _blob(0),
    }
    path = tmp_path / f"{shape}.ply"
    meshes[shape].export(path)
    out = tmp_path / "case"
    result = runner.invoke(app, ["reconstruct", str(path), "--out", str(out), "--model", str(case_model_run),
                                 *ONE_FACE])  # fmt: skip
    assert result.exit_code == 2 and "does not look like a skull" in result.output, result.output
    assert "standard units from the mean skull" in result.output and not out.exists()
