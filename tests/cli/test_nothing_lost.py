"""Nothing lost: every command that writes a folder leaves a folder of unrelated files, and the working folder,
exactly as they were."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from facegen.cli.main import app

runner = CliRunner()


def _commands(scan: Path, out: Path) -> dict[str, list[str]]:
    """Each writing command aimed at `out`; the inputs need not be valid: the folder is checked first."""
    elsewhere = str(scan.parent / "nowhere")
    return {
        "reconstruct": ["reconstruct", str(scan), "--out", str(out)],
        "synth": ["synth", "--n", "1", "--size", "64", "--grid", "8", "--out", str(out)],
        "ingest": ["ingest", str(scan), "--out", str(out)],
        "train": ["train", "--model", "template", "--data", elsewhere, "--out", str(out)],
        "evaluate": ["evaluate", "--run", elsewhere, "--data", elsewhere, "--out", str(out)],
        "demo": ["demo", "--out", str(out)],
    }


def _evidence(folder: Path) -> dict[str, bytes]:
    folder.mkdir()
    (folder / "photos").mkdir()
    files = {"photos/scene-01.jpg": b"\xff\xd8\xff scene", "notes.txt": b"bag 7, found 2026-11-30"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["reconstruct", "synth", "ingest", "train", "evaluate", "demo"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_of_unrelated_files_survives_every_writing_command(tmp_path, command, overwrite):
    scan = tmp_path / "skull.nii.gz"
    scan.write_bytes(b"not read")
    evidence = tmp_path / "case-photos"
    files = _evidence(evidence)
    args = _commands(scan, evidence)[command] + (["--overwrite"] if overwrite else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "holds files facegen did not write" in result.output and "photos/scene-01.jpg" in result.output
    assert _contents(evidence) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case-photos", "skull.nii.gz"]  # nothing half-written


@pytest.mark.parametrize("command", ["reconstruct", "synth", "ingest", "train", "evaluate", "demo"])
@pytest.mark.parametrize("where", [".", ".."])
def test_the_working_folder_and_its_parents_are_refused(tmp_path, monkeypatch, command, where):
    work = tmp_path / "work"
    work.mkdir()
    scan = work / "skull.nii.gz"
    scan.write_bytes(b"not read")
    monkeypatch.chdir(work)
    result = runner.invoke(app, [*_commands(scan, Path(where))[command], "--overwrite"])
    assert result.exit_code == 2, result.output
    assert "current folder" in result.output and "never writes an output there" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert [p.name for p in work.iterdir()] == ["skull.nii.gz"]
