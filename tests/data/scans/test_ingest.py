"""End to end: synthetic heads written as scanner files come back through ingest in place, and nothing
identifying leaks; every bad input of the real-scans path gets a message that names the problem."""

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.dataset.ingest import work_dir
from facegen.data.dataset.reader import Dataset
from facegen.data.dataset.verify import verify_dataset
from facegen.data.pose import RigidTransform
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.scans.ingest import ROUGH_FACE_NOTE, IngestOptions, ingest_input
from facegen.data.scans.scan import ScanError
from facegen.data.scans.scanner_objects import add_scanner_objects
from facegen.data.synthetic.ct import render_ct
from facegen.io.volume import Volume, write_nifti
from tests.conftest import SMALL_SPEC

HEADSQ = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "headsq-ct" / "quarter.nhdr"
PLANTED = {
    "PatientName": "DOE^JANE^QX7",
    "PatientID": "PID-99812345",
    "PatientBirthDate": "19610412",
    "InstitutionName": "ST MARY QX7 HOSPITAL",
    "ReferringPhysicianName": "DR^WHO^QX7",
    "AccessionNumber": "ACC-55519",
    "StudyDescription": "HEAD QX7 TRAUMA",
    "PatientSex": "F",
    "PatientAge": "045Y",
}
SECRETS = [v for k, v in PLANTED.items() if k not in ("PatientSex", "PatientAge")] + ["DOE", "JANE"]
OPTIONS = IngestOptions(spec=SMALL_SPEC)


def _moved(head, transform: RigidTransform):
    """The synthetic head after a rigid move (as if it lay tilted and shifted in the scanner)."""

    def mesh(m):
        return trimesh.Trimesh(transform.apply(np.asarray(m.vertices)), m.faces, process=False)

    return dataclasses.replace(
        head,
        skull=mesh(head.skull),
        face=mesh(head.face),
        noise_free_face=mesh(head.noise_free_face),
        skull_landmarks={k: transform.apply(v) for k, v in head.skull_landmarks.items()},
        face_landmarks={k: transform.apply(v) for k, v in head.face_landmarks.items()},
    )


