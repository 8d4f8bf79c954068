"""Benchmark of the web service: latency of status calls under 20 concurrent clients while jobs run, jobs completed
per minute with 1 and 2 queue workers, and the queue's overhead per job against calling `reconstruct` directly.

Jobs are the synthetic skull mesh and pose landmarks the service tests upload (seed 7), with sex, age and BMI given
(one face). Each server is a fresh `facegen serve --workers N` in a temporary folder (embedded SQLite and SQLite
queue unless --database-url and --queue-url name others), warmed up with one job per worker; the rate limit is set
out of reach (the limiter still runs on every call).
- Overhead: --jobs rounds of one `reconstruct` call in a warm process of its own (at the nice value jobs run at) and
  one job on the 1-worker server (from its upload being stored to its case being published, by the server's
  timestamps), in turn, so that both meet the same machine; the medians are compared.
- Jobs a minute: --jobs jobs uploaded at once to the 1-worker and then the 2-worker server (first upload stored to
  last case published).
- Latency: while the 2-worker server is busy with more jobs, --clients asyncio clients call GET /v1/cases/{id} for
  --seconds, each waiting --interval seconds between calls (1 s, as `facegen.client` polls), then for --seconds
  back to back (the server saturated).

    .venv/bin/python bench/service.py [--model default|RUN] [--jobs 6] [--clients 20] [--seconds 20]
                                      [--interval 1] [--database-url URL] [--queue-url URL]

Targets (2 cores): p95 of the status calls under 200 ms; the queue's overhead under 5% of a job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
from report import print_summary

P95_TARGET_MS = 200.0
OVERHEAD_TARGET = 0.05
FORM = {"sex": "F", "age": "40", "bmi": "25"}
UNLIMITED = {"FACEGEN_RATE_LIMIT": "100000000", "FACEGEN_RATE_BURST": "100000000"}


def write_job(folder: Path) -> tuple[Path, Path]:
    """The synthetic skull mesh (PLY) and the landmarks that set its pose, as the service tests make them."""
    from facegen.data.synthetic.generator import HeadGenerator
    from facegen.data.synthetic.population import sample_subject

    rng = np.random.default_rng(7)
    head = HeadGenerator().generate(sample_subject(rng, "H0"), rng)
    head.skull.export(folder / "skull.ply")
    frame = {k: head.skull_landmarks[k].tolist() for k in ("porion_l", "porion_r", "orbitale_l")}
    (folder / "landmarks.json").write_text(json.dumps({"space": "patient"} | frame))
    return folder / "skull.ply", folder / "landmarks.json"


DIRECT = """
import os, sys, time
from pathlib import Path
from facegen.use.reconstruct import reconstruct
os.nice(int(sys.argv[1]))
skull, landmarks, folder = (Path(a) for a in sys.argv[2:5])
for line in sys.stdin:
    start = time.perf_counter()
    reconstruct(skull, folder / f"direct-{line.strip()}", sex="F", age=40.0, bmi="25", model=sys.argv[5],
                landmarks=landmarks)
    print(time.perf_counter() - start, flush=True)
