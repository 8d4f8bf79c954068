"""A case lies in the scan's own frame: a synthetic CT written obliquely as DICOM and as NIfTI, its case files
checked against surfaces and landmarks computed from the files alone (pydicom, nibabel, scikit-image)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import trimesh
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.alignment.canonical import Alignment
from facegen.data.pose import RigidTransform
from facegen.data.representations.build import in_face_region
from facegen.data.representations.depth_map import DepthView
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.scans.scan import DICOM_FRAME, NIFTI_FRAME, ScanFrame
from facegen.data.synthetic.ct import render_ct
from facegen.io.volume import Volume, write_nifti
from facegen.use.case_frames import MARKUPS_SCHEMA, CaseFrames, depth_pixel_to_canonical, frames_summary
from facegen.use.face_mesh import mesh_file_bytes

runner = CliRunner()
VOXEL_MM = 2.0
BONE_HU, SKIN_HU = 300.0, -300.0
ORIGIN_LPS_MM = np.array([-120.0, 35.0, 210.0])
"""Where the oblique scan's first voxel lies, in DICOM patient coordinates."""


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


TILT = _rotation(0, 20.0) @ _rotation(1, 20.0)
"""The scanner's axes turned 20 degrees about two axes (patient axes: x left, y superior, z anterior)."""


def _lps(patient: np.ndarray) -> np.ndarray:
    """DICOM LPS of points on facegen's patient axes: L = x, P = -z, S = y."""
    return np.stack([patient[..., 0], -patient[..., 2], patient[..., 1]], axis=-1)


def _ras(patient: np.ndarray) -> np.ndarray:
    """NIfTI RAS of points on facegen's patient axes: R = -x, A = z, S = y."""
    return np.stack([-patient[..., 0], patient[..., 2], patient[..., 1]], axis=-1)


@pytest.fixture(scope="module")
def oblique_ct(one_head, tmp_path_factory) -> dict[str, object]:
    """The head's CT at 2 mm with tilted axes and a shifted origin, written as DICOM and NIfTI; the truth with it."""
    ct = render_ct(one_head, spacing_mm=(VOXEL_MM,) * 3, seed=4, margin_mm=20.0)
    origin = np.array([ORIGIN_LPS_MM[0], ORIGIN_LPS_MM[2], -ORIGIN_LPS_MM[1]])  # patient axes from LPS
    oblique = Volume(ct.array, ct.spacing_mm, origin, TILT @ ct.direction)
    folder = tmp_path_factory.mktemp("oblique")
    write_dicom_series(oblique, folder / "dicom", seed=1)
    write_nifti(oblique, folder / "ct.nii.gz")
    # the synthetic head is in the canonical frame where the CT grid was made: patient = TILT (p - o) + origin
    to_patient = RigidTransform(TILT, origin - TILT @ ct.origin_mm)
    landmarks = {k: to_patient.apply(v) for k, v in one_head.skull_landmarks.items()}
    return {"dicom": folder / "dicom", "nifti": folder / "ct.nii.gz", "landmarks_patient": landmarks}


@pytest.fixture(scope="module")
def small_default_model(tmp_path_factory) -> Path:
    """The default model's recipe (statistical model at 128^2, 2 mm pixels) on 30 synthetic heads."""
    from facegen.use.default_model import build_default_model

    return build_default_model(n=30, target=tmp_path_factory.mktemp("models") / "default-30", workers=1)


def _dicom_surface(folder: Path, level_hu: float) -> trimesh.Trimesh:
    """The iso-surface of a DICOM series in its patient coordinates (LPS), from pydicom and the header alone."""
    slices = [pydicom.dcmread(path) for path in sorted(folder.glob("*.dcm"))]
    orientation = np.array(slices[0].ImageOrientationPatient, float)
    along_row, along_column = orientation[:3], orientation[3:]
    slices.sort(key=lambda ds: float(np.array(ds.ImagePositionPatient, float) @ np.cross(along_row, along_column)))
    positions = np.array([ds.ImagePositionPatient for ds in slices], float)
    row_spacing, column_spacing = (float(v) for v in slices[0].PixelSpacing)
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices], axis=-1)
    vertices, faces, _, _ = marching_cubes(hu.astype(np.float32), level_hu)  # (row, column, slice) indices
    step = (positions[-1] - positions[0]) / (len(slices) - 1)
    world = (positions[0] + vertices[:, [1]] * column_spacing * along_row
             + vertices[:, [0]] * row_spacing * along_column + vertices[:, [2]] * step)  # fmt: skip
    return trimesh.Trimesh(world, faces, process=False)