def _surface_distance(points: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    """Distance to the surface, from a dense sample of it (~0.2 mm apart: far below the 1 mm tested)."""
    dense, _ = trimesh.sample.sample_surface(mesh, max(200_000, int(mesh.area * 20)), seed=0)
    return cKDTree(dense).query(points)[0]


@pytest.fixture(scope="module")
def scanned(one_head, tmp_path_factory):
    """The head tilted 12 degrees about a random axis and shifted, scanned with table, headrest and cable,
    written as a DICOM series carrying planted identifying values."""
    rng = np.random.default_rng(404)
    axis = rng.normal(size=3)
    truth = RigidTransform(Rotation.from_rotvec(np.radians(12.0) * axis / np.linalg.norm(axis)).as_matrix(),
                           rng.uniform(-25, 25, size=3))  # fmt: skip
    volume = render_ct(_moved(one_head, truth), spacing_mm=(1.0, 1.0, 1.25), seed=5)
    volume = add_scanner_objects(volume, rng)
    folder = tmp_path_factory.mktemp("study") / "case-a"
    write_dicom_series(volume, folder, tags=PLANTED, seed=3)
    return truth, volume, folder


@pytest.fixture(scope="module")
def ingested(scanned):
    return ingest_input(scanned[2], OPTIONS)


def test_dicom_series_comes_back_in_the_canonical_pose(one_head, scanned, ingested):
    truth, _, _ = scanned
    error = ingested.alignment.to_canonical.as_matrix() @ truth.as_matrix()
    angle = np.degrees(np.linalg.norm(Rotation.from_matrix(error[:3, :3]).as_rotvec()))
    shift = float(np.linalg.norm(error[:3, 3]))
    assert angle < 2.0, f"pose off by {angle:.2f} degrees"
    assert shift < 2.0, f"pose off by {shift:.2f} mm"


def test_surfaces_come_back_within_a_millimetre(one_head, ingested):
    rng = np.random.default_rng(0)
    for name, got, true in (("face", ingested.face, one_head.face), ("skull", ingested.skull, one_head.skull)):
        points = np.asarray(got.vertices)[rng.choice(len(got.vertices), 3000, replace=False)]
        median = float(np.median(_surface_distance(points, true)))
        assert median < 1.0, f"{name}: median distance {median:.2f} mm to the true surface"


def test_a_case_ingests_the_skull_as_well_with_a_rough_face(one_head, scanned, ingested):
    # full_face off (what `facegen reconstruct` asks): the same pose and skull, the skin only for the pose
    truth, _, folder = scanned
    head = ingest_input(folder, dataclasses.replace(OPTIONS, full_face=False))
    error = head.alignment.to_canonical.as_matrix() @ truth.as_matrix()
    assert np.degrees(np.linalg.norm(Rotation.from_matrix(error[:3, :3]).as_rotvec())) < 2.0
    assert np.linalg.norm(error[:3, 3]) < 2.0
    rng = np.random.default_rng(0)
    for name, got, true in (("face", head.face, one_head.face), ("skull", head.skull, one_head.skull)):
        points = np.asarray(got.vertices)[rng.choice(len(got.vertices), 3000, replace=False)]
        median = float(np.median(_surface_distance(points, true)))
        assert median < 1.0, f"{name}: median distance {median:.2f} mm to the true surface"
    assert head.record["face"] == ROUGH_FACE_NOTE and "face" not in ingested.record
    assert head.record["input"] == ingested.record["input"]


def test_sex_and_age_are_kept_from_the_header_only_when_asked(scanned, ingested):
    kept = dataclasses.replace(OPTIONS, keep_sex_age=True)
    assert ingested.sex is None
    from facegen.data.scans.volumes import read_scan

    scan = read_scan(scanned[2], keep_sex_age=kept.keep_sex_age)
    assert (scan.sex.value, scan.age_years) == ("F", 45.0)


def _all_bytes(*folders: Path) -> list[bytes]:
    blobs = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            blobs.append(path.read_bytes())
            if path.suffix == ".gz":
                blobs.append(gzip.decompress(blobs[-1]))
    return blobs


def test_batch_finishes_the_rest_resumes_and_leaks_nothing(scanned, tmp_path):
    """`facegen ingest` on the DICOM study with planted identifying values and a corrupt NIfTI beside it."""
    _, volume, folder = scanned
    coarse = Volume(volume.array[::2, ::2], volume.spacing_mm * [2, 2, 1], volume.origin_mm, volume.direction)
    corrupt = tmp_path / "case-b.nii.gz"
    write_nifti(coarse, corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:5000])
    out = tmp_path / "ds"
    command = ["ingest", str(folder), str(corrupt), "--out", str(out), "--size", "128", "--grid", "32"]
    first = CliRunner().invoke(app, command)
    assert first.exit_code == 2, first.output
    assert "1 of 2 cases failed" in first.output
    failures = json.loads((work_dir(out) / "failures.json").read_text())
    assert failures.keys() == {"case-b"} and "case-b.nii.gz: unreadable" in failures["case-b"]
    assert [r.subject.subject_id for r in Dataset.open(out).rows] == ["case-a"]
    assert verify_dataset(out) == []
    row = Dataset.open(out).rows[0]
    assert row.subject.sex is None and row.subject.age_years is None  # kept only when asked
    blobs = [first.output.encode(), *_all_bytes(out, work_dir(out))]
    for secret in SECRETS:
        assert not any(secret.encode() in blob for blob in blobs), f"{secret!r} leaked into the output"
    assert not list(tmp_path.rglob("*.partial*"))
    # the input fixed, the same command again: the finished case is kept, the failed one is done
    write_nifti(coarse, corrupt)
    second = CliRunner().invoke(app, command)
    assert second.exit_code == 0, second.output
    assert "done (earlier run)" in second.output
    assert [r.subject.subject_id for r in Dataset.open(out).rows] == ["case-a", "case-b"]
    assert not work_dir(out).exists() and verify_dataset(out) == []


def _nifti(volume: Volume, path: Path, *, offset: float = 0.0, spacing: float | None = None) -> Path:
    array = (volume.array.astype(np.float32) + offset).astype(np.float32)
    spacing_mm = volume.spacing_mm if spacing is None else np.full(3, spacing)
    write_nifti(Volume(array, spacing_mm, volume.origin_mm, volume.direction), path)
    return path


def test_scan_stored_as_hu_plus_1000_is_detected_and_corrected(scanned, tmp_path):
    from facegen.data.scans.intensity import to_hounsfield
    from facegen.data.scans.volumes import read_scan

    path = _nifti(scanned[1], tmp_path / "plus1000.nii.gz", offset=1000.0)
    calibration = to_hounsfield(read_scan(path), path)
    assert "HU +1000: detected and corrected" in calibration.note
    assert np.allclose(calibration.volume.array[::7, ::7, ::7], scanned[1].array[::7, ::7, ::7])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda v, p: _nifti(v, p, offset=3000.0), "do not look like CT Hounsfield units.*--hu-offset"),
        (lambda v, p: _nifti(v, p, spacing=0.01), r"voxel spacing \[0.01, 0.01, 0.01\] mm is outside"),
        (lambda v, p: _nifti(v, p, spacing=8.0), "the head found is .* mm across.*spacing"),
        (
            lambda v, p: _nifti(Volume(np.full((60, 60, 60), -1000, np.int16), [2, 2, 2], [0, 0, 0], np.eye(3)), p),
            "the volume is empty",
        ),  # fmt: skip
        (
            lambda v, p: _nifti(
                Volume(
                    np.where(np.arange(60)[:, None, None] < 8, 40, -1000).astype(np.int16)
                    * np.ones((60, 60, 60), np.int16),
                    [2, 2, 2],
                    [0, 0, 0],
                    np.eye(3),
                ),
                p,
            ),
            "no head found",
        ),  # fmt: skip
    ],
)
def test_bad_volumes_are_refused_with_the_problem_named(scanned, tmp_path, make, message):
    path = make(scanned[1], tmp_path / "bad.nii.gz")
    with pytest.raises(ScanError, match=message) as info:
        ingest_input(path, OPTIONS)
    assert str(path) in str(info.value)


