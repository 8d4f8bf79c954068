"""The 3D conditional GAN on skull and face grids, trained for a few steps as a user would run it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.representations.voxel_grid import GridSpec
from facegen.evaluation.report import evaluate_models
from facegen.models.base import DepthData
from facegen.models.gan.gan3d import ConditionalGAN3D, OccupancyGenerator, pool_grid, pooled_spec
from facegen.models.networks.unet import ConditionalUNet
from facegen.models.registry import load_trained
from facegen.training.config import load_config
from facegen.training.loop import seeded_model, subset, train_in_memory
from tests.conftest import pose_cases_from_landmarks

runner = CliRunner()
SMALL = ["model.channels=[8,16,32]", "model.discriminator_channels=8", "model.discriminator_layers=2"]
"""A small network for 16^3 grids (each side >= 3 * 2^layers for the PatchGAN)."""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: 3D convolutions on tiny grids gain nothing from more, and lose much beside other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory) -> Path:
    """`facegen train --model gan3d` for a few steps on the tiny dataset (16^3 grids, 64^2 maps)."""
    out = tmp_path_factory.mktemp("gan3d") / "run"
    sets = [a for s in ["steps=4", "batch_size=2", "lr=1e-3", *SMALL] for a in ("--set", s)]
    result = runner.invoke(app, ["train", "--model", "gan3d", "--data", str(tiny_dataset), "--out", str(out), *sets])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def test_data(tiny_dataset) -> DepthData:
    return DepthData.load(tiny_dataset, "test")


def test_the_command_line_trains_a_model_that_is_scored_on_validation(run):
    record = json.loads((run / "run.json").read_text())
    assert record["model"] == "gan3d" and record["config"]["steps"] == 4
    assert json.loads((run / "model" / "model.json").read_text())["grid"]["shape"] == [16, 16, 16]
    figures = record["figures"]
    assert np.isfinite(figures["bce_occupancy"]) and 0.0 <= figures["iou_face"] <= 1.0
    assert 0.0 < figures["val_mae_mm"] < 20.0


def test_facegen_evaluate_scores_the_3d_model_on_its_depth_maps(run, tiny_dataset):
    result = runner.invoke(app, ["evaluate", "--run", str(run), "--data", str(tiny_dataset), "--split", "all"])
    assert result.exit_code == 0, result.output
    record = evaluate_models([run], tiny_dataset, None).record
    (model,) = record["models"]
    assert model["family"] == "gan3d" and model["coverage"] > 0.2


def test_the_report_scores_its_surfaces_in_3d_beside_the_noise_free_floor(run, tiny_dataset, tmp_path):
    out = tmp_path / "report"
    command = ["evaluate", "--run", str(run), "--data", str(tiny_dataset), "--split", "all", "--out", str(out)]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "surface distances" in result.output
    record = json.loads((out / "report.json").read_text())
    (model,), floor = record["models"], record["floor"]
    n = record["n_subjects"]
    scored = model["surface"]["metrics"]["surface_mean_mm"]["n"]
    assert scored + model["surface"]["missing"] == n and scored > 0
    assert model["bias"]["surface_mean_mm"]["sex"]["n"] == scored
    # the noise-free face lies ~1 mm from the noisy true face; a 4-step model on 16^3 voxels much farther
    surface, floor_surface = model["surface"]["metrics"], floor["surface"]["metrics"]
    assert floor["surface"]["missing"] == 0
    assert 0.1 < floor_surface["surface_mean_mm"]["mean"] < 2.0
    assert surface["surface_mean_mm"]["mean"] > floor_surface["surface_mean_mm"]["mean"]
    assert 0.0 <= surface["surface_within_2_5mm"]["mean"] <= 1.0
    page = (out / "report.html").read_text()
    assert "Surface distances (3D outputs)" in page and "mean surface distance" in page


def test_without_true_face_meshes_the_surfaces_are_reported_missing_not_fatal(run, tiny_dataset, tmp_path):
    copy = tmp_path / "no-face-mesh"
    shutil.copytree(tiny_dataset, copy)
    subject = DepthData.load(copy, "test").subjects[0].subject_id
    (copy / "subjects" / subject / "face.ply").unlink()
    record = evaluate_models([run], copy, "test").record
    (model,) = record["models"]
    assert model["surface"]["missing"] == record["n_subjects"] and "metrics" not in model["surface"]
    assert "face.ply" in model["surface"]["note"] and model["metrics"]["mae_mm"]["n"] == record["n_subjects"]


def test_faces_are_depth_maps_in_mm_on_the_data_grid_and_a_face_grid(run, test_data):
    model = load_trained(run)
    assert model.family == "gan3d" and model.grid == test_data.grid_spec
    recs = model.reconstruct_many(test_data)
    assert len(recs) == len(test_data)
    for rec, truth, region in zip(recs, test_data.face_depth, test_data.face_region, strict=True):
        assert rec.face_depth_mm.shape == (1, *truth.shape) and rec.face_depth_mm.dtype == np.float32
        assert rec.mask.shape == truth.shape and rec.mask.dtype == bool
        seen = rec.mask & region
        assert seen.mean() > 0.2
        assert np.median(np.abs(rec.mean_mm - truth)[seen]) < 15.0  # mm: voxels or metres would be far off
    answer = model.reconstruct_grid(test_data.grid("skull", 0), test_data.subjects[0])
    assert answer.face_occupancy.shape == (16, 16, 16) and answer.face_occupancy.dtype == np.float32
    assert answer.face_occupancy.min() >= 0.0 and answer.face_occupancy.max() <= 1.0
    width_mm = np.ptp(answer.face_mesh.vertices[:, 0])
    assert 100.0 < width_mm < 256.0  # a head's width in canonical mm, inside the 256 mm box
    np.testing.assert_array_equal(answer.reconstruction.face_depth_mm, recs[0].face_depth_mm)


def test_a_subset_reads_the_grids_of_its_own_subjects(run, test_data):
    model = load_trained(run)
    part = subset(test_data, 2)
    assert part.source.rows == test_data.source.rows[:2] and len(part) == 2
    whole, first = model.reconstruct_many(test_data), model.reconstruct_many(part)
    for a, b in zip(whole[:2], first, strict=True):
        np.testing.assert_array_equal(a.face_depth_mm, b.face_depth_mm)
    np.testing.assert_array_equal(part.grid("face", 1), test_data.grid("face", 1))


def test_the_saved_model_gives_identical_faces(run, test_data, tmp_path):
    model = load_trained(run)
    model.save(tmp_path / "again")
    again = ConditionalGAN3D.load(tmp_path / "again")
    a = model.reconstruct_grid(test_data.grid("skull", 1), test_data.subjects[1])
    b = again.reconstruct_grid(test_data.grid("skull", 1), test_data.subjects[1])
    np.testing.assert_array_equal(a.face_occupancy, b.face_occupancy)
    np.testing.assert_array_equal(a.reconstruction.face_depth_mm, b.reconstruction.face_depth_mm)


def test_the_same_seed_trains_the_same_model(tiny_dataset, test_data):
    train = DepthData.load(tiny_dataset, "train")

    def trained(seed: int) -> np.ndarray:
        config = load_config(None, ["steps=2", "batch_size=2", f"seed={seed}", *SMALL], model="gan3d")
        model = seeded_model(config)
        train_in_memory(model, train, config)
        return model.reconstruct_grid(test_data.grid("skull", 0), test_data.subjects[0]).face_occupancy

    first = trained(1)
    np.testing.assert_array_equal(first, trained(1))
    assert not np.array_equal(first, trained(2))


def test_a_depth_map_alone_is_refused_with_the_reason(run, test_data):
    model = load_trained(run)
    with pytest.raises(ValueError, match="voxel grid, not a depth map"):
        model.reconstruct(test_data.skull_depth[0], test_data.skull_mask[0], test_data.subjects[0])
    with pytest.raises(ValueError, match=r"skull grid is \(8, 8, 8\)"):
        model.reconstruct_grid(np.zeros((8, 8, 8), np.uint8), test_data.subjects[0])


def test_grid_factor_averages_blocks_into_partial_volume_occupancy():
    grid = np.zeros((4, 2, 2), np.uint8)
    grid[0, 0, 0] = grid[1, 1, 1] = 1  # two of the first block's eight voxels
    grid[2:] = 1  # the second block is full
    np.testing.assert_array_equal(pool_grid(grid, 2), np.array([[[0.25]], [[1.0]]], np.float32))
    np.testing.assert_array_equal(pool_grid(grid, 1), grid.astype(np.float32))
    with pytest.raises(ValueError, match="not divisible by grid_factor 3"):
        pool_grid(grid, 3)
    fine = GridSpec((8, 4, 4), (40.0, 20.0, 20.0), (1.0, 2.0, 3.0))
    coarse = pooled_spec(fine, 2)  # the same box: each coarse voxel centre is the mean of its fine centres
    assert coarse.shape == (4, 2, 2) and coarse.extent_mm == fine.extent_mm
    for axis in range(3):
        fine_centres = fine.axis_centres(axis).reshape(-1, 2).mean(axis=1)
        np.testing.assert_allclose(coarse.axis_centres(axis), fine_centres)


def test_grid_factor_trains_and_answers_on_the_coarser_grid(tiny_dataset, test_data):
    settings = ["steps=1", "batch_size=1", "model.grid_factor=2", "model.channels=[8,16]",
                "model.discriminator_channels=8", "model.discriminator_layers=1"]  # fmt: skip
    config = load_config(None, settings, model="gan3d")
    model = seeded_model(config)
    train_in_memory(model, DepthData.load(tiny_dataset, "train"), config)
    answer = model.reconstruct_grid(test_data.grid("skull", 0), test_data.subjects[0])
    assert answer.face_occupancy.shape == (8, 8, 8) and answer.grid.spacing_mm.tolist() == [32.0, 32.0, 32.0]


def test_a_patch_trained_model_answers_on_the_whole_grid_by_sliding_windows(tiny_dataset, test_data):
    train = DepthData.load(tiny_dataset, "train")
    settings = ["steps=2", "batch_size=1", "model.training_patch=[12,12,8]", "model.channels=[8,16]",
                "model.discriminator_channels=8", "model.discriminator_layers=1"]  # fmt: skip
    config = load_config(None, settings, model="gan3d")
    model = seeded_model(config)
    train_in_memory(model, train, config)
    batches = model.training_set(train)
    windows = []
    for _ in range(2):
        torch.manual_seed(3)  # the trainer seeds every step: the same seed crops the same window
        windows.append(batches.batch(np.array([0]), torch.device("cpu"))["inputs"][0, 0].numpy())
    np.testing.assert_array_equal(windows[0], windows[1])
    skull = train.grid("skull", 0).astype(np.float32)
    assert windows[0].shape == (12, 12, 8)
    assert any(np.array_equal(windows[0], skull[x : x + 12, y : y + 12, z : z + 8])
               for x in range(5) for y in range(5) for z in range(9))  # fmt: skip
    answer = model.reconstruct_grid(test_data.grid("skull", 0), test_data.subjects[0])
    assert answer.face_occupancy.shape == (16, 16, 16) and np.isfinite(answer.face_occupancy).all()
    assert answer.reconstruction.mask.any()
    with pytest.raises(ValueError, match="larger than the working grid"):
        ConditionalGAN3D(channels=(8, 16), training_patch=(20, 16, 16)).prepare(train)


def test_grid_sizes_off_the_unet_multiple_are_padded_and_cropped():
    generator = OccupancyGenerator(ConditionalUNet(3, 2, 1, (4, 8, 8)))  # multiple 4
    generator.set_template(np.full((12, 10, 6), 0.5, np.float32))
    inputs = generator.inputs(torch.zeros(1, 1, 12, 10, 6))
    assert inputs.shape == (1, 2, 12, 10, 6) and generator.padded_shape((12, 10, 6)) == (12, 12, 8)
    logits = generator(inputs, torch.zeros(1, 3))
    assert logits.shape == (1, 1, 12, 10, 6)
    with pytest.raises(ValueError, match="is not the model's"):
        generator.inputs(torch.zeros(1, 1, 12, 10, 8))


def test_bad_data_is_refused_with_clear_errors(tiny_dataset):
    train = DepthData.load(tiny_dataset, "train")
    with pytest.raises(ValueError, match="hold no voxel grids"):
        ConditionalGAN3D(channels=(8, 16)).prepare(replace(train, source=None))
    with pytest.raises(ValueError, match="not divisible by grid_factor 3"):
        ConditionalGAN3D(channels=(8, 16), grid_factor=3).prepare(train)
    with pytest.raises(ValueError, match="too small for a PatchGAN"):
        ConditionalGAN3D(channels=(8, 16), discriminator_layers=3).prepare(train)
    with pytest.raises(ValueError, match="grid_factor must be a positive integer"):
        ConditionalGAN3D(grid_factor=0)


def test_a_skull_mesh_case_is_voxelized_on_the_model_grid(run, tiny_dataset, tmp_path, monkeypatch):
    subject = tiny_dataset / "subjects" / DepthData.load(tiny_dataset, "test").subjects[0].subject_id
    pose_cases_from_landmarks(subject, tmp_path, monkeypatch)
    out = tmp_path / "case"
    result = runner.invoke(app, ["reconstruct", str(subject / "skull.ply"), "--out", str(out), "--sex", "F", "--age",
                                 "40", "--bmi", "25", "--model", str(run)])  # fmt: skip
    assert result.exit_code == 0, result.output
    face_grid = np.load(out / "F-age40-bmi25" / "face_grid.npy")
    assert face_grid.shape == (16, 16, 16) and face_grid.dtype == np.uint8 and set(np.unique(face_grid)) <= {0, 1}
    assert 0.05 < face_grid.mean() < 0.6  # a head inside the 256 mm box, not an empty or a full grid
    assert json.loads((out / "case.json").read_text())["model"]["family"] == "gan3d"
    assert np.load(out / "F-age40-bmi25" / "face_mask.npy").mean() > 0.1
    assert (out / "F-age40-bmi25" / "face.ply").is_file()
    # the model's own marching-cubes surface, in the canonical frame inside its 256 mm grid, and in the input's
    surface = trimesh.load(out / "F-age40-bmi25" / "head_surface_canonical.ply", force="mesh")
    grid = load_trained(run).grid
    assert len(surface.faces) > 100
    assert (np.abs(surface.vertices - grid.centre_mm) <= np.asarray(grid.extent_mm) / 2 + 1e-3).all()
    assert (out / "F-age40-bmi25" / "head_surface.ply").is_file()
