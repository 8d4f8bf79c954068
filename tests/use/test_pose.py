"""The examiner can correct the pose of a case: landmarks placed in 3D Slicer (or listed in a CSV) set it, a weak
automatic fit is refused until accepted, and the report shows the pose with its figures and picture."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.alignment.canonical import MIN_INLIER_SHARE, WEAK_FIT_SHARE
from facegen.data.pose import RigidTransform
from facegen.data.synthetic.ct import render_ct
from facegen.io.volume import PATIENT_TO_RAS, write_nifti
from facegen.use.reconstruct import reconstruct

runner = CliRunner()
IN_SCANNER = RigidTransform(Rotation.from_rotvec(np.radians(9.0) * np.array([0.6, 0.7, 0.4])).as_matrix(),
                            np.array([14.0, -22.0, 31.0]))  # fmt: skip
"""Where the head lies in the scanner: tilted and shifted off the canonical pose."""
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
LOST_BONE_HU = 1300.0
"""A bone threshold above most of the synthetic CT's bone (cortex 1600 HU, blurred): the fit finds little of it."""
CASE = ["--sex", "F", "--age", "40", "--bmi", "25"]


def _in_scanner(head, transform: RigidTransform):
    """The synthetic head after a rigid move (skull, skin and landmarks together)."""

    def mesh(m: trimesh.Trimesh) -> trimesh.Trimesh:
        return trimesh.Trimesh(transform.apply(np.asarray(m.vertices)), m.faces, process=False)

    landmarks = {k: transform.apply(v) for k, v in head.skull_landmarks.items()}
    return dataclasses.replace(head, skull=mesh(head.skull), face=mesh(head.face), skull_landmarks=landmarks)


