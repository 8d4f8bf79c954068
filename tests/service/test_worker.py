"""`facegen worker`: a case queued while no consumer runs survives a server restart and is done by a worker;
a tenant that turned on keeping uploads keeps them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.service.conftest import FORM, Server, free_port


def test_a_queued_case_survives_a_restart_and_a_separate_worker_runs_it(case_model_run, skull_upload, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGEN_") or k == "FACEGEN_CACHE"}
    env["FACEGEN_MODEL"] = str(case_model_run)
    server = Server(tmp_path / "data", env, free_port(), tmp_path / "serve.log", workers=0)
    server.facegen("admin", "tenant", "create", "lab")
    server.facegen("admin", "tenant", "keep-uploads", "lab", "--on")
    server.keys["lab-examiner"] = server.facegen("admin", "key", "create", "--tenant", "lab", "--role",
                                                 "examiner").strip().splitlines()[-1]  # fmt: skip
    worker = None
    try:
        server.start()
        with server.client("lab-examiner") as client:
            case_id = client.post("/v1/cases", files=skull_upload, data=FORM).json()["id"]
        server.stop()
        server.start()  # the queue is on disk: the case is still there, still queued
        time.sleep(1.0)
        with server.client("lab-examiner") as client:
            assert client.get(f"/v1/cases/{case_id}").json()["status"] == "queued"
        worker = subprocess.Popen([sys.executable, "-m", "facegen.cli.main", "worker", "--data", str(server.data)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        state = server.wait_for("lab-examiner", case_id)
        assert state["status"] == "done" and "case.json" in state["files"], state
        assert (server.data / "uploads" / case_id / "scan.ply").is_file()  # this tenant keeps its uploads
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        server.stop()
