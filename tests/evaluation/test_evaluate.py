"""`facegen evaluate`: trained runs scored on a split beside the dataset's floor, checked against the metrics."""

import json

import numpy as np
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.evaluation.metrics import depth_errors
from facegen.models.base import DepthData
from facegen.models.registry import load_trained

runner = CliRunner()


def test_evaluate_prints_and_writes_every_model_beside_the_floor(tiny_dataset, tmp_path):
    runs = []
    for name, settings in {"pca-5": ["model.skull_components=5"], "pca-10": ["model.skull_components=10"]}.items():
        run = tmp_path / name
        sets = [arg for s in settings for arg in ("--set", s)]
        result = runner.invoke(app, ["train", "--model", "pca", "--data", str(tiny_dataset), "--out", str(run), *sets])
        assert result.exit_code == 0, result.output
        runs += ["--run", str(run)]
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", *runs, "--data", str(tiny_dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for text in ("pca-5", "pca-10", "floor", "MAE mm", "SSIM", "PSNR dB", "<=2.5 mm"):
        assert text in result.output

    record = json.loads((out / "report.json").read_text())
    test = DepthData.load(tiny_dataset, "test")
    assert record["n_subjects"] == len(test) and [m["name"] for m in record["models"]] == ["pca-5", "pca-10"]
    model = load_trained(tmp_path / "pca-10")
    recs = model.reconstruct_many(test)
    mask = test.face_region & np.stack([r.mask for r in recs])
    expected = depth_errors(np.stack([r.mean_mm for r in recs]), test.face_depth, mask)["mae_mm"].mean()
    assert np.isclose(record["models"][1]["metrics"]["mae_mm"]["mean"], expected)
    floor = depth_errors(test.noise_free_face_depth, test.face_depth, test.face_region)["mae_mm"].mean()
    assert np.isclose(record["floor"]["metrics"]["mae_mm"]["mean"], floor)
    assert record["floor"]["metrics"]["mae_mm"]["mean"] < record["models"][1]["metrics"]["mae_mm"]["mean"]


def test_evaluate_names_a_folder_without_a_model(tiny_dataset, tmp_path):
    result = runner.invoke(app, ["evaluate", "--run", str(tmp_path), "--data", str(tiny_dataset)])
    assert result.exit_code == 2 and "holds no trained model" in result.output