@pytest.fixture(scope="module")
def tilted_ct(one_head, tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """A NIfTI CT (RAS world) of the head tilted and shifted in the scanner, and the true landmarks in RAS."""
    head = _in_scanner(one_head, IN_SCANNER)
    path = write_nifti(render_ct(head, spacing_mm=(1.5, 1.5, 1.5), seed=4, margin_mm=20.0),
                       tmp_path_factory.mktemp("ct") / "tilted.nii.gz")  # fmt: skip
    return path, {k: PATIENT_TO_RAS @ v for k, v in head.skull_landmarks.items()}


@pytest.fixture(scope="module")
def automatic_case(tilted_ct, case_model_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("auto") / "case"
    result = runner.invoke(app, ["reconstruct", str(tilted_ct[0]), "--out", str(out), "--model", str(case_model_run),
                                 *CASE])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _slicer_markups(points_ras: dict[str, np.ndarray], space: str) -> str:
    """What 3D Slicer saves for points placed on the CT: a markups JSON in `space`, labels as an examiner types."""
    to_space = np.eye(3) if space == "RAS" else RAS_TO_LPS
    labels = {"porion_l": "Porion L", "porion_r": "Porion R", "orbitale_l": "Orbitale L", "nasion": "Nasion"}
    points = [{"id": str(i + 1), "label": label, "position": (to_space @ points_ras[name]).tolist(),
               "positionStatus": "defined"} for i, (name, label) in enumerate(labels.items())]  # fmt: skip
    return json.dumps({"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
                       "Resources/Schema/markups-schema-v1.0.3.json#",
                       "markups": [{"type": "Fiducial", "coordinateSystem": space, "coordinateUnits": "mm",
                                    "controlPoints": points}]})  # fmt: skip


def _csv(points_ras: dict[str, np.ndarray]) -> str:
    rows = [f"{name},{','.join(f'{v:.4f}' for v in points_ras[name])}" for name in ("porion_l", "porion_r",
                                                                                   "orbitale_l", "nasion")]  # fmt: skip
    return "\n".join(["label,r,a,s", *rows]) + "\n"


def _record(case: Path) -> dict:
    return json.loads((case / "case.json").read_text())


def _pose_difference(a: dict, b: dict) -> tuple[float, float]:
    """Rotation (degrees) and shift (mm) between two cases' scan-to-canonical transforms."""
    ma, mb = (np.asarray(r["alignment"]["scan_to_canonical"]) for r in (a, b))
    error = ma @ np.linalg.inv(mb)
    return float(np.degrees(np.linalg.norm(Rotation.from_matrix(error[:3, :3]).as_rotvec()))), float(
        np.linalg.norm(error[:3, 3])
    )


def test_landmarks_from_slicer_markups_and_from_csv_set_the_pose(tilted_ct, automatic_case, case_model_run, tmp_path):
    ct, truth_ras = tilted_ct
    files = {"lps.mrk.json": _slicer_markups(truth_ras, "LPS"), "points.csv": _csv(truth_ras)}  # RAS: reader tests
    records = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        out = tmp_path / f"case-{name}"
        result = runner.invoke(app, ["reconstruct", str(ct), "--out", str(out), "--model", str(case_model_run), *CASE,
                                     "--landmarks", str(tmp_path / name)])  # fmt: skip
        assert result.exit_code == 0, result.output
        records[name] = _record(out)
        pose = records[name]["pose"]
        assert pose["method"] == f"landmark file {name}" and pose["bone_matched_share"] is None and not pose["weak"]
    # the same points from Slicer (LPS) and from a CSV (RAS) give one pose: the canonical pose the truth defines
    angle, shift = _pose_difference(records["points.csv"], records["lps.mrk.json"])
    assert angle < 1e-3 and shift < 1e-2, (angle, shift)
    true_canonical = {k: RigidTransform(IN_SCANNER.rotation.T, -IN_SCANNER.rotation.T @ IN_SCANNER.translation)
                      .apply(PATIENT_TO_RAS.T @ v) for k, v in truth_ras.items()}  # fmt: skip
    for name in ("porion_l", "porion_r", "orbitale_l", "nasion"):
        got = np.asarray(records["points.csv"]["pose"]["landmarks_canonical_mm"][name])
        assert np.linalg.norm(got - true_canonical[name]) < 1.0, (name, got, true_canonical[name])
    # ... and the automatic fit on the same CT agrees with it
    angle, shift = _pose_difference(_record(automatic_case), records["lps.mrk.json"])
    assert angle < 2.0 and shift < 2.0, (angle, shift)


def test_the_report_shows_the_pose_with_its_figures_landmarks_and_picture(automatic_case):
    record = _record(automatic_case)
    pose = record["pose"]
    assert pose["method"] == "automatic fit of the skull model" and pose["weak_below_share"] == WEAK_FIT_SHARE
    assert WEAK_FIT_SHARE < pose["bone_matched_share"] <= 1.0 and 0.0 < pose["residual_mm"] < 2.5
    assert pose["bone_matched_share"] == record["alignment"]["model_bone_matched_share"]
    assert not pose["weak"] and pose["thresholds_hu"] == {"bone": 300.0, "skin": -300.0}
    assert set(pose["landmarks_canonical_mm"]) >= {"porion_l", "porion_r", "orbitale_l", "nasion", "pogonion"}
    page = (automatic_case / "report.html").read_text()
    section = page[page.index("<h2>Pose</h2>"):]
    for text in ("automatic fit of the skull model", f"{pose['bone_matched_share']:.0%} (weak below 30%)",
                 f"{pose['residual_mm']:.2f} mm", "trusted", "Landmarks, canonical frame", "<td>porion_l</td>",
                 'alt="pose: canonical alignment, front and profile" src="data:image/png;base64,'):  # fmt: skip
        assert text in section, text
    png = (automatic_case / "alignment.png").read_bytes()
    assert png.startswith(b"\x89PNG") and "alignment.png" in json.loads((automatic_case / "manifest.json").read_text())
    pdf = (automatic_case / "report.pdf").read_bytes()
    assert pdf.count(b"/Type /Page") >= 3  # text, pose, and a page per face


def test_a_weak_automatic_pose_is_refused_until_accepted(one_head, case_model_run, tmp_path):
    ct = write_nifti(render_ct(one_head, spacing_mm=(1.5, 1.5, 1.5), seed=4, margin_mm=20.0), tmp_path / "ct.nii.gz")
    refused = tmp_path / "refused"
    result = runner.invoke(app, ["reconstruct", str(ct), "--out", str(refused), "--model", str(case_model_run), *CASE,
                                 "--bone-hu", f"{LOST_BONE_HU:g}"])  # fmt: skip
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    for text in ("the automatic pose is weak: only", "of the skull model found matching bone (residual",
                 "a pose is trusted from 30%", "--landmarks FILE", "--bone-hu (1300 HU)",
                 "--accept-weak-pose"):  # fmt: skip
        assert text in message, (text, message)
    assert not refused.exists()
    # the Python API: the examiner goes on with it, and the case says so wherever the pose shows
    from facegen.data.scans.ingest import IngestOptions

    accepted = tmp_path / "accepted"
    reconstruct(ct, accepted, sex="F", age=40, bmi=25, model=case_model_run, accept_weak_pose=True,
                options=IngestOptions(bone_hu=LOST_BONE_HU))  # fmt: skip
    pose = _record(accepted)["pose"]
    assert MIN_INLIER_SHARE <= pose["bone_matched_share"] < WEAK_FIT_SHARE and pose["weak"] and pose["weak_accepted"]
    assert f"only {pose['bone_matched_share']:.0%} of the skull model" in message
    page = (accepted / "report.html").read_text()
    assert "Weak pose" in page and "WEAK: accepted by the examiner (--accept-weak-pose)" in page
