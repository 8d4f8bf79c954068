"""`facegen reconstruct` end to end, as a practitioner runs it: synthetic CT, skull mesh, the real headsq CT."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.synthetic.ct import render_ct
from facegen.io.volume import write_nifti
from facegen.use.reconstruct import CaseMetadata
from tests.conftest import SHARED

runner = CliRunner()
HEADSQ = SHARED / "data" / "headsq-ct" / "quarter.nhdr"


@pytest.fixture(scope="module")
def model_run(tiny_dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("model") / "pca-tiny"
    result = runner.invoke(app, ["train", "--model", "pca", "--data", str(tiny_dataset), "--out", str(run),
                                 "--set", "model.skull_components=8"])  # fmt: skip
    assert result.exit_code == 0, result.output
    evaluation = runner.invoke(app, ["evaluate", "--run", str(run), "--data", str(tiny_dataset), "--split", "all",
                                     "--out", str(run / "evaluation")])  # fmt: skip
    assert evaluation.exit_code == 0, evaluation.output
    return run


@pytest.fixture(scope="module")
def skull_mesh(one_head, tmp_path_factory) -> Path:
    """The synthetic skull turned and moved off the canonical pose, as a scanner's mesh would be."""
    path = tmp_path_factory.mktemp("mesh") / "skull.stl"
    skull = one_head.skull.copy()
    skull.apply_transform(trimesh.transformations.rotation_matrix(np.radians(25), [0.3, 1, 0.2]))
    skull.apply_translation([40.0, -15.0, 120.0])
    skull.export(path)
    return path


def _case(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, ["reconstruct", *args])
    return result.exit_code, result.output


def test_skull_mesh_case_with_unknown_bmi_gives_one_face_per_value(skull_mesh, model_run, tmp_path):
    out = tmp_path / "case"
    code, output = _case([str(skull_mesh), "--out", str(out), "--sex", "F", "--age", "40", "--model", str(model_run)])
    assert code == 0, output
    record = json.loads((out / "case.json").read_text())
    assert record["variants"] == ["F-age40-bmi20", "F-age40-bmi25", "F-age40-bmi32"]
    assert record["model"]["trained_on"].startswith("synthetic") and len(record["model"]["weights_sha256"]) == 64
    assert record["input"]["sha256"] and "approximation to aid identification" in record["statement"]
    assert record["accuracy"]["mean absolute error (all)"].endswith(")")
    manifest = json.loads((out / "manifest.json").read_text())
    for name in ["report.html", "report.pdf", "case.json", "viewer.html", *(f"F-age40-bmi25/{f}" for f in (
            "face.ply", "face.obj", "face.stl", "face.glb", "face_canonical.ply", "face_depth_mm.npy", "front.png",
            "profile.png", "three_quarter.png", "overlay.png"))]:  # fmt: skip
        assert name in manifest and (out / name).is_file(), name
    # one viewer for the case: the skull shared, every variant's face in its menu; none per variant
    viewer = json.loads(re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>',
                                  (out / "viewer.html").read_text(), re.S).group(1))  # fmt: skip
    assert [v["name"] for v in viewer["variants"]] == record["variants"]
    assert [m["name"] for m in viewer["shared"]] == ["Skull"] and not list(out.glob("*/viewer.html"))
    # higher BMI: the face lies further forward over the same skull
    depths = [np.load(out / v / "face_depth_mm.npy") for v in record["variants"]]
    masks = [np.load(out / v / "face_mask.npy") for v in record["variants"]]
    shared = masks[0] & masks[2]
    assert depths[2][shared].mean() > depths[0][shared].mean()
    # the face mesh lies over the skull in the input's own coordinates (its canonical copy does not)
    bone = cKDTree(trimesh.load(skull_mesh).vertices)
    over_skull = np.median(bone.query(trimesh.load(out / "F-age40-bmi25" / "face.ply").vertices)[0])
    canonical = np.median(bone.query(trimesh.load(out / "F-age40-bmi25" / "face_canonical.ply").vertices)[0])
    assert over_skull < 20.0 < canonical, (over_skull, canonical)
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 4


def test_same_input_model_and_seed_give_identical_meshes_and_depth_maps(skull_mesh, model_run, tmp_path):
    args = ["--sex", "M", "--age", "55", "--bmi", "normal", "--model", str(model_run), "--seed", "3"]
    hashes = []
    for name in ("a", "b"):
        code, output = _case([str(skull_mesh), "--out", str(tmp_path / name), *args])
        assert code == 0, output
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        hashes.append({k: v for k, v in manifest.items() if k.endswith((".ply", ".obj", ".stl", ".glb", ".npy"))})
    assert hashes[0] == hashes[1] and len(hashes[0]) >= 12