def test_mr_is_refused_unless_forced(scanned, tmp_path):
    folder = tmp_path / "mr"
    volume = scanned[1]
    write_dicom_series(Volume(volume.array[::2, ::2, ::2], volume.spacing_mm * 2, volume.origin_mm, volume.direction),
                       folder, modality="MR")  # fmt: skip
    with pytest.raises(ScanError, match="the scan is MR, not CT.*--force-intensity"):
        ingest_input(folder, OPTIONS)


def test_a_scan_without_the_face_is_refused(scanned, tmp_path):
    volume = scanned[1]
    top = volume.array[:, :, volume.shape[2] // 2 + 12 :]  # above the nose: vault and orbits only
    origin = volume.index_to_world(np.array([0, 0, volume.shape[2] // 2 + 12]))
    path = _nifti(Volume(top, volume.spacing_mm, origin, volume.direction), tmp_path / "vault.nii.gz")
    with pytest.raises(ScanError, match="not in the field of view|automatic alignment failed"):
        ingest_input(path, OPTIONS)


def test_skull_mesh_in_any_orientation_is_aligned(one_head, tmp_path):
    truth = RigidTransform(
        Rotation.from_euler("xyz", [100, -40, 160], degrees=True).as_matrix(), np.array([5, 90, -30])
    )
    mesh = trimesh.Trimesh(truth.apply(np.asarray(one_head.skull.vertices)), one_head.skull.faces)
    path = tmp_path / "skull.ply"
    mesh.export(path)
    head = ingest_input(path, OPTIONS)
    error = head.alignment.to_canonical.as_matrix() @ truth.as_matrix()
    assert np.degrees(np.linalg.norm(Rotation.from_matrix(error[:3, :3]).as_rotvec())) < 2.0
    assert np.linalg.norm(error[:3, 3]) < 2.0
    assert head.face is None


@pytest.mark.parametrize(
    ("scale", "every", "message"),
    [
        (0.1, 0, "looks like cm: pass --mesh-units cm"),
        (0.001, 0, "looks like m: pass --mesh-units m"),
        (1.0, 8, "not closed enough"),
    ],
)
def test_bad_skull_meshes_are_refused(one_head, tmp_path, scale, every, message):
    faces = np.asarray(one_head.skull.faces)
    if every:  # punch a hole in place of every n-th triangle
        faces = faces[np.arange(len(faces)) % every != 0]
    mesh = trimesh.Trimesh(np.asarray(one_head.skull.vertices) * scale, faces, process=False)
    path = tmp_path / "skull.stl"
    mesh.export(path)
    with pytest.raises(ScanError, match=message):
        ingest_input(path, OPTIONS)


def test_empty_mesh_is_refused(tmp_path):
    path = tmp_path / "empty.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 0\nelement face 0\nend_header\n")
    with pytest.raises(ScanError, match="empty"):
        ingest_input(path, OPTIONS)


@pytest.mark.skipif(not HEADSQ.exists(), reason="../shared/data/headsq-ct is not here")
def test_real_headsq_ct_goes_through_ingest(tmp_path):
    out = tmp_path / "real"
    result = CliRunner().invoke(app, ["ingest", str(HEADSQ), "--out", str(out), "--size", "128", "--grid", "32"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "subjects" / "quarter" / "scan.json").read_text())
    assert "HU +1000: detected and corrected" in record["intensity"]
    face = trimesh.load(out / "subjects" / "quarter" / "face.ply")
    skull = trimesh.load(out / "subjects" / "quarter" / "skull.ply")
    # canonical frame: the midline bone lies on x = 0 and the face looks forward (+z), its nose tip below the
    # orbits and near the midline (this person's nose tip sits ~11 mm right of the bony midline, at -2 to -5 mm)
    midline = ("glabella", "nasion", "rhinion", "subnasale", "pogonion", "menton")
    landmarks = record["alignment"]["landmarks_canonical_mm"]
    assert all(abs(landmarks[name][0]) < 6.0 for name in midline), {n: landmarks[n] for n in midline}
    vertices = np.asarray(face.vertices)
    nose = vertices[vertices[:, 2] > vertices[:, 2].max() - 3.0].mean(axis=0)  # the tip, not one vertex of it
    assert abs(nose[0]) < 15.0 and -60.0 < nose[1] < 0.0
    assert skull.extents[1] > 100.0  # the skull spans from the orbits to below the chin
    arrays = Dataset.open(out).arrays()
    assert arrays["face_mask"][0].mean() > 0.2 and arrays["skull_mask"][0].mean() > 0.1