def _nifti_surface(path: Path, level_hu: float) -> trimesh.Trimesh:
    """The iso-surface of a NIfTI volume in its world coordinates (RAS), from nibabel's affine alone."""
    image = nib.load(path)
    vertices, faces, _, _ = marching_cubes(np.asanyarray(image.dataobj).astype(np.float32), level_hu)
    return trimesh.Trimesh(nib.affines.apply_affine(image.affine, vertices), faces, process=False)


def _median_distance(points: np.ndarray, surface: trimesh.Trimesh, n: int = 3000) -> float:
    """Median exact distance (mm) from about `n` of the points (every k-th, in order) to the surface."""
    chosen = np.asarray(points)[:: max(1, len(points) // n)]
    return float(np.median(trimesh.proximity.closest_point(surface, chosen)[1]))


@pytest.mark.parametrize(("kind", "space"), [("dicom", "LPS"), ("nifti", "RAS")])
def test_an_oblique_ct_case_lies_on_the_scan_in_its_own_frame(oblique_ct, one_head, small_default_model, tmp_path,
                                                              kind, space):  # fmt: skip
    subject = one_head.subject
    out = tmp_path / "case"
    result = runner.invoke(app, ["reconstruct", str(oblique_ct[kind]), "--out", str(out), "--sex", subject.sex.value,
                                 "--age", str(subject.age_years), "--bmi", str(subject.bmi),
                                 "--model", str(small_default_model)])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((out / "case.json").read_text())
    variant = record["variants"][0]
    frames = record["frames"]
    assert frames["scan"]["axes"] == space and frames["scan"]["units"] == "mm"
    assert frames["scan"]["name"] == (DICOM_FRAME if kind == "dicom" else NIFTI_FRAME).name
    surface = _dicom_surface if kind == "dicom" else _nifti_surface

    # the skull on the bone of the file's own voxels, placed by the file's own geometry (one voxel: 2 mm)
    bone = surface(oblique_ct[kind], BONE_HU)
    skull = trimesh.load(out / "skull.ply", process=False)
    on_bone = _median_distance(skull.vertices, bone)
    assert on_bone < VOXEL_MM, on_bone
    assert _median_distance(trimesh.load(out / "skull_canonical.ply", process=False).vertices, bone) > 50.0

    # the face on the true skin over the face region (the model's own error is in this figure too)
    skin = surface(oblique_ct[kind], SKIN_HU)
    face = trimesh.load(out / variant / "face.ply", process=False)
    canonical_face = trimesh.load(out / variant / "face_canonical.ply", process=False)
    region = in_face_region(canonical_face.vertices[:, 0], canonical_face.vertices[:, 1])
    on_skin = _median_distance(face.vertices[region], skin)
    assert on_skin < VOXEL_MM, on_skin

    # the canonical copy and the recorded transform give the scan-frame file exactly
    to_scan = np.asarray(frames["canonical_to_scan"])
    mapped = canonical_face.vertices @ to_scan[:3, :3].T + to_scan[:3, 3]
    np.testing.assert_allclose(mapped, face.vertices, atol=1e-3)
    # and so does the depth map's recorded geometry: every face vertex inside the outline is a masked pixel's point
    # (the outline's vertices are smoothed along it, off the pixel grid)
    depth, mask = np.load(out / variant / "face_depth_mm.npy"), np.load(out / variant / "face_mask.npy")
    rows, cols = np.nonzero(mask)
    pixels = np.stack([cols, rows, depth[rows, cols], np.ones(len(rows))], axis=1)
    pixel_points = pixels @ np.asarray(frames["depth_pixel_to_scan"]).T
    unique, counts = np.unique(face.edges_sorted, axis=0, return_counts=True)
    inner = np.setdiff1d(np.arange(len(face.vertices)), unique[counts == 1].ravel())
    assert len(inner) > 0.7 * len(face.vertices)
    assert cKDTree(pixel_points[:, :3]).query(face.vertices[inner])[0].max() < 1e-3

    # landmarks: a Slicer markups file in the input's coordinate system, near the head's true landmarks
    markups = json.loads((out / "landmarks.mrk.json").read_text())
    assert markups["@schema"] == MARKUPS_SCHEMA
    (points,) = markups["markups"]
    assert points["type"] == "Fiducial" and points["coordinateSystem"] == space and points["coordinateUnits"] == "mm"
    found = {p["label"]: np.array(p["position"]) for p in points["controlPoints"]}
    to_space = _lps if space == "LPS" else _ras
    truth = {k: to_space(v) for k, v in oblique_ct["landmarks_patient"].items() if k in found}
    assert {"porion_l", "porion_r", "orbitale_l"} <= set(truth)
    errors = [np.linalg.norm(found[k] - truth[k]) for k in truth]
    assert np.median(errors) < VOXEL_MM, dict(zip(truth, np.round(errors, 1), strict=True))
    for name, position in record["alignment"]["landmarks_scan_mm"].items():
        np.testing.assert_allclose(found[name], position, atol=1e-3)

    # every mesh file names its frame and units; the report says it in one line
    scan_header = f"frame: {frames['scan']['name']}; units: mm; SPACE={space}"
    assert f"comment facegen mesh; {scan_header}\n".encode() in (out / "skull.ply").read_bytes()[:400]
    assert (out / variant / "face.obj").read_text().startswith(f"# facegen mesh; {scan_header}\n")
    assert (out / "skull.stl").read_bytes().startswith(f"SPACE={space} facegen mesh".encode())
    canonical_header = (out / variant / "face_canonical.ply").read_bytes()[:400]
    assert b"frame: facegen canonical" in canonical_header and b"SPACE=" not in canonical_header
    assert html.escape(frames_summary(frames)) in (out / "report.html").read_text()


def test_frames_record_and_markups_follow_the_scan_frame():
    to_canonical = RigidTransform(_rotation(2, 30.0) @ _rotation(0, -15.0), np.array([5.0, -20.0, 40.0]))
    alignment = Alignment(to_canonical, {}, "test")
    to_scan = alignment.scan_to_canonical(DICOM_FRAME.from_patient()).inverse()
    frames = CaseFrames(DICOM_FRAME, DICOM_FRAME.from_patient(), to_scan)
    point = np.array([12.0, -40.0, 77.0])  # patient coordinates: to canonical and back out to the scan frame
    np.testing.assert_allclose(frames.canonical_to_scan.apply(to_canonical.apply(point)), _lps(point), atol=1e-9)
    patient = {"porion_r": np.array([-60.0, 0.0, 0.0]), "nasion": np.array([1.0, 20.0, 90.0])}
    data = frames.markups_bytes(patient, "test")
    assert data == frames.markups_bytes(dict(reversed(patient.items())), "test")  # same points, same bytes
    (markup,) = json.loads(data)["markups"]
    assert [p["label"] for p in markup["controlPoints"]] == ["nasion", "porion_r"]
    np.testing.assert_allclose(markup["controlPoints"][0]["position"], [1.0, -90.0, 20.0])
    view = DepthView(shape=(8, 10), pixel_mm=2.0, centre_mm=(1.0, -3.0))
    record = frames.record(view)
    x, y = view.pixel_centres()
    corner = np.array(record["depth_pixel_to_scan"]) @ [9.0, 7.0, 55.0, 1.0]
    canonical = np.array([x[9], y[7], 55.0])
    np.testing.assert_allclose(corner[:3], frames.canonical_to_scan.apply(canonical), atol=1e-5)
    np.testing.assert_allclose(depth_pixel_to_canonical(view) @ [0.0, 0.0, 0.0, 1.0], [x[0], y[0], 0.0, 1.0])
    assert record["scan"]["slicer_space"] == "LPS" and record["canonical"]["units"] == "mm"


def test_mesh_headers_name_frame_and_units_and_stay_deterministic():
    mesh = trimesh.creation.icosphere(subdivisions=1, radius=10.0)
    frame = ScanFrame("NIfTI world (RAS)", "RAS", "RAS")
    for fmt in ("ply", "obj", "stl", "glb"):
        tagged = mesh_file_bytes(mesh, fmt, frame=frame.name, space=frame.space)
        assert tagged == mesh_file_bytes(mesh.copy(), fmt, frame=frame.name, space=frame.space), fmt
        assert b"SPACE=RAS" in tagged[:400] and b"NIfTI world (RAS)" in tagged[:400], fmt
        loaded = trimesh.load(trimesh.util.wrap_as_stream(tagged), file_type=fmt, force="mesh")
        scale = 1e3 if fmt == "glb" else 1.0
        assert np.isclose(loaded.area * scale**2, mesh.area, rtol=1e-5), fmt
    assert b"units: m;" in mesh_file_bytes(mesh, "glb", frame=frame.name, space="RAS")[:600]
    assert mesh_file_bytes(mesh, "ply") != mesh_file_bytes(mesh, "ply", frame="x")
    with pytest.raises(ValueError, match="one line of ASCII"):
        mesh_file_bytes(mesh, "obj", frame="two\nlines")
