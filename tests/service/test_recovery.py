"""Nothing lost: a server killed (SIGKILL) mid-job runs the case again after a restart, once, never partial."""

from __future__ import annotations

import json
import os
import time

from tests.service.conftest import FORM, Server, free_port


def test_a_case_interrupted_by_sigkill_completes_once_after_a_restart(case_model_run, skull_upload, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGEN_") or k == "FACEGEN_CACHE"}
    env |= {"FACEGEN_MODEL": str(case_model_run), "FACEGEN_STALE_SECONDS": "2"}
    server = Server(tmp_path / "data", env, free_port(), tmp_path / "serve.log")
    server.facegen("admin", "tenant", "create", "lab")
    for role in ("examiner", "admin"):
        out = server.facegen("admin", "key", "create", "--tenant", "lab", "--role", role)
        server.keys[f"lab-{role}"] = out.strip().splitlines()[-1]
    try:
        server.start()
        with server.client("lab-examiner") as client:
            case_id = client.post("/v1/cases", files=skull_upload, data=FORM).json()["id"]
            deadline = time.monotonic() + 60
            while client.get(f"/v1/cases/{case_id}").json()["status"] == "queued" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.get(f"/v1/cases/{case_id}").json()["status"] == "running"
        server.process.kill()  # SIGKILL mid-job: no clean-up runs
        server.process.wait()
        assert not list((server.data / "cases").glob(f"*/{case_id}")), "a partial case became visible"
        time.sleep(2.5)  # the dead worker's heartbeat goes stale
        server.start()
        state = server.wait_for("lab-examiner", case_id)
        assert state["status"] == "done", state
        with server.client("lab-admin") as client:
            events = client.get("/v1/audit").json()["events"]
            manifest = json.loads(client.get(f"/v1/cases/{case_id}/files/manifest.json").content)
    finally:
        server.stop()
    assert [e["action"] for e in events if e["case_id"] == case_id].count("case.done") == 1
    folder = next((server.data / "cases").glob(f"*/{case_id}"))
    assert set(manifest) <= set(state["files"]) and all((folder / name).is_file() for name in state["files"])
    assert not any((server.data / "staging").iterdir()) and not any((server.data / "uploads").iterdir())
