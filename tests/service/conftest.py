"""A real `facegen serve` process per backend (embedded SQLite; PostgreSQL + Redis where reachable), its tenants
and keys, and a skull mesh to upload."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
READY_SECONDS = 90.0
JOB_SECONDS = 240.0


def reachable(address: tuple[str, int]) -> bool:
    """Whether a TCP server answers at `address`."""
    try:
        with socket.create_connection(address, timeout=1.0):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running `facegen serve` and what the tests need to talk to it."""

    data: Path
    env: dict[str, str]
    port: int
    log: Path
    keys: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    workers: int = 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for the server, sending `key` (a name in `keys`) as the bearer key."""
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)

    def add_tenant(self, name: str, *roles: str) -> None:
        """Create tenant `name` and a key per role, kept in `keys` as '<name>-<role>'."""
        self.facegen("admin", "tenant", "create", name)
        for role in roles:
            out = self.facegen("admin", "key", "create", "--tenant", name, "--role", role)
            self.keys[f"{name}-{role}"] = out.strip().splitlines()[-1]

    def facegen(self, *args: str) -> str:
        """Run a facegen command against this server's data; its stdout."""
        done = subprocess.run([sys.executable, "-m", "facegen.cli.main", *args, "--data", str(self.data)],
                              env=self.env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self) -> None:
        """Start the server and wait until /healthz answers."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the server process (without waiting for it: several can start side by side)."""
        command = [sys.executable, "-m", "facegen.cli.main", "serve", "--data", str(self.data), "--port",
                   str(self.port), "--workers", str(self.workers)]  # fmt: skip
        handle = self.log.open("a")
        self.process = subprocess.Popen(command, env=self.env, stdout=handle, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        """Wait until the launched server's /healthz answers."""
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"facegen serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"facegen serve did not answer within {READY_SECONDS} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_for(self, key: str, case_id: str, seconds: float = JOB_SECONDS) -> dict:
        """Poll a case until it is done or failed; its last state."""
        deadline = time.monotonic() + seconds
        with self.client(key) as client:
            while time.monotonic() < deadline:
                state = client.get(f"/v1/cases/{case_id}").json()
                if state["status"] in {"done", "failed"}:
                    return state
                time.sleep(0.5)
        raise AssertionError(f"case {case_id} not finished after {seconds} s:\n{self.log.read_text()[-3000:]}")


def _postgres_redis(run: str) -> tuple[dict[str, str], callable]:
    """Environment for a fresh PostgreSQL database and Redis queue name, and their clean-up."""
    import psycopg
    import redis

    name = f"facegen_test_{run}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def clean() -> None:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis(host=REDIS[0], port=REDIS[1])
        for key in client.scan_iter(f"*{name}*"):
            client.delete(key)

    env = {"FACEGEN_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
           "FACEGEN_QUEUE_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0", "FACEGEN_QUEUE_NAME": name}  # fmt: skip
    return env, clean


BACKENDS = ["embedded", "postgres+redis"]
"""Every test that starts servers runs on each: SQLite and the SQLite queue, or PostgreSQL and Redis."""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without FACEGEN_* settings (but the model cache), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGEN_") or k == "FACEGEN_CACHE"}
    return env | extra


@contextmanager
def backend_env(name: str) -> Iterator[dict[str, str]]:
    """The FACEGEN_* variables of a fresh backend `name` (none for the embedded one; a new PostgreSQL database and
    Redis queue name, removed afterwards); skips the test where PostgreSQL or Redis is not reachable."""
    if name == "embedded":
        yield {}
        return
    if not (reachable(POSTGRES) and reachable(REDIS)):
        pytest.skip("PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is not reachable")
    extra, clean = _postgres_redis(uuid.uuid4().hex[:10])
    try:
        yield extra
    finally:
        clean()


@pytest.fixture(params=BACKENDS)
def backend(request) -> Iterator[dict[str, str]]:
    """A fresh backend per test, as FACEGEN_* variables (see `backend_env`)."""
    with backend_env(request.param) as extra:
        yield extra


@contextmanager
def running_server(backend: str, folder: Path, tenants: dict[str, tuple[str, ...]], **env: str) -> Iterator[Server]:
    """`facegen serve` on a fresh data folder under `folder` on `backend`, with a key per role of each tenant and
    the FACEGEN_* variables `env`; stopped on exit."""
    with backend_env(backend) as extra:
        server = Server(folder / "data", clean_env(**env, **extra), free_port(), folder / "serve.log")
        try:
            for tenant, roles in tenants.items():
                server.add_tenant(tenant, *roles)
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def server(request, case_model_run, tmp_path_factory) -> Iterator[Server]:
    """`facegen serve` on a fresh data folder, with tenants a and b and a key per role (a) and examiner/admin (b)."""
    folder = tmp_path_factory.mktemp(f"service-{request.param.replace('+', '-')}")
    tenants = {"a": ("admin", "examiner", "viewer"), "b": ("admin", "examiner")}
    with running_server(request.param, folder, tenants, FACEGEN_MODEL=str(case_model_run), FACEGEN_MAX_UPLOAD_MB="8",
                        FACEGEN_MAX_UNPACKED_MB="4", FACEGEN_MAX_ARCHIVE_MEMBERS="20") as server:  # fmt: skip
        yield server


@pytest.fixture(scope="session")
def skull_upload(one_head, tmp_path_factory) -> dict[str, tuple[str, bytes, str]]:
    """The multipart files of one synthetic skull mesh and the landmarks that set its pose."""
    folder = tmp_path_factory.mktemp("upload")
    one_head.skull.export(folder / "skull.ply")
    frame = {k: one_head.skull_landmarks[k].tolist() for k in ("porion_l", "porion_r", "orbitale_l")}
    landmarks = json.dumps({"space": "patient"} | frame).encode()
    return {"scan": ("skull.ply", (folder / "skull.ply").read_bytes(), "application/octet-stream"),
            "landmarks": ("landmarks.json", landmarks, "application/json")}  # fmt: skip


FORM = {"sex": "F", "age": "40", "bmi": "25"}
"""Known metadata: one face per case, the fastest job."""


@pytest.fixture(scope="session")
def done_case(server: Server, skull_upload) -> dict:
    """A case of tenant a, uploaded by its examiner and finished."""
    with server.client("a-examiner") as client:
        answer = client.post("/v1/cases", files=skull_upload, data=FORM)
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert created["status"] == "queued" and set(created) == {"id", "status"}
    state = server.wait_for("a-examiner", created["id"])
    assert state["status"] == "done", state
    return state
