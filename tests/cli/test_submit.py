"""`facegen submit` without a service: it refuses a folder facegen did not write before any upload, and names an
unreachable server or a bad URL (exit code 2). The end-to-end run is in tests/service/test_client.py."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from facegen.cli.main import app

runner = CliRunner()


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _submit(tmp_path, out, server: str) -> object:
    scan = tmp_path / "skull.ply"
    scan.write_bytes(b"ply\n")
    return runner.invoke(app, ["submit", str(scan), "--server", server, "--key", "fgk_x", "--out", str(out)])


def test_submit_refuses_a_folder_facegen_did_not_write_before_uploading(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _submit(tmp_path, out, f"http://127.0.0.1:{_closed_port()}")
    assert result.exit_code == 2 and "notes.txt" in result.output and "cannot reach" not in result.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_submit_names_an_unreachable_server_and_a_bad_url(tmp_path):
    port = _closed_port()
    unreachable = _submit(tmp_path, tmp_path / "case", f"http://127.0.0.1:{port}")
    assert unreachable.exit_code == 2 and f"cannot reach the facegen service at http://127.0.0.1:{port}" in " ".join(
        unreachable.output.split()
    )
    bad = _submit(tmp_path, tmp_path / "case", "127.0.0.1:8000")
    assert bad.exit_code == 2 and "must start with http:// or https://" in bad.output
    assert not (tmp_path / "case").exists()
