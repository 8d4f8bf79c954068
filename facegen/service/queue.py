"""The job queue (Huey): SQLite under DATA by default, Redis when FACEGEN_QUEUE_URL is set; one task per case."""

from __future__ import annotations

from dataclasses import dataclass

from huey import Huey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.consumer import Consumer

from facegen.service.settings import Settings

TASK_NAME = "facegen.reconstruct_case"
POLL_MAX_SECONDS = 0.1
"""The longest an idle worker waits before it looks at the SQLite queue again (Huey's default, 10 s, would delay a
case submitted after a quiet spell by up to 10 s)."""


@dataclass(frozen=True)
class JobQueue:
    """A Huey instance and the case task registered on it."""

    huey: Huey
    reconstruct_case: TaskWrapper

    def submit(self, case_id: str) -> None:
        """Queue the reconstruction of `case_id`."""
        self.reconstruct_case(case_id)

    def consumer(self, workers: int) -> Consumer:
        """A consumer running `workers` threads (in `facegen worker`, as `facegen serve` starts it too); an idle
        thread looks at a polled queue (SQLite) at least every POLL_MAX_SECONDS (Redis hands messages over at once)."""
        return self.huey.create_consumer(workers=workers, worker_type="thread", periodic=False, shutdown_timeout=30,
                                         initial_delay=0.1, backoff=1.15, max_delay=POLL_MAX_SECONDS)  # fmt: skip


def build_queue(settings: Settings) -> JobQueue:
    """The queue the settings name, with the case task registered (retried once on an unexpected crash); outcomes
    live in the database, so the queue keeps no results."""
    if settings.queue_url:
        huey: Huey = RedisHuey(name=settings.queue_name, url=settings.queue_url, results=False,
                               client_name=settings.queue_name)  # fmt: skip
    else:
        settings.data.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(name=settings.queue_name, filename=str(settings.data / "queue.db"), results=False)

    def reconstruct_case(case_id: str) -> str:
        from facegen.service.jobs import run_case

        return run_case(settings, case_id)

    task = huey.task(name=TASK_NAME, retries=1, retry_delay=5)(reconstruct_case)
    return JobQueue(huey, task)