"""
"""A process that calls `reconstruct` directly once for each line it reads, at the jobs' nice value, and prints the
seconds each call took."""


class Direct:
    """`reconstruct` called directly, in a warm process of its own that runs at the nice value jobs run at."""

    def __init__(self, skull: Path, landmarks: Path, folder: Path, model: str) -> None:
        from facegen.service.settings import Settings

        nice = str(Settings(data=folder).job_nice)
        command = [sys.executable, "-c", DIRECT, nice, str(skull), str(landmarks), str(folder), model]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.calls = 0
        self.seconds()  # warm-up: the imports and the model's first load

    def seconds(self) -> float:
        """Seconds of one call."""
        self.calls += 1
        self.process.stdin.write(f"{self.calls}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("the direct reconstruct process died")
        return float(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


class BenchServer:
    """A `facegen serve` on its own data folder, with one examiner key."""

    def __init__(self, folder: Path, env: dict[str, str], workers: int) -> None:
        self.folder, self.env, self.workers = folder, env, workers
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        tenant = f"bench-{uuid.uuid4().hex[:8]}"
        self._facegen("admin", "tenant", "create", tenant)
        self.key = self._facegen("admin", "key", "create", "--tenant", tenant, "--role", "examiner").split()[-1]
        self.headers = {"Authorization": f"Bearer {self.key}"}
        command = [sys.executable, "-m", "facegen.cli.main", "serve", "--data", str(folder / "data"), "--port",
                   str(self.port), "--workers", str(workers)]  # fmt: skip
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("facegen serve did not answer within 120 s")

    def _facegen(self, *args: str) -> str:
        command = [sys.executable, "-m", "facegen.cli.main", *args, "--data", str(self.folder / "data")]
        return subprocess.run(command, env=self.env, check=True, capture_output=True, text=True).stdout.strip()

    def submit(self, files: dict, n: int) -> list[str]:
        """Upload `n` jobs; their case ids."""
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0) as client:
            return [client.post("/v1/cases", files=files, data=FORM).json()["id"] for _ in range(n)]

    def wait(self, ids: list[str], timeout: float = 900.0, poll: float = 0.5) -> list[dict]:
        """Poll the case list every `poll` seconds until every case of `ids` is done; their states."""
        deadline, wanted = time.monotonic() + timeout, set(ids)
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0) as client:
            while time.monotonic() < deadline:
                cases = {c["id"]: c for c in client.get("/v1/cases").json()["cases"] if c["id"] in wanted}
                if len(cases) == len(wanted) and all(c["status"] in {"done", "failed"} for c in cases.values()):
                    failed = [c for c in cases.values() if c["status"] != "done"]
                    if failed:
                        raise RuntimeError(f"a benchmark job failed: {failed[0]['error']}")
                    return [cases[i] for i in ids]
                time.sleep(poll)
        raise RuntimeError(f"jobs not finished within {timeout} s")

    def unfinished(self, ids: list[str]) -> int:
        """How many cases of `ids` are still queued or running."""
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0) as client:
            cases = client.get("/v1/cases").json()["cases"]
        return sum(c["id"] in set(ids) and c["status"] in {"queued", "running"} for c in cases)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def batch_seconds(states: list[dict]) -> float:
    """Seconds from the first case's creation to the last one's end, by the server's clock."""
    first = min(datetime.fromisoformat(s["created_at"]) for s in states)
    last = max(datetime.fromisoformat(s["finished_at"]) for s in states)
    return (last - first).total_seconds()


async def status_latencies(server: BenchServer, ids: list[str], clients: int, seconds: float,
                           interval: float) -> list[float]:  # fmt: skip
    """Seconds of each GET /v1/cases/{id} made by `clients` concurrent clients for `seconds`, each waiting `interval`
    seconds after an answer before its next call (0: back to back)."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def one_client(client: httpx.AsyncClient, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, interval))  # the clients do not call in step
        while time.perf_counter() < end:
            start = time.perf_counter()
            answer = await client.get(f"/v1/cases/{rng.choice(ids)}")
            latencies.append(time.perf_counter() - start)
            if answer.status_code != 200:
                raise RuntimeError(f"status call answered {answer.status_code}: {answer.text[:200]}")
            await asyncio.sleep(interval)

    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, limits=limits, timeout=60) as client:
        await asyncio.gather(*(one_client(client, random.Random(i)) for i in range(clients)))
    return latencies


def server_env(model: str, database_url: str | None, queue_url: str | None) -> dict[str, str]:
    """The server's environment: this one without FACEGEN_* settings, plus the model, backends and no rate limit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGEN_") or k == "FACEGEN_CACHE"}
    env |= UNLIMITED | {"FACEGEN_MODEL": model, "FACEGEN_LOG_LEVEL": "warning"}
    if database_url:
        env["FACEGEN_DATABASE_URL"] = database_url
    if queue_url:
        env |= {"FACEGEN_QUEUE_URL": queue_url, "FACEGEN_QUEUE_NAME": f"facegen-bench-{uuid.uuid4().hex[:8]}"}
    return env


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="'default' (built first if missing) or a run folder")
    p.add_argument("--jobs", type=int, default=6, help="jobs per throughput batch (and direct calls)")
    p.add_argument("--clients", type=int, default=20, help="concurrent status-call clients")
    p.add_argument("--seconds", type=float, default=20.0, help="how long the status calls go on (each way)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between a client's status calls (as "
                   "facegen.client polls); a second run goes back to back")  # fmt: skip
    p.add_argument("--database-url", help="FACEGEN_DATABASE_URL for the servers (default: SQLite in the temp folder)")
    p.add_argument("--queue-url", help="FACEGEN_QUEUE_URL for the servers (default: SQLite queue)")
    args = p.parse_args(argv)
    if args.model == "default":
        from facegen.use.reconstruct import resolve_model

        resolve_model("default")  # build it now, outside the timed runs
    env = server_env(args.model, args.database_url, args.queue_url)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        skull, landmarks = write_job(folder)
        files = {"scan": ("skull.ply", skull.read_bytes(), "application/octet-stream"),
                 "landmarks": ("landmarks.json", landmarks.read_bytes(), "application/json")}  # fmt: skip
        direct = Direct(skull, landmarks, folder, args.model)
        per_minute, direct_s, queued_s, latencies, busy = {}, [], [], {}, 0
        for workers in (1, 2):
            server = BenchServer(folder / f"serve-{workers}", env, workers)
            try:
                server.wait(server.submit(files, workers))  # warm-up: each worker imports what it needs
                if workers == 1:  # one job at a time, direct and queued in turn: both see the same machine
                    for _ in range(args.jobs):
                        direct_s.append(direct.seconds())
                        queued_s.append(batch_seconds(server.wait(server.submit(files, 1), poll=0.25)))
                    print(f"directly {np.median(direct_s):.2f} s, queued {np.median(queued_s):.2f} s", flush=True)
                elapsed = batch_seconds(server.wait(server.submit(files, args.jobs)))
                per_minute[workers] = args.jobs / elapsed * 60.0
                print(f"{workers} worker(s): {per_minute[workers]:.1f} jobs a minute", flush=True)
                if workers == 2:
                    running = server.submit(files, int(2 * args.seconds / np.median(direct_s) * workers) + 4)
                    for interval in (args.interval, 0.0):
                        latencies[interval] = asyncio.run(
                            status_latencies(server, running, args.clients, args.seconds, interval)
                        )
                    busy = server.unfinished(running)  # jobs must still be running when the calls end
            finally:
                server.stop()
        direct.close()
    report(direct_s, queued_s, per_minute, latencies, busy, args)


