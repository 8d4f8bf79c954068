"""Landmark files as an examiner writes them (3D Slicer markups, CSV tables) come back in patient coordinates,
whatever space and spelling they use; a file that cannot be trusted is refused with what to fix."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facegen.data.alignment.landmark_files import (
    LandmarkFileError,
    landmark_name,
    mesh_to_patient,
    read_landmark_file,
)
from facegen.data.pose import RigidTransform
from facegen.data.scans.ingest import IngestOptions, ingest_input
from facegen.data.scans.scan import LPS_TO_PATIENT
from facegen.io.volume import PATIENT_TO_RAS

PATIENT = {  # facegen's patient axes (x left, y superior, z anterior), mm; off-centre and unequal on purpose
    "porion_l": np.array([71.0, 3.0, -12.0]),
    "porion_r": np.array([-67.0, 1.0, -10.0]),
    "orbitale_l": np.array([33.0, 2.5, 70.0]),
    "nasion": np.array([1.0, 25.0, 88.0]),
}
SLICER_LABELS = {"porion_l": "Porion L", "porion_r": "Po-R", "orbitale_l": "left orbitale", "nasion": "N"}
TO_SPACE = {"LPS": LPS_TO_PATIENT.T, "RAS": PATIENT_TO_RAS}
"""Patient coordinates to each space's (DICOM LPS, 3D Slicer's RAS), as the readers of CTs define them."""
OLD_FCSV_HEADER = "# Markups fiducial file version = 4.10\n# CoordinateSystem = 0\n"
"""Slicer before 4.11 named the space by number (0: RAS)."""


def _markups(space: str | None, extra_points: list[dict] | None = None, units: object = "mm") -> dict:
    """A 3D Slicer markups file (schema 1.0.3) of PATIENT in `space` (None: no coordinateSystem key)."""
    node = {"type": "Fiducial", "coordinateUnits": units, "controlPoints": [
        {"id": str(i), "label": SLICER_LABELS[name], "position": (TO_SPACE[space or "LPS"] @ p).tolist(),
         "positionStatus": "defined"}
        for i, (name, p) in enumerate(PATIENT.items())
    ] + (extra_points or [])}  # fmt: skip
    if space is not None:
        node["coordinateSystem"] = space
    return {"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
            "Schema/markups-schema-v1.0.3.json#", "markups": [node]}  # fmt: skip


def _assert_patient(points: dict[str, np.ndarray]) -> None:
    assert set(points) == set(PATIENT)
    for name, expected in PATIENT.items():
        np.testing.assert_allclose(points[name], expected, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("space", ["LPS", "RAS", None])
def test_slicer_markups_in_either_space_give_the_same_patient_points(tmp_path, space):
    path = tmp_path / "case.mrk.json"
    path.write_text(json.dumps(_markups(space)))  # no coordinateSystem: LPS, as 3D Slicer reads it
    _assert_patient(read_landmark_file(path))


def test_points_not_placed_in_slicer_are_skipped_and_coded_units_read(tmp_path):
    unplaced = {"id": "9", "label": "gonion_l", "position": [0.0, 0.0, 0.0], "positionStatus": "undefined"}
    path = tmp_path / "case.mrk.json"
    path.write_text(json.dumps(_markups("RAS", [unplaced], units=["mm", "UCUM", "millimeter"])))
    _assert_patient(read_landmark_file(path))


def _csv_text(space: str, header: str, comments: str = "") -> str:
    rows = [f"{SLICER_LABELS[n]},{','.join(f'{v:.6f}' for v in TO_SPACE[space] @ p)}" for n, p in PATIENT.items()]
    return comments + "\n".join([header, *rows]) + "\n"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("table.csv", _csv_text("RAS", "label,r,a,s")),
        ("table.csv", _csv_text("LPS", "Name, L, P, S")),
        ("table.csv", _csv_text("LPS", "label,x,y,z", "# CoordinateSystem = LPS\n")),
        ("old.fcsv", _csv_text("RAS", "label,x,y,z", OLD_FCSV_HEADER)),
    ],
)
def test_csv_tables_and_fcsv_files_give_the_patient_points(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    _assert_patient(read_landmark_file(path))


def test_a_slicer_fcsv_with_its_column_line_is_read(tmp_path):
    lines = ["# Markups fiducial file version = 4.11", "# CoordinateSystem = LPS",
             "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID"]  # fmt: skip
    for i, (name, p) in enumerate(PATIENT.items()):
        lps = ",".join(f"{v:.6f}" for v in TO_SPACE["LPS"] @ p)
        lines.append(f"vtkMRMLMarkupsFiducialNode_{i},{lps},0,0,0,1,1,1,0,{SLICER_LABELS[name]},,")
    path = tmp_path / "case.fcsv"
    path.write_text("\n".join(lines) + "\n")
    _assert_patient(read_landmark_file(path))


def test_facegen_json_keeps_working(tmp_path):
    path = tmp_path / "landmarks.json"
    path.write_text(json.dumps({"space": "RAS"} | {k: (TO_SPACE["RAS"] @ p).tolist() for k, p in PATIENT.items()}))
    _assert_patient(read_landmark_file(path))


@pytest.mark.parametrize(
    ("label", "name"),
    [("Porion L", "porion_l"), ("left porion", "porion_l"), ("Po-R", "porion_r"), ("Or L", "orbitale_l"),
     ("orbitale_r", "orbitale_r"), ("Gn", "gnathion"), ("Zygion Right", "zygion_r"), ("mid ramus l", "mid_ramus_l")],
)  # fmt: skip
def test_craniometric_labels_are_read_in_their_usual_spellings(label, name):
    assert landmark_name(label) == name


def test_landmarks_on_a_skull_mesh_are_its_own_coordinates_in_mm():
    # Slicer reads an untagged mesh as LPS: LPS points are the file's coordinates, RAS ones flip x and y
    point = np.array([10.0, -20.0, 30.0])
    np.testing.assert_allclose(mesh_to_patient("LPS")("LPS") @ point, point)
    np.testing.assert_allclose(mesh_to_patient("LPS")("RAS") @ point, [-10.0, 20.0, 30.0])
    np.testing.assert_allclose(mesh_to_patient("RAS", scale=10.0)("RAS") @ point, 10.0 * point)  # a mesh in cm


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", _csv_text("RAS", "label,x,y,z"), "add a line '# CoordinateSystem = LPS'"),
        ("a.csv", "label,r,a,s\nPorion L,1,2,3\nPorion R,4,5,6\n", "orbitale_l not found among the labels"),
        ("a.csv", "label,r,a,s\nporion_l,1,2,3\nPo L,4,5,6\n", "porion_l is given twice"),
        ("a.csv", "label,r,a,s\nporion_l,1,2,x\n", "must be three numbers"),
        ("a.csv", "id,r,a,s\n1,1,2,3\n", "no label column"),
        ("a.mrk.json", json.dumps(_markups("RAS", units="um")), "save the markups in mm"),
        ("a.mrk.json", json.dumps({"markups": []}), "holds no markups"),
        ("a.mrk.json", "{not json", "not a JSON landmark file"),
    ],
)  # fmt: skip
def test_files_that_cannot_be_trusted_are_refused_with_the_fix(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LandmarkFileError, match=message):
        read_landmark_file(path)


def test_landmarks_placed_on_a_skull_mesh_in_slicer_set_its_pose(one_head, tmp_path):
    # a skull scanned in cm, lying off the canonical pose; Slicer reads the untagged file as LPS and saves in RAS
    lying = RigidTransform(Rotation.from_rotvec([0.3, -0.5, 0.2]).as_matrix(), np.array([40.0, -15.0, 120.0]))
    skull = one_head.skull.copy()
    skull.vertices = lying.apply(np.asarray(skull.vertices)) / 10.0
    skull.export(tmp_path / "skull.stl")
    file_points = {k: lying.apply(one_head.skull_landmarks[k]) / 10.0 for k in ("porion_l", "porion_r", "orbitale_l")}
    markups = {"markups": [{"type": "Fiducial", "coordinateSystem": "RAS", "controlPoints": [
        {"label": k, "position": (np.diag([-1.0, -1.0, 1.0]) @ p).tolist()} for k, p in file_points.items()]}]}
    (tmp_path / "skull.mrk.json").write_text(json.dumps(markups))
    head = ingest_input(tmp_path / "skull.stl", IngestOptions(mesh_units="cm"), tmp_path / "skull.mrk.json")
    for name in file_points:
        canonical = head.alignment.to_canonical.apply(head.alignment.landmarks[name])
        np.testing.assert_allclose(canonical, one_head.skull_landmarks[name], atol=1e-3, err_msg=name)
