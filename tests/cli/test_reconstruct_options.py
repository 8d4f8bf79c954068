"""`facegen reconstruct` takes the scan choices `facegen ingest` takes: which DICOM series, which bone and skin
thresholds; each changes what the case is made from, and the case records it."""

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.synthetic.ct import render_ct
from facegen.io.volume import PATIENT_TO_RAS, write_nifti

runner = CliRunner()
CASE = ["--sex", "M", "--age", "50", "--bmi", "25"]


@pytest.fixture(scope="module")
def head_ct(one_head, tmp_path_factory) -> tuple[Path, Path]:
    """A synthetic CT (NIfTI) and the examiner's landmarks for it (CSV, RAS): the pose is set, not fitted."""
    folder = tmp_path_factory.mktemp("ct")
    ct = write_nifti(render_ct(one_head, spacing_mm=(1.5, 1.5, 1.5), seed=4, margin_mm=20.0), folder / "ct.nii.gz")
    rows = [f"{k},{','.join(f'{v:.4f}' for v in PATIENT_TO_RAS @ one_head.skull_landmarks[k])}"
            for k in ("porion_l", "porion_r", "orbitale_l")]  # fmt: skip
    (folder / "landmarks.csv").write_text("\n".join(["label,r,a,s", *rows]) + "\n")
    return ct, folder / "landmarks.csv"


def _case(scan: Path, out: Path, model: Path, landmarks: Path, *options: str) -> dict:
    result = runner.invoke(app, ["reconstruct", str(scan), "--out", str(out), "--model", str(model), *CASE,
                                 "--landmarks", str(landmarks), *options])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((out / "case.json").read_text())


def test_bone_and_skin_thresholds_change_what_is_segmented(head_ct, case_model_run, tmp_path):
    ct, landmarks = head_ct
    cases = {name: tmp_path / name for name in ("default", "bone", "skin")}
    records = {
        "default": _case(ct, cases["default"], case_model_run, landmarks),
        "bone": _case(ct, cases["bone"], case_model_run, landmarks, "--bone-hu", "1200"),
        "skin": _case(ct, cases["skin"], case_model_run, landmarks, "--skin-hu", "-900"),
    }
    assert records["bone"]["pose"]["thresholds_hu"] == {"bone": 1200.0, "skin": -300.0}
    assert records["skin"]["pose"]["thresholds_hu"] == {"bone": 300.0, "skin": -900.0}
    skull = {name: trimesh.load(folder / "skull_canonical.ply") for name, folder in cases.items()}
    depth = {name: np.load(folder / "skull_depth_mm.npy") for name, folder in cases.items()}
    # a bone threshold above the spongy bone (800 HU) keeps only the dense cortex: less bone, a smaller skull surface
    assert skull["bone"].area < 0.9 * skull["default"].area
    assert not np.array_equal(depth["bone"], depth["default"])
    # the skin threshold moves the skin (drawn in the pose figure), not the bone
    assert skull["skin"].area == pytest.approx(skull["default"].area)
    assert np.array_equal(depth["skin"], depth["default"])
    figure = {name: (folder / "alignment.png").read_bytes() for name, folder in cases.items()}
    assert figure["skin"] != figure["default"]


def test_series_picks_one_series_of_a_study(one_head, case_model_run, head_ct, tmp_path):
    # one study, two CT series of the same head: 1.5 mm slices (series 2) and 3 mm slices (series 5)
    study = tmp_path / "study"
    for number, spacing in ((2, 1.5), (5, 3.0)):
        volume = render_ct(one_head, spacing_mm=(1.5, 1.5, spacing), seed=number, margin_mm=20.0)
        write_dicom_series(volume, study / f"s{number}", series_number=number, seed=1)
    landmarks = head_ct[1]  # the series share the patient frame: the same points serve both
    chosen = _case(study, tmp_path / "chosen", case_model_run, landmarks, "--series", "5")
    assert chosen["input"]["reader"].startswith("DICOM series 5 (CT, ")  # not series 2, which has more slices
    result = runner.invoke(app, ["reconstruct", str(study), "--out", str(tmp_path / "none"), "--model",
                                 str(case_model_run), "--landmarks", str(landmarks), "--series", "9"])  # fmt: skip
    assert result.exit_code == 2 and "has no series 9" in result.output and "--series" in result.output


def test_a_missing_landmark_file_is_named(head_ct, case_model_run, tmp_path):
    result = runner.invoke(app, ["reconstruct", str(head_ct[0]), "--out", str(tmp_path / "case"), "--model",
                                 str(case_model_run), "--landmarks", str(tmp_path / "nowhere.mrk.json")])  # fmt: skip
    assert result.exit_code == 2 and "nowhere.mrk.json: no such landmark file" in " ".join(result.output.split())
    assert not (tmp_path / "case").exists()