def report(direct_s: list[float], queued_s: list[float], per_minute: dict[int, float],
           latencies: dict[float, list[float]], busy: int, args: argparse.Namespace) -> None:  # fmt: skip
    """Print the figures, their ratios to the targets, and the BENCH_JSON line."""
    direct, queued = float(np.median(direct_s)), float(np.median(queued_s))
    overhead = queued / direct - 1.0
    figures: dict[str, float] = {}
    rows = []
    for interval, seconds in latencies.items():
        ms = np.array(seconds) * 1000.0
        p50, p95, rate = float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), len(ms) / args.seconds
        way = f"every {interval:g} s" if interval else "back to back"
        tag = f"poll_{interval:g}s" if interval else "back_to_back"
        figures |= {f"status_p50_ms_{tag}": p50, f"status_p95_ms_{tag}": p95, f"status_calls_per_s_{tag}": rate}
        rows += [(f"status call p50, {args.clients} clients {way}", f"{p50:.1f} ms ({rate:.0f} calls a second)"),
                 (f"status call p95, {args.clients} clients {way}",
                  f"{p95:.1f} ms ({p95 / P95_TARGET_MS:.2f}x the {P95_TARGET_MS:.0f} ms target)")]  # fmt: skip
    figures |= {"jobs_per_minute_1_worker": per_minute[1], "jobs_per_minute_2_workers": per_minute[2],
                "unfinished_jobs_after_calls": busy, "direct_s_per_job": direct, "queued_s_per_job": queued,
                "queue_overhead": overhead}  # fmt: skip
    rows += [
        ("jobs still running when the calls ended", f"{busy}"),
        ("jobs a minute, 1 worker", f"{per_minute[1]:.1f}"),
        ("jobs a minute, 2 workers", f"{per_minute[2]:.1f} ({per_minute[2] / per_minute[1]:.2f}x 1 worker)"),
        (f"reconstruct directly (median of {len(direct_s)})", f"{direct:.2f} s a job"),
        (f"on the queue, one at a time (median of {len(queued_s)})", f"{queued:.2f} s a job"),
        ("queue overhead per job", f"{overhead:+.1%} ({overhead / OVERHEAD_TARGET:+.2f}x the 5% target)"),
    ]
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
