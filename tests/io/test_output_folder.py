"""The guarded writer: folders facegen did not write are never replaced, its own only on request, whole or
not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegen.io.output_folder import (
    MARKER,
    OutputFolderError,
    check_output_folder,
    claim_output_folder,
    foreign_files,
    read_marker,
    remove_output_folder,
    staged_directory,
)


def _write_case(final: Path, text: str = "face", *, overwrite: bool = False) -> None:
    with staged_directory(final, overwrite=overwrite, kind="case") as stage:
        (stage / "variant").mkdir()
        (stage / "variant" / "face.ply").write_text(text)
        (stage / "case.json").write_text("{}")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_folder_appears_whole_and_marked(tmp_path):
    _write_case(tmp_path / "case")
    marker = read_marker(tmp_path / "case")
    assert marker["kind"] == "case"
    assert marker["files"] == ["case.json", "variant/face.ply"]
    assert foreign_files(tmp_path / "case") == []
    assert [p.name for p in tmp_path.iterdir()] == ["case"]  # no staging folder left beside it


@pytest.mark.parametrize("content", [{}, {"photo.jpg": b"\xff\xd8evidence", "notes/scene.txt": b"bag 7"}])
def test_a_folder_facegen_did_not_write_is_refused_and_untouched(tmp_path, content):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, data in content.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    before = _snapshot(folder)
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match="already exists and (holds files .* did not write|was not made)"):
            _write_case(folder, overwrite=overwrite)
    assert _snapshot(folder) == before and folder.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]


def test_an_earlier_output_is_replaced_only_with_overwrite(tmp_path):
    case = tmp_path / "case"
    _write_case(case, "first")
    with pytest.raises(FileExistsError, match="an earlier facegen case.*pass --overwrite"):
        _write_case(case, "second")
    assert (case / "variant" / "face.ply").read_text() == "first"
    _write_case(case, "second", overwrite=True)
    assert (case / "variant" / "face.ply").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


def test_files_added_to_an_earlier_output_block_its_replacement(tmp_path):
    case = tmp_path / "case"
    _write_case(case)
    (case / "variant" / "examiner-notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match=r"also holds files facegen did not write \(variant/examiner-notes"):
        _write_case(case, overwrite=True)
    assert (case / "variant" / "examiner-notes.txt").read_text() == "mine"
    with pytest.raises(OutputFolderError, match="will not remove it"):
        remove_output_folder(case)
    assert (case / "variant" / "examiner-notes.txt").exists()


def test_a_file_added_while_the_output_was_staged_is_kept(tmp_path):
    case = tmp_path / "case"
    _write_case(case)
    with pytest.raises(OutputFolderError, match="did not write"), staged_directory(case, overwrite=True, kind="case"):
        (case / "late.txt").write_text("written by someone else during the run")
    assert (case / "late.txt").exists() and (case / "case.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


def test_an_output_of_another_kind_is_not_replaced(tmp_path):
    with staged_directory(tmp_path / "data", kind="dataset") as stage:
        (stage / "dataset.json").write_text("{}")
    with pytest.raises(OutputFolderError, match="holds a facegen dataset, not a case"):
        _write_case(tmp_path / "data", overwrite=True)
    assert (tmp_path / "data" / "dataset.json").exists()


def test_a_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="model failed"), staged_directory(tmp_path / "case", kind="case") as stage:
        (stage / "half.ply").write_text("half")
        raise RuntimeError("model failed")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_replacement_keeps_the_earlier_output(tmp_path):
    case = tmp_path / "case"
    _write_case(case, "first")
    with pytest.raises(RuntimeError), staged_directory(case, overwrite=True, kind="case") as stage:
        (stage / "case.json").write_text("half")
        raise RuntimeError("disk full")
    assert (case / "variant" / "face.ply").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


@pytest.mark.parametrize("where", [".", "..", "~", "/"])
def test_protected_folders_are_always_refused(tmp_path, monkeypatch, where):
    work = tmp_path / "home" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    target = Path(where)
    with pytest.raises(OutputFolderError, match="(current folder|home folder|filesystem root|parent of the current)"):
        check_output_folder(target, overwrite=True)
    with pytest.raises(OutputFolderError):
        claim_output_folder(target, kind="training run", overwrite=True)


def test_links_and_files_are_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputFolderError, match="is a link"):
        check_output_folder(tmp_path / "link", overwrite=True)
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file.txt", overwrite=True)


def test_a_growing_output_owns_its_declared_folders_and_nested_outputs(tmp_path):
    run = tmp_path / "run"
    claim_output_folder(run, kind="training run", files=["run.json"], folders=["checkpoints"])
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "step-1.pt").write_bytes(b"w")
    (run / "run.json").write_text("{}")
    with staged_directory(run / "evaluation", kind="evaluation report") as stage:  # a facegen output inside it
        (stage / "report.json").write_text("{}")
    assert foreign_files(run) == []
    claim_output_folder(run, kind="training run", files=["run.json"], folders=["checkpoints"], keep=True)
    assert (run / "checkpoints" / "step-1.pt").exists()  # resumed: kept
    (run / "evaluation" / "mine.txt").write_text("x")
    assert foreign_files(run) == ["evaluation/mine.txt"]
    with pytest.raises(OutputFolderError, match="evaluation/mine.txt"):
        claim_output_folder(run, kind="training run", overwrite=True)
    (run / "evaluation" / "mine.txt").unlink()
    claim_output_folder(run, kind="training run", files=["run.json"], overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [MARKER]
