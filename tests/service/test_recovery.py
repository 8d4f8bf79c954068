"""Nothing lost, on each backend: a worker killed (SIGKILL) mid-job has its case queued again by the running
server's periodic sweep; the server killed mid-queue and then mid-job loses none of its cases after a restart; every
case completes once, never twice, never partial."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

from tests.service.conftest import FORM, Server, clean_env, free_port

CASES = 2
"""One case running when the first kill comes, the other still queued."""


def _server(case_model_run, backend: dict[str, str], tmp_path, *, workers: int) -> Server:
    """A server on a fresh backend whose heartbeats go stale after 3 s, swept every half second; tenant lab."""
    env = clean_env(FACEGEN_MODEL=str(case_model_run), FACEGEN_STALE_SECONDS="3", FACEGEN_SWEEP_SECONDS="0.5",
                    **backend)  # fmt: skip
    server = Server(tmp_path / "data", env, free_port(), tmp_path / "serve.log", workers=workers)
    server.add_tenant("lab", "examiner", "admin")
    return server


def _statuses(server: Server, ids: list[str]) -> list[str]:
    """The cases' statuses now."""
    with server.client("lab-examiner") as client:
        return [client.get(f"/v1/cases/{case_id}").json()["status"] for case_id in ids]


def _wait_for_statuses(server: Server, ids: list[str], done: Callable[[list[str]], bool], seconds: float) -> list[str]:
    """Poll the cases until `done` holds for their statuses (or the time is up); their statuses then."""
    deadline = time.monotonic() + seconds
    while not done(states := _statuses(server, ids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return states


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL: no clean-up runs."""
    process.kill()
    process.wait()


def _each_done_once(server: Server, ids: list[str]) -> list[dict]:
    """Wait for every case; check each is done, announced once, whole, and nothing was left behind; the audit log."""
    states = [server.wait_for("lab-examiner", case_id) for case_id in ids]
    with server.client("lab-admin") as client:
        events = client.get("/v1/audit").json()["events"]
        manifests = [json.loads(client.get(f"/v1/cases/{i}/files/manifest.json").content) for i in ids]
    for case_id, state, manifest in zip(ids, states, manifests, strict=True):
        assert state["status"] == "done", state
        assert [e["action"] for e in events if e["case_id"] == case_id].count("case.done") == 1, case_id
        folder = next((server.data / "cases").glob(f"*/{case_id}"))
        assert set(manifest) <= set(state["files"]) and all((folder / name).is_file() for name in state["files"])
    assert not any((server.data / "staging").iterdir()) and not any((server.data / "uploads").iterdir())
    return events


def test_killed_workers_and_servers_lose_no_case_and_run_none_twice(case_model_run, skull_upload, backend, tmp_path):
    server = _server(case_model_run, backend, tmp_path, workers=0)  # at first the cases run on a separate worker
    worker = subprocess.Popen([sys.executable, "-m", "facegen.cli.main", "worker", "--data", str(server.data)],
                              env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        server.start()
        with server.client("lab-examiner") as client:
            ids = [client.post("/v1/cases", files=skull_upload, data=FORM).json()["id"] for _ in range(CASES)]
        states = _wait_for_statuses(server, ids, lambda s: s[0] != "queued", 90)
        assert states == ["running"] + ["queued"] * (CASES - 1), states
        _kill(worker)  # a worker killed mid-job, while the server runs on
        states = _wait_for_statuses(server, ids, lambda s: s[0] != "running", 30)
        assert states == ["queued"] * CASES, states  # the server's sweep queued it again: no restart needed
        _kill(server.process)  # the server killed mid-queue
        assert not list((server.data / "cases").glob("*/*")), "a partial case became visible"
        server.workers = 1
        server.start()
        states = _wait_for_statuses(server, ids, lambda s: "running" in s, 90)
        assert sorted(states) == ["queued", "running"], states
        _kill(server.process)  # the server killed mid-job
        assert not list((server.data / "cases").glob("*/*")), "a partial case became visible"
        server.start()
        events = _each_done_once(server, ids)
    finally:
        if worker.poll() is None:
            _kill(worker)
        server.stop()
    requeued = [e for e in events if e["action"] == "case.requeue"]
    assert ids[0] in {e["case_id"] for e in requeued} and all(e["actor"] == "worker" for e in requeued)
