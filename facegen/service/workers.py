"""The queue workers of `facegen serve --workers N`: N child processes running `facegen worker`, so that cases never
share the web server's interpreter (its GIL: status calls stay quick) and a crash in native code takes down one job,
not the API. Each child dies with its parent, even when the parent is killed (Linux), and a child that dies is
started again at the next sweep."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

PARENT_ENV = "FACEGEN_WORKER_PARENT"
"""Set by `facegen serve` for its children: the parent's pid (the child dies with it and leaves the start-up
re-queueing and the sweep to it)."""
STOP_SECONDS = 45.0
log = logging.getLogger(__name__)


class WorkerProcesses:
    """`count` `facegen worker` processes for the data folder `data`, started from the calling thread."""

    def __init__(self, data: Path, count: int) -> None:
        self.data, self.count, self.stopping = data, count, False
        self.processes: list[subprocess.Popen] = []

    def _spawn(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "facegen.cli.main", "worker", "--data", str(self.data), "--workers", "1"]
        return subprocess.Popen(command, env=os.environ | {PARENT_ENV: str(os.getpid())})

    def start(self) -> WorkerProcesses:
        """Start the workers."""
        self.processes = [self._spawn() for _ in range(self.count)]
        return self

    def revive(self) -> int:
        """Start again the workers that died (a crash, the out-of-memory killer); how many."""
        if self.stopping:
            return 0
        dead = [i for i, process in enumerate(self.processes) if process.poll() is not None]
        for i in dead:
            log.warning("queue worker %d exited with %s; starting it again", self.processes[i].pid,
                        self.processes[i].returncode)  # fmt: skip
            self.processes[i] = self._spawn()
        return len(dead)

    def stop(self) -> None:
        """Ask the workers to stop (SIGINT: each finishes its job first), then kill the ones still running."""
        self.stopping = True
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()  # its case is queued again by the next sweep of any server or worker
                process.wait()


def die_with_parent() -> bool:
    """In a worker started by `facegen serve`: ask Linux to kill this process when its parent dies; whether this
    process was started so."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return False
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if str(os.getppid()) != parent:  # the parent died before the request took effect
        os._exit(1)
    return True
