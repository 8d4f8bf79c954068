"""The Python client (facegen.client) and `facegen submit` end to end against a running `facegen serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facegen.client import Client, FacegenAPIError
from facegen.io.output_folder import MARKER, OutputFolderError, read_marker
from tests.service.conftest import Server


def _files_on_disk(skull_upload: dict, folder: Path) -> tuple[Path, Path]:
    """The upload's skull mesh and landmarks as files."""
    scan, landmarks = folder / "skull.ply", folder / "landmarks.json"
    scan.write_bytes(skull_upload["scan"][1])
    landmarks.write_bytes(skull_upload["landmarks"][1])
    return scan, landmarks


def test_the_client_submits_waits_downloads_and_deletes(server: Server, skull_upload, tmp_path):
    scan, landmarks = _files_on_disk(skull_upload, tmp_path)
    with Client(server.url, server.keys["a-examiner"]) as client:
        case_id = client.submit(scan, sex="F", age=40, bmi=25, landmarks=landmarks)
        assert client.status(case_id)["status"] in {"queued", "running", "done"}
        state = client.wait(case_id, timeout=240, poll=0.5)
        assert state["status"] == "done" and state["error"] is None, state
        assert client.files(case_id) == state["files"] and "case.json" in state["files"]
        out = client.download(case_id, tmp_path / "case")
        written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MARKER)
        assert written == sorted(state["files"])
        assert json.loads((out / "case.json").read_text())["metadata_given"]["sex"] == "F"
        assert read_marker(out)["kind"] == "case"
        with pytest.raises(OutputFolderError, match="already exists"):  # an earlier download is kept
            client.download(case_id, out)
        assert client.download(case_id, out, overwrite=True) == out
        client.delete(case_id)
        with pytest.raises(FacegenAPIError, match="404") as info:
            client.status(case_id)
    assert info.value.status == 404 and "no case" in info.value.message


def test_download_refuses_a_folder_facegen_did_not_write(server: Server, done_case, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with Client(server.url, server.keys["a-viewer"]) as client, pytest.raises(OutputFolderError, match="notes.txt"):
        client.download(done_case["id"], mine, overwrite=True)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".mine.*")), "a staging folder was left behind"


def test_the_client_turns_api_errors_into_exceptions_with_the_servers_message(server: Server, skull_upload, tmp_path):
    scan, _ = _files_on_disk(skull_upload, tmp_path)
    with Client(server.url, server.keys["a-viewer"]) as client, pytest.raises(FacegenAPIError) as info:
        client.submit(scan, sex="F", age=40, bmi=25)
    assert info.value.status == 403 and "viewer" in str(info.value)
    with Client(server.url, server.keys["a-examiner"]) as client, pytest.raises(FacegenAPIError) as info:
        client.submit(scan, sex="F", age=-5, bmi=25)
    assert info.value.status == 422 and "age" in info.value.message
    with Client(server.url, "fgk_wrong") as client, pytest.raises(FacegenAPIError, match="unknown API key"):
        client.cases()


def test_facegen_submit_reconstructs_on_the_server_into_a_new_folder(server: Server, skull_upload, tmp_path):
    scan, landmarks = _files_on_disk(skull_upload, tmp_path)
    out = tmp_path / "case-001"
    command = [sys.executable, "-m", "facegen.cli.main", "submit", str(scan), "--server", server.url, "--key",
               server.keys["a-examiner"], "--out", str(out), "--sex", "F", "--age", "40", "--bmi", "25",
               "--landmarks", str(landmarks)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=server.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "submitted case" in done.stdout and f"wrote case {out}" in done.stdout
    assert (out / "case.json").is_file() and (out / "report.html").is_file()
    assert read_marker(out)["kind"] == "case"
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=server.env)
    assert again.returncode == 2 and "already exists" in again.stdout and "--overwrite" in again.stdout
