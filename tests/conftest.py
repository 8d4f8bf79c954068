"""Shared, seeded fixtures: the head generator, a population of generated heads, a small dataset on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegen.data.representations.build import RepresentationSpec
from facegen.data.representations.depth_map import DepthView
from facegen.data.representations.voxel_grid import GridSpec

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def generator():
    from facegen.data.synthetic.generator import HeadGenerator

    return HeadGenerator()


@pytest.fixture(scope="session")
def population(generator):
    """300 generated heads (seed 2026): the sample the published-figure checks run on."""
    from facegen.data.synthetic.population import sample_subject

    rng = np.random.default_rng(2026)
    return [generator.generate(sample_subject(rng, f"P{i:03d}"), rng) for i in range(300)]


@pytest.fixture(scope="session")
def one_head(generator):
    from facegen.data.synthetic.population import sample_subject

    rng = np.random.default_rng(7)
    return generator.generate(sample_subject(rng, "H0"), rng)


SMALL_SPEC = RepresentationSpec(DepthView(shape=(128, 128), pixel_mm=2.0), GridSpec(shape=(32, 32, 32)))
"""Small representations for fast dataset tests (2 mm pixels, 8 mm voxels)."""


def _dataset(tmp_path_factory, name: str, n: int, seed: int, spec: RepresentationSpec) -> Path:
    """A synthetic dataset written once per session (per test worker) into a temporary folder."""
    from facegen.data.dataset.writer import write_synthetic_dataset

    out = tmp_path_factory.mktemp("ds") / name
    write_synthetic_dataset(out, n=n, seed=seed, spec=spec, workers=1)
    return out


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, generator) -> Path:
    """A 10-subject dataset written once for the read-only tests."""
    return _dataset(tmp_path_factory, "small", 10, 3, SMALL_SPEC)


TINY_SPEC = RepresentationSpec(DepthView(shape=(64, 64), pixel_mm=4.0), GridSpec(shape=(16, 16, 16)))
"""Tiny representations for training tests (4 mm pixels): a step takes a fraction of a second on a CPU."""


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, generator) -> Path:
    """A 24-subject dataset at 64^2 for trainer tests."""
    return _dataset(tmp_path_factory, "tiny", 24, 5, TINY_SPEC)


@pytest.fixture(scope="session")
def case_model_run(tiny_dataset, tmp_path_factory) -> Path:
    """A small statistical model (seconds to fit) for `facegen reconstruct` tests that need no evaluation."""
    from typer.testing import CliRunner

    from facegen.cli.main import app

    run = tmp_path_factory.mktemp("case-model") / "pca-tiny"
    args = ["--data", str(tiny_dataset), "--out", str(run), "--set", "model.skull_components=8"]
    result = CliRunner().invoke(app, ["train", "--model", "pca", *args])
    assert result.exit_code == 0, result.output
    return run


def pose_cases_from_landmarks(subject: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `facegen reconstruct` take a synthetic subject's pose from its landmark file (the automatic skull
    fit, 15 s a case, is tested on its own)."""
    import json

    import facegen.use.reconstruct as case_module
    from facegen.data.scans.ingest import ingest_input

    skull = json.loads((subject / "landmarks.json").read_text())["skull"]
    landmarks = tmp_path / "landmarks.json"
    frame = {k: skull[k] for k in ("porion_l", "porion_r", "orbitale_l")}
    landmarks.write_text(json.dumps({"space": "patient"} | frame))
    monkeypatch.setattr(
        case_module, "ingest_input", lambda path, options, _landmark_file=None: ingest_input(path, options, landmarks)
    )
