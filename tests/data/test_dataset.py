"""Datasets on disk: table, card, split, chunked arrays, torch access, determinism and verification."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from facegen.data.dataset.info import dataset_summary
from facegen.data.dataset.reader import Dataset
from facegen.data.dataset.torch_dataset import HeadDataset
from facegen.data.dataset.verify import verify_dataset
from facegen.data.dataset.writer import write_synthetic_dataset
from tests.conftest import SMALL_SPEC


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_table_card_and_arrays_describe_the_same_subjects(small_dataset):
    ds = Dataset.open(small_dataset)
    with (small_dataset / "subjects.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["subject_id"] for r in rows] == [f"S{i:05d}" for i in range(10)]
    assert set(rows[0]) >= {"subject_id", "sex", "age_years", "bmi", "group", "split", "floor_mm"}
    card = ds.card
    assert card["n_subjects"] == 10 and card["seed"] == 3
    assert sum(card["counts"]["split"].values()) == 10
    assert card["floor"]["surface_mm"]["mean"] > 0
    assert card["representation"]["grid"]["shape"] == [32, 32, 32]
    arrays = ds.arrays()
    assert arrays["face_depth"].shape == (10, 128, 128)
    assert arrays["skull_grid"].shape == (10, 32, 32, 32)
    assert arrays["face_depth"].chunks == (1, 128, 128)


def test_depth_maps_are_in_mm_with_masks(small_dataset):
    arrays = Dataset.open(small_dataset).arrays()
    face, skull = arrays["face_depth"][0], arrays["skull_depth"][0]
    face_mask, skull_mask = arrays["face_mask"][0].astype(bool), arrays["skull_mask"][0].astype(bool)
    assert face.dtype == np.float32
    assert 80 < face[face_mask].max() < 140  # nose tip ~ 100-120 mm in front of the porions
    assert np.all(face[~face_mask] == 0)
    both = face_mask & skull_mask
    assert np.all(face[both] - skull[both] > 0)


def test_head_dataset_serves_items_to_a_multiprocess_loader(small_dataset):
    train = HeadDataset(small_dataset, split="train", fields=("skull_depth", "face_depth", "face_region", "skull_grid"))
    item = train[0]
    assert item["face_depth"].shape == (128, 128) and item["face_depth"].dtype == torch.float32
    assert item["skull_grid"].shape == (32, 32, 32) and item["skull_grid"].dtype == torch.bool
    assert item["sex"].item() in (0.0, 1.0) and 18 <= item["age_years"].item() <= 90
    batches = list(DataLoader(train, batch_size=3, num_workers=2))
    assert sum(len(b["subject_id"]) for b in batches) == len(train)
    assert len(HeadDataset(small_dataset, split=None)) == 10


def test_unknown_field_and_empty_split_are_refused(small_dataset):
    with pytest.raises(ValueError, match="unknown fields \\['nose'\\]"):
        HeadDataset(small_dataset, fields=("nose",))
    with pytest.raises(ValueError, match="no subjects in split 'holdout'"):
        HeadDataset(small_dataset, split="holdout")


def test_same_seed_gives_byte_identical_datasets_whatever_the_workers(tmp_path, generator):
    a = write_synthetic_dataset(tmp_path / "a", n=4, seed=11, spec=SMALL_SPEC, workers=1)
    b = write_synthetic_dataset(tmp_path / "b", n=4, seed=11, spec=SMALL_SPEC, workers=2)
    c = write_synthetic_dataset(tmp_path / "c", n=4, seed=12, spec=SMALL_SPEC, workers=1)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert a["files"] == b["files"]
    assert a["files"] != c["files"]
    differing = [f for f in a["files"] if a["files"][f] != c["files"].get(f)]
    assert any(f.endswith("face.ply") for f in differing)


def test_existing_output_is_not_overwritten_by_accident(tmp_path, generator):
    out = tmp_path / "ds"
    write_synthetic_dataset(out, n=1, seed=0, spec=SMALL_SPEC)
    with pytest.raises(FileExistsError, match="already exists .an earlier facegen dataset.; choose another --out or "
                       "pass --overwrite"):
        write_synthetic_dataset(out, n=1, seed=1, spec=SMALL_SPEC)
    write_synthetic_dataset(out, n=2, seed=1, spec=SMALL_SPEC, overwrite=True)
    assert len((out / "subjects.csv").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="--n must be at least 1"):
        write_synthetic_dataset(tmp_path / "none", n=0, seed=0, spec=SMALL_SPEC)
    assert not (tmp_path / "none").exists()


def test_a_failed_write_leaves_nothing_behind(tmp_path, generator, monkeypatch):
    from facegen.data.dataset import writer

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "build_card", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        write_synthetic_dataset(tmp_path / "ds", n=2, seed=0, spec=SMALL_SPEC)
    assert list(tmp_path.iterdir()) == []


def test_verify_accepts_a_whole_dataset_and_names_each_broken_file(tmp_path, small_dataset):
    assert verify_dataset(small_dataset) == []
    broken = tmp_path / "broken"
    shutil.copytree(small_dataset, broken)
    chunk = broken / "arrays.zarr" / "face_depth" / "c" / "2" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    (broken / "subjects" / "S00004" / "skull.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\n")
    (broken / "subjects" / "S00005" / "landmarks.json").unlink()
    problems = "\n".join(verify_dataset(broken))
    assert "arrays.zarr/face_depth/c/2/0/0" in problems
    assert "S00004/skull.ply" in problems
    assert "S00005/landmarks.json: missing" in problems
    assert "S00001" not in problems


def test_verify_reports_a_folder_that_is_not_a_dataset(tmp_path):
    assert verify_dataset(tmp_path) == [f"{tmp_path} is not a facegen dataset: dataset.json is missing"]


def test_landmarks_file_holds_paired_points_and_depths(small_dataset):
    landmarks = json.loads((small_dataset / "subjects" / "S00000" / "landmarks.json").read_text())
    assert {"glabella", "pogonion", "zygion_l"} <= set(landmarks["tissue_depth_mm"])
    face, skull = np.array(landmarks["face"]["pogonion"]), np.array(landmarks["skull"]["pogonion"])
    assert np.isclose(np.linalg.norm(face - skull), landmarks["tissue_depth_mm"]["pogonion"], atol=1e-3)
    assert np.allclose(np.array(landmarks["skull"]["porion_l"])[1:], 0.0, atol=1e-3)  # canonical frame


def test_summary_counts(small_dataset):
    summary = dataset_summary(small_dataset)
    assert summary["subjects"] == 10 and summary["size_mb"] > 0
    assert sum(summary["counts"]["sex"].values()) == 10
