"""The template cache: processes that ask at once wait for one build (portable lock), and nothing needs fcntl."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

from facegen.data.synthetic import template

WORKERS = 3


def _ask_for_template(cache: str, log: str, start: multiprocessing.synchronize.Barrier) -> None:
    """A child process: the build is stubbed (slow, logged), then all children ask for the template at once."""
    os.environ["FACEGEN_CACHE"] = cache

    def build() -> str:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough that every other child is waiting on the lock
        return "template"

    template.build_template = build
    template._save = lambda value, path: path.write_text(value)
    template._load = lambda path: path.read_text()
    template._TEMPLATE = None
    start.wait()
    assert template.head_template() == "template"


def test_parallel_processes_build_the_template_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # as on Windows and macOS: nothing inherited from the tests
    start = context.Barrier(WORKERS)
    log = tmp_path / "builds.log"
    children = [
        context.Process(target=_ask_for_template, args=(str(tmp_path / "cache"), str(log), start))
        for _ in range(WORKERS)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0] * WORKERS
    assert len(log.read_text().split()) == 1  # one build; the others waited for it and read the file
    assert len(list((tmp_path / "cache").glob("head-template-*.npz"))) == 1


def test_the_case_path_imports_without_fcntl() -> None:
    code = "import sys; sys.modules['fcntl'] = None; import facegen.data.synthetic.template, facegen.use.reconstruct"
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
