"""The ensemble family: trained from member runs by `facegen train`, self-contained, mean face and mixture SD."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.models.base import DepthData
from facegen.models.registry import load_trained


def _train(model: str, data, out, *sets: str) -> None:
    args = ["train", "--model", model, "--data", str(data), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, *(a for s in sets for a in ("--set", s))])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def members(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    _train("pca", tiny_dataset, root / "pca", "model.skull_components=8", "model.face_components=8")
    _train("template", tiny_dataset, root / "template")
    return root


def test_the_ensemble_is_the_mean_of_its_members_with_their_spread_and_disagreement(tiny_dataset, members, tmp_path):
    runs = [str(members / "pca"), str(members / "template")]
    _train("ensemble", tiny_dataset, tmp_path / "ens", f"model.members={json.dumps(runs)}")
    shutil.move(members / "pca", tmp_path / "pca-moved")  # the ensemble holds its own copy of each member
    pca, template = load_trained(tmp_path / "pca-moved"), load_trained(members / "template")
    ensemble = load_trained(tmp_path / "ens")
    shutil.move(tmp_path / "pca-moved", members / "pca")
    assert ensemble.family == "ensemble" and ensemble.view == pca.view
    # the weights that give the val subjects' faces the least mean error, from the grid the trainer searched
    record = json.loads((tmp_path / "ens" / "run.json").read_text())["figures"]
    w = np.array([record["weight_0"], record["weight_1"]])
    assert np.isclose(w.sum(), 1) and np.allclose(w / 0.05, np.round(w / 0.05))
    assert record["val_mae_mm_weighted"] <= record["val_mae_mm_equal"]
    assert np.allclose(ensemble.weights, w) and ensemble.weighed_on == "val"
    test = DepthData.load(tiny_dataset, "test")
    args = (test.skull_depth[0], test.skull_mask[0], test.subjects[0])
    a, b, both = pca.reconstruct(*args), template.reconstruct(*args), ensemble.reconstruct(*args)
    assert np.array_equal(both.mask, a.mask & b.mask)
    assert np.allclose(both.mean_mm, w[0] * a.mean_mm + w[1] * b.mean_mm, atol=1e-4)
    # a mixture's variance: the stated one (pca's; the template states none) plus the weighted disagreement
    assert a.predictive_sd_mm is not None and b.predictive_sd_mm is None
    disagreement = w[0] * (a.mean_mm - both.mean_mm) ** 2 + w[1] * (b.mean_mm - both.mean_mm) ** 2
    expected = np.sqrt(disagreement + a.predictive_sd_mm**2)
    assert np.allclose(both.predictive_sd_mm, expected, atol=1e-3)
    assert both.predictive_sd_mm[both.mask].min() > 0
    many = ensemble.reconstruct_many(test)
    assert np.allclose(many[0].mean_mm, both.mean_mm, atol=1e-4)
    samples = ensemble.reconstruct(*args, seed=4, n_samples=6)
    assert samples.face_depth_mm.shape[0] == 6
    assert np.array_equal(samples.face_depth_mm, ensemble.reconstruct(*args, seed=4, n_samples=6).face_depth_mm)


def test_an_ensemble_refuses_one_member_and_members_of_another_view(tiny_dataset, small_dataset, members, tmp_path):
    train = ["train", "--model", "ensemble", "--set"]
    one = json.dumps([str(members / "pca")])
    result = CliRunner().invoke(app, [*train, f"model.members={one}", "--data", str(tiny_dataset), "--out",
                                      str(tmp_path / "one")])  # fmt: skip
    assert result.exit_code != 0 and "at least two member runs" in result.output
    runs = json.dumps([str(members / "pca"), str(members / "template")])
    result = CliRunner().invoke(app, [*train, f"model.members={runs}", "--data", str(small_dataset), "--out",
                                      str(tmp_path / "other")])  # fmt: skip
    assert result.exit_code != 0 and "another view" in result.output
    assert not (tmp_path / "other" / "model" / "model.json").exists()


def test_given_weights_are_kept_and_bad_ones_refused(tiny_dataset, members, tmp_path):
    runs = json.dumps([str(members / "pca"), str(members / "template")])
    _train("ensemble", tiny_dataset, tmp_path / "ens", f"model.members={runs}", "model.weights=[3, 1]")
    ensemble = load_trained(tmp_path / "ens")
    assert np.allclose(ensemble.weights, [0.75, 0.25]) and ensemble.weighed_on == "given"
    test = DepthData.load(tiny_dataset, "test")
    args = (test.skull_depth[0], test.skull_mask[0], test.subjects[0])
    pca, template = load_trained(members / "pca"), load_trained(members / "template")
    expected = 0.75 * pca.reconstruct(*args).mean_mm + 0.25 * template.reconstruct(*args).mean_mm
    assert np.allclose(ensemble.reconstruct(*args).mean_mm, expected, atol=1e-4)
    for bad in ("[1]", "[-1, 2]", "[0, 0]"):
        result = CliRunner().invoke(app, ["train", "--model", "ensemble", "--data", str(tiny_dataset), "--out",
                                          str(tmp_path / "bad"), "--set", f"model.members={runs}", "--set",
                                          f"model.weights={bad}"])  # fmt: skip
        assert result.exit_code != 0 and "model.weights must be one non-negative weight per member" in result.output