def test_a_synthetic_ct_case(one_head, model_run, tmp_path):
    ct = write_nifti(render_ct(one_head, spacing_mm=(1.5, 1.5, 1.5), seed=4, margin_mm=20.0), tmp_path / "ct.nii.gz")
    code, output = _case([str(ct), "--out", str(tmp_path / "case"), "--sex", "M", "--age", "45", "--bmi", "27",
                          "--model", str(model_run)])  # fmt: skip
    assert code == 0, output
    record = json.loads((tmp_path / "case" / "case.json").read_text())
    assert record["variants"] == ["M-age45-bmi27"]
    face = trimesh.load(tmp_path / "case" / "M-age45-bmi27" / "face.ply")
    assert len(face.faces) > 500


@pytest.mark.skipif(not HEADSQ.exists(), reason="../shared/data/headsq-ct is not beside the repository")
def test_the_real_headsq_ct_gives_a_face_for_each_sex_when_sex_is_unknown(model_run, tmp_path):
    code, output = _case([str(HEADSQ), "--out", str(tmp_path / "case"), "--age", "40", "--bmi", "24",
                          "--model", str(model_run)])  # fmt: skip
    assert code == 0, output
    record = json.loads((tmp_path / "case" / "case.json").read_text())
    assert record["variants"] == ["F-age40-bmi24", "M-age40-bmi24"]
    assert record["input"]["name"] == "quarter.nhdr"
    assert not record["pose"]["weak"]  # a real skull, coarse voxels: 38% of the model's bone matched, above 30%
    for variant in record["variants"]:
        assert len(trimesh.load(tmp_path / "case" / variant / "face.ply").faces) > 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--age", "300"], "age 300.0 years is outside the adult range 18-90 years"),
        (["--bmi", "-5"], "BMI -5.0 is outside the supported range 16-45"),
        (["--bmi", "chubby"], "must be a number or low, normal, high"),
        (["--sex", "X"], "sex 'X' must be F, M or unknown"),
    ],
)
def test_absurd_metadata_is_refused_and_no_case_folder_is_left(skull_mesh, model_run, tmp_path, args, message):
    out = tmp_path / "case"
    code, output = _case([str(skull_mesh), "--out", str(out), "--model", str(model_run), *args])
    assert code == 2 and message in output
    assert not out.exists() and not list(tmp_path.glob(".case*"))


def test_not_a_skull_and_an_empty_mesh_are_refused(model_run, tmp_path):
    empty = tmp_path / "empty.stl"
    empty.write_bytes(b"solid empty\nendsolid empty\n")
    ball = tmp_path / "ball.ply"
    trimesh.creation.icosphere(radius=8.0).export(ball)
    for path in (empty, ball):
        out = tmp_path / f"case-{path.stem}"
        code, output = _case([str(path), "--out", str(out), "--model", str(model_run), "--sex", "F", "--age", "30",
                              "--bmi", "22"])  # fmt: skip
        assert code == 2 and path.name in output, output
        assert not out.exists() and not list(tmp_path.glob(f".case-{path.stem}*"))


def test_metadata_variants():
    assert len(CaseMetadata.parse("unknown", None, None).variants()) == 2 * 3 * 3
    assert [s.bmi for s in CaseMetadata.parse("F", 30, "unknown").variants()] == [20.0, 25.0, 32.0]
    assert CaseMetadata.parse("m", 30, "high").variants()[0].bmi == 32.0


def test_the_default_model_is_built_on_first_use_and_labelled_synthetic(skull_mesh, tmp_path, monkeypatch):
    import facegen.use.default_model as default_model

    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(default_model, "DEFAULT_SUBJECTS", 20)
    out = tmp_path / "case"
    code, output = _case([str(skull_mesh), "--out", str(out), "--sex", "M", "--age", "35", "--bmi", "low"])
    assert code == 0, output
    assert "building the default model" in output
    assert (tmp_path / "cache" / "models" / default_model.DEFAULT_MODEL / "evaluation" / "report.json").exists()
    record = json.loads((out / "case.json").read_text())
    assert record["model"]["name"] == default_model.DEFAULT_MODEL and record["accuracy"]
    assert "trained on synthetic data" in (out / "viewer.html").read_text()
