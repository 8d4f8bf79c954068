"""The job a queue worker runs for one case: reconstruct into staging, then publish the case whole."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, or_, select, update

from facegen.service import audit
from facegen.service.database import session_factory
from facegen.service.models import Case, Tenant, utc_now
from facegen.service.settings import Settings
from facegen.service.storage import CaseStore

WORKER_ACTOR = "worker"


def run_case(settings: Settings, case_id: str) -> str:
    """Reconstruct case `case_id` and record the outcome; its final status ('skipped' when the case is deleted,
    finished, or running under a live worker: a duplicate message never runs a case twice)."""
    lower_thread_priority(settings.job_nice)
    store = CaseStore(settings.data)
    claimed = claim(settings, case_id)
    if claimed is None:
        return "skipped"
    tenant_id, sex, age, bmi, keep = claimed
    upload, stage = store.upload_dir(case_id), store.staging_dir(case_id)
    shutil.rmtree(stage, ignore_errors=True)  # an earlier, interrupted attempt
    stage.mkdir(parents=True)
    try:
        with _Heartbeat(settings, case_id):
            error = _reconstruct(settings, upload, stage / "case", sex=sex, age=age, bmi=bmi)
        files = [] if error else store.publish(tenant_id, case_id, stage / "case")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not keep:
            shutil.rmtree(upload, ignore_errors=True)  # personal data: the upload is not kept after the job
    status = _finish(settings, store, tenant_id, case_id, files, error)
    if status in {"done", "failed"}:
        _notify(settings, tenant_id, case_id)
    return status


def _notify(settings: Settings, tenant_id: int, case_id: str) -> None:
    """Deliver the tenant's webhook; a failure to deliver never changes the case's outcome."""
    from facegen.service.webhooks import notify

    try:
        notify(settings, tenant_id, case_id)
    except Exception:  # noqa: BLE001 (the case is finished either way; attempts are in the audit log)
        logging.getLogger(__name__).exception("webhook delivery for case %s crashed", case_id)


def lower_thread_priority(nice: int) -> None:
    """Run this thread (and the threads it starts) at `nice`, so that the API answers first when cases keep every
    core busy; Linux only, where the nice value is a thread's own (elsewhere it would slow the whole server)."""
    if nice <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread) < nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)
    except OSError:  # not allowed here (a sandbox): the case runs at the usual priority
        logging.getLogger(__name__).warning("could not lower the priority of job thread %d", thread)


def claim(settings: Settings, case_id: str) -> tuple[int, str, float | None, str, bool] | None:
    """Mark a queued (or interrupted) case running, atomically; its tenant, metadata and whether to keep the upload,
    or None when it is not this worker's to run."""
    runnable = _runnable(settings)
    with session_factory(settings).begin() as session:
        taken = session.execute(
            update(Case).where(Case.id == case_id, runnable)
            .values(status="running", progress=0.1, attempts=Case.attempts + 1, heartbeat_at=utc_now())
        ).rowcount  # fmt: skip
        if taken != 1:
            return None
        case = session.get_one(Case, case_id)
        keep = settings.keep_uploads or session.get_one(Tenant, case.tenant_id).keep_uploads
        return case.tenant_id, case.sex, case.age, case.bmi, keep


def requeue_interrupted(settings: Settings, submit: Callable[[str], None]) -> list[str]:
    """Queue again every case left queued or running by a stopped worker (run at start; duplicates are skipped
    by `claim`); their ids."""
    stale = _runnable(settings)
    with session_factory(settings)() as session:
        ids = list(session.scalars(select(Case.id).where(stale).order_by(Case.created_at)))
    for case_id in ids:
        submit(case_id)
    return ids


def requeue_stale(settings: Settings, submit: Callable[[str], None]) -> list[str]:
    """Queue again every case running under a worker silent for longer than the stale time (the worker died); each
    is set back to queued first, so that of several sweeping processes exactly one queues it. Their ids."""
    silent = _silent(settings)
    with session_factory(settings)() as session:
        found = list(session.execute(select(Case.id, Case.tenant_id).where(silent).order_by(Case.created_at)))
    requeued = []
    for case_id, tenant_id in found:
        with session_factory(settings).begin() as session:
            taken = session.execute(
                update(Case).where(Case.id == case_id, silent).values(status="queued", progress=0.0, heartbeat_at=None)
            ).rowcount
            if taken == 1:
                audit.record(session, tenant_id=tenant_id, actor=WORKER_ACTOR, action="case.requeue", case_id=case_id,
                             detail=f"its worker was silent for more than {settings.stale_seconds} s")  # fmt: skip
        if taken == 1:
            submit(case_id)
            requeued.append(case_id)
    return requeued


def _silent(settings: Settings) -> ColumnElement[bool]:
    """Cases running under a worker that has not reported for longer than the stale time."""
    cutoff = utc_now() - timedelta(seconds=settings.stale_seconds)
    return and_(Case.status == "running", or_(Case.heartbeat_at.is_(None), Case.heartbeat_at < cutoff))


def _runnable(settings: Settings) -> ColumnElement[bool]:
    """Cases a worker may take: queued, or running under a worker silent for longer than the stale time."""
    return or_(Case.status == "queued", _silent(settings))


class _Heartbeat:
    """While a job runs, stamp its case every third of the stale time, so that no one takes it for interrupted."""

    def __init__(self, settings: Settings, case_id: str) -> None:
        self.settings, self.case_id, self.stop = settings, case_id, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{case_id}")

    def _beat(self) -> None:
        while not self.stop.wait(max(self.settings.stale_seconds / 3, 0.5)):
            with session_factory(self.settings).begin() as session:
                session.execute(update(Case).where(Case.id == self.case_id).values(heartbeat_at=utc_now()))

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _reconstruct(settings: Settings, upload: Path, out: Path, *, sex: str, age: float | None, bmi: str) -> str | None:
    """Run `reconstruct` on the upload; None on success, else the reason the case failed."""
    from facegen.data.scans.scan import ScanError
    from facegen.use.reconstruct import reconstruct

    scans = sorted(upload.glob("scan*"))
    landmarks = sorted(upload.glob("landmarks*"))
    if not scans:
        return "the upload is missing from the store (removed before the job ran)"
    try:
        reconstruct(scans[0], out, sex=sex, age=age, bmi=bmi, model=settings.model,
                    landmarks=landmarks[0] if landmarks else None)  # fmt: skip
    except (ValueError, ScanError) as exc:
        return str(exc).replace(str(upload), "upload")  # the message names the problem, not the server's paths
    except Exception as exc:  # noqa: BLE001 (any failure of one case is that case's outcome)
        return f"internal error while reconstructing ({type(exc).__name__}); the server log has the details"
    return None


def _finish(settings: Settings, store: CaseStore, tenant_id: int, case_id: str, files: list[str],
            error: str | None) -> str:  # fmt: skip
    """Mark the case done (its files now visible) or failed, and log it; a case deleted meanwhile is removed."""
    with session_factory(settings).begin() as session:
        case = session.get(Case, case_id)
        if case is None:
            store.remove(tenant_id, case_id)
            return "skipped"
        case.status = "failed" if error else "done"
        case.progress, case.files, case.error, case.finished_at = 1.0, files, error, utc_now()
        audit.record(session, tenant_id=tenant_id, actor=WORKER_ACTOR, action=f"case.{case.status}", case_id=case_id,
                     detail=error or f"{len(files)} files")  # fmt: skip
        return case.status
