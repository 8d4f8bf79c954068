"""`facegen synth --split`: the train/val/test fractions of a synthetic dataset, checked before any head is made."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from facegen.cli.main import app, parse_split
from facegen.data.dataset.reader import Dataset

runner = CliRunner()
SYNTH = ["synth", "--n", "8", "--seed", "5", "--size", "64", "--grid", "16", "--workers", "1"]


def _counts(root) -> dict[str, int]:
    rows = Dataset.open(root).rows
    return {split: sum(r.split == split for r in rows) for split in ("train", "val", "test")}


def test_split_sets_the_fractions_and_the_default_stays(tmp_path, generator):
    out = tmp_path / "split"
    result = runner.invoke(app, [*SYNTH, "--out", str(out), "--split", "0.5,0.25,0.25"])
    assert result.exit_code == 0, result.output
    assert _counts(out) == {"train": 4, "val": 2, "test": 2}
    card = json.loads((out / "dataset.json").read_text())
    assert card["split_fractions"] == {"train": 0.5, "val": 0.25, "test": 0.25}

    plain = tmp_path / "plain"
    result = runner.invoke(app, [*SYNTH, "--out", str(plain)])
    assert result.exit_code == 0, result.output
    assert sum(_counts(plain).values()) == 8 and _counts(plain)["train"] == 6  # 0.7 / 0.15 / 0.15 of 8
    assert "split_fractions" not in json.loads((plain / "dataset.json").read_text())


def test_parse_split_reads_three_fractions():
    assert parse_split("0.75,0.05,0.2") == (0.75, 0.05, 0.2)
    assert parse_split("0.8, 0, 0.2") == (0.8, 0.0, 0.2)


@pytest.mark.parametrize("text", ["0.8,0.2", "0.5,0.5,0.5", "a,b,c", "1.2,-0.2,0"])
def test_bad_split_is_refused_before_any_head(tmp_path, text):
    out = tmp_path / "bad"
    result = runner.invoke(app, [*SYNTH, "--out", str(out), "--split", text])
    assert result.exit_code != 0 and "TRAIN,VAL,TEST" in result.output
    assert not out.exists()
