"""Schemathesis against the OpenAPI document of a running `facegen serve`, with a valid admin key and a finished
case to aim at: every generated request (valid and invalid) must be answered without a server error (5xx)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.service.conftest import FORM, Server, clean_env, free_port

MAX_EXAMPLES = 25
"""Per operation and phase: about 400 requests, some 10 s on one core."""
CONFIG = """
[dictionaries.cases]
values = {cases}
[dictionaries.files]
values = {files}
[parameters]
"path.case_id" = {{ dictionary = "cases", probability = 0.5 }}
"path.name" = {{ dictionary = "files", probability = 0.5 }}
"""
"""Half the generated ids and file names are real ones, so that requests get past the 404 into the handlers."""

NEVER_REFUSED = {"FACEGEN_RATE_LIMIT": "1000000", "FACEGEN_RATE_BURST": "1000000"}
"""The rate limiter still runs on every request, but never refuses one."""


def test_schemathesis_finds_no_server_error(case_model_run, skull_upload, tmp_path):
    env = clean_env(FACEGEN_MODEL=str(case_model_run), FACEGEN_MAX_UPLOAD_MB="8", **NEVER_REFUSED)
    server = Server(tmp_path / "data", env, free_port(), tmp_path / "serve.log")
    server.add_tenant("lab", "admin", "examiner")
    try:
        server.start()
        with server.client("lab-examiner") as client:
            case_id = client.post("/v1/cases", files=skull_upload, data=FORM).json()["id"]
        state = server.wait_for("lab-examiner", case_id)
        assert state["status"] == "done", state
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG.format(cases=json.dumps([case_id]), files=json.dumps(state["files"][:3])))
        command = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
                   "--config-file", str(config), "run", f"{server.url}/openapi.json",
                   "--header", f"Authorization: Bearer {server.keys['lab-admin']}", "--checks", "not_a_server_error",
                   "--max-examples", str(MAX_EXAMPLES), "--seed", "19", "--workers", "1", "--no-shrink",
                   "--request-timeout", "30"]  # fmt: skip
        run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    finally:
        server.stop()
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, f"schemathesis found failures:\n{report}\n--- server log ---\n{server.log.read_text()}"
    assert " passed" in run.stdout and "Server error" not in run.stdout, report
