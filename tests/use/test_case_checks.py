"""A case says what the model does not know: a spread at every face point by default, an unusual skull flagged,
missing bone and a field of view that cuts the skull named, in `case.json` and in the report."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.synthetic.ct import render_ct
from facegen.data.synthetic.population import sample_subject
from facegen.io.volume import PATIENT_TO_RAS, Volume, write_nifti

runner = CliRunner()
FRAME = ("porion_l", "porion_r", "orbitale_l")


@pytest.fixture(scope="module")
def held_out(generator):
    """A head none of the models saw (its own seed)."""
    rng = np.random.default_rng(4242)
    return generator.generate(sample_subject(rng, "X0"), rng)


def _mesh_case(skull: trimesh.Trimesh, landmarks: dict[str, np.ndarray], folder: Path, model: Path,
               *args: str) -> tuple[dict, str]:  # fmt: skip
    """Reconstruct a skull mesh (its own coordinates = canonical) posed from its landmarks."""
    folder.mkdir()
    skull.export(folder / "skull.ply")
    points = {k: v.tolist() for k, v in landmarks.items()}
    (folder / "landmarks.json").write_text(json.dumps({"space": "patient"} | points))
    out = folder / "case"
    result = runner.invoke(app, ["reconstruct", str(folder / "skull.ply"), "--out", str(out), "--model", str(model),
                                 "--landmarks", str(folder / "landmarks.json"), "--age", "40", "--bmi", "25", *args])
    assert result.exit_code == 0, result.output
    return json.loads((out / "case.json").read_text()), html.unescape((out / "report.html").read_text())


def _ply_vertex_data(path: Path) -> np.ndarray:
    """The vertex records of a binary PLY as a structured array (properties by name)."""
    loaded = trimesh.load(path, process=False)
    return loaded.metadata["_ply_raw"]["vertex"]["data"]


def test_a_held_out_skull_gets_a_spread_everywhere_and_no_flags(held_out, case_model_run, tmp_path):
    case, report = _mesh_case(held_out.skull, held_out.skull_landmarks, tmp_path / "x", case_model_run)
    assert case["skull_novelty"]["out_of_distribution"] is False
    assert 0 < case["skull_novelty"]["distance"] <= case["skull_novelty"]["largest_training_distance"]
    assert "mandible" not in case["missing_bone"]["parts"]
    assert case["uncertainty"]["source"] == "the model's own predictive SD" and case["samples"] == 1
    scale = case["uncertainty"]["scale"]["max"]
    assert len(case["variants"]) == 2  # sex unknown: F and M, on one colour scale
    for name in case["variants"]:
        folder = tmp_path / "x" / "case" / name
        spread = np.load(folder / "face_sd_mm_per_vertex.npy")
        face = trimesh.load(folder / "face_canonical.ply", process=False)
        assert spread.shape == (len(face.vertices),) and np.all(spread > 0) and np.isfinite(spread).all()
        data = _ply_vertex_data(folder / "face_uncertainty.ply")
        assert np.allclose(data["sd_mm"], spread)
        assert b"colours: spread of the face (SD, mm), 0 to" in (folder / "face_uncertainty.ply").read_bytes()[:600]
        # the brightest vertex is the most uncertain one (magma runs dark to bright) on the case's one scale
        brightness = data["red"].astype(int) + data["green"] + data["blue"]
        assert np.argmax(brightness) == np.argmax(np.minimum(spread, scale))
    assert "spread of the face (SD, mm)" in (tmp_path / "x" / "case" / "viewer.html").read_text()
    assert "What the model does not know" in report and re.search(r"farther than \d+% of the \d+ training", report)
    assert "skull surface mesh (bone only)" in report
    assert "Soft-tissue depth at the standard landmarks" in report and "nasion" in report


def test_a_skull_scaled_by_1_4_is_flagged_as_out_of_distribution(held_out, case_model_run, tmp_path):
    big = held_out.skull.copy()
    big.apply_scale(1.4)
    landmarks = {k: 1.4 * v for k, v in held_out.skull_landmarks.items()}
    case, report = _mesh_case(big, landmarks, tmp_path / "big", case_model_run, "--sex", "M")
    novelty = case["skull_novelty"]
    assert novelty["out_of_distribution"] is True and novelty["percentile_in_training"] == 100.0
    assert novelty["distance"] > 2 * novelty["largest_training_distance"]
    assert "out of the model's experience" in report


def _without_mandible(head) -> trimesh.Trimesh:
    """The skull less its mandible (its own piece) and the teeth rooted in it."""
    pieces = head.skull.split(only_watertight=False)
    pogonion = head.skull_landmarks["pogonion"]
    mandible = min(pieces, key=lambda p: np.linalg.norm(p.nearest.on_surface(pogonion[None])[0] - pogonion))
    cranium = max(pieces, key=lambda p: len(p.vertices))
    kept = [p for p in pieces if p is not mandible and (p is cranium or _closer_to(p, cranium, mandible))]
    return trimesh.util.concatenate(kept)


def _closer_to(piece: trimesh.Trimesh, first: trimesh.Trimesh, second: trimesh.Trimesh) -> bool:
    centre = piece.vertices.mean(axis=0)[None]
    return trimesh.proximity.closest_point(first, centre)[1][0] < trimesh.proximity.closest_point(second, centre)[1][0]


def test_a_skull_without_mandible_names_it_and_marks_the_face_over_it(held_out, case_model_run, tmp_path):
    case, report = _mesh_case(_without_mandible(held_out), held_out.skull_landmarks, tmp_path / "m", case_model_run,
                              "--sex", "F")  # fmt: skip
    assert "mandible" in case["missing_bone"]["parts"]
    assert case["missing_bone"]["share_missing_by_region"]["chin"] > 0.8
    assert "missing from the skull: mandible" in report
    folder = tmp_path / "m" / "case" / case["variants"][0]
    marks = np.load(folder / "face_no_bone_beneath.npy")
    face = trimesh.load(folder / "face_canonical.ply", process=False)
    x, y = face.vertices[:, 0], face.vertices[:, 1]
    chin = (np.abs(x) < 15) & (np.abs(y - held_out.skull_landmarks["pogonion"][1]) < 8)  # over the lost bony chin
    assert marks[chin].mean() > 0.7 and marks[y > 20].mean() < 0.05
    assert np.array_equal(_ply_vertex_data(folder / "face_uncertainty.ply")["no_bone"].astype(bool), marks)


def test_a_ct_whose_field_of_view_cuts_the_skull_says_where(held_out, case_model_run, tmp_path):
    ct = render_ct(held_out, spacing_mm=(2.0, 2.0, 2.0), seed=3, margin_mm=15.0)
    superior = int(np.argmax(np.abs(ct.direction[1])))  # the array axis nearest the patient's vertical
    top = held_out.skull.bounds[1, 1] - 35.0  # the vault above this height is outside the scan
    heights = ct.index_to_world(np.stack(np.meshgrid(*[np.arange(n) for n in ct.shape], indexing="ij"), -1))[..., 1]
    keep = np.nonzero((heights <= top).all(axis=tuple(a for a in range(3) if a != superior)))[0]
    index = [slice(None)] * 3
    index[superior] = slice(keep.min(), keep.max() + 1)
    origin = ct.index_to_world(np.array([[0, 0, 0]]) + np.eye(3, dtype=int)[superior] * keep.min())[0]
    cut = Volume(ct.array[tuple(index)], ct.spacing_mm, origin, ct.direction)
    scan = write_nifti(cut, tmp_path / "cut.nii.gz")
    rows = [f"{k},{','.join(f'{v:.4f}' for v in PATIENT_TO_RAS @ held_out.skull_landmarks[k])}" for k in FRAME]
    (tmp_path / "landmarks.csv").write_text("\n".join(["label,r,a,s", *rows]) + "\n")
    result = runner.invoke(app, ["reconstruct", str(scan), "--out", str(tmp_path / "case"), "--model",
                                 str(case_model_run), "--landmarks", str(tmp_path / "landmarks.csv"), "--sex", "M",
                                 "--age", "50", "--bmi", "25"])  # fmt: skip
    assert result.exit_code == 0, result.output
    case = json.loads((tmp_path / "case" / "case.json").read_text())
    assert case["missing_bone"]["field_of_view_cut_at"] == ["superior (above)"]
    report = html.unescape((tmp_path / "case" / "report.html").read_text())
    assert "cut by the scan's field of view (superior (above))" in report


def test_the_whole_skull_in_view_is_not_called_cut(held_out, tmp_path):
    from facegen.data.scans.ingest import bone_cut_by_view

    ct = render_ct(held_out, spacing_mm=(2.0, 2.0, 2.0), seed=3, margin_mm=15.0)
    assert bone_cut_by_view(held_out.skull, ct) == []
