"""The job a queue worker runs for one case: reconstruct into staging, then publish the case whole."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from facegen.service import audit
from facegen.service.database import session_factory
from facegen.service.models import Case, Tenant, utc_now
from facegen.service.settings import Settings
from facegen.service.storage import HIRISPLEX_FILE, CaseStore
from facegen.service.uploads import load_hirisplex

if TYPE_CHECKING:
    from facegen.models.appearance.hirisplex import PhenotypePrediction

WORKER_ACTOR = "worker"
FINAL = frozenset({"done", "failed"})
log = logging.getLogger(__name__)


def run_case(settings: Settings, case_id: str) -> str:
    """Reconstruct case `case_id` and record the outcome; its final status ('skipped' when the case is deleted,
    finished, running under a live worker, or taken over by a later attempt: a case is never published twice;
    'failed' without a run when it was interrupted `settings.max_attempts` times already)."""
    lower_thread_priority(settings.job_nice)
    store = CaseStore(settings.data)
    claimed = claim(settings, case_id)
    if claimed is None:
        return give_up(settings, store, case_id)
    stage = store.staging_dir(case_id)
    shutil.rmtree(stage, ignore_errors=True)  # earlier, interrupted attempts
    work = stage / f"attempt-{claimed.attempt}"
    work.mkdir(parents=True)
    try:
        with _Heartbeat(settings, case_id, claimed.attempt):
            error = _reconstruct(settings, store.upload_dir(case_id), work / "case", sex=claimed.sex,
                                 age=claimed.age, bmi=claimed.bmi)  # fmt: skip
        status = _finish(settings, store, case_id, claimed, work / "case", error)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            stage.rmdir()  # left when a later attempt works there now
    if status in FINAL:
        _notify(settings, claimed.tenant_id, case_id)
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


@dataclass(frozen=True)
class Claim:
    """A case this worker took: its tenant, metadata, whether to keep the upload, and the attempt this run is (the
    case's `attempts` after the claim: the run's result is published only while the case is still on it)."""

    tenant_id: int
    sex: str
    age: float | None
    bmi: str
    keep: bool
    attempt: int


def claim(settings: Settings, case_id: str) -> Claim | None:
    """Mark a queued (or interrupted) case running, atomically, unless it was started `settings.max_attempts`
    times already; what the run needs, or None when it is not this worker's to run."""
    runnable = and_(_runnable(settings), Case.attempts < settings.max_attempts)
    with session_factory(settings).begin() as session:
        taken = session.execute(
            update(Case).where(Case.id == case_id, runnable)
            .values(status="running", progress=0.1, attempts=Case.attempts + 1, heartbeat_at=utc_now())
        ).rowcount  # fmt: skip
        if taken != 1:
            return None
        case = session.get_one(Case, case_id)
        return Claim(case.tenant_id, case.sex, case.age, case.bmi, _keep(settings, session, case.tenant_id),
                     case.attempts)  # fmt: skip


def give_up(settings: Settings, store: CaseStore, case_id: str) -> str:
    """Fail, without running it, a case started `settings.max_attempts` times that never finished (its job keeps
    killing its worker: out of memory, a crash in native code), instead of queueing it again forever; its files
    are removed (the upload kept only where the tenant keeps uploads). 'failed', or 'skipped' for any other case."""
    exhausted = and_(Case.id == case_id, _runnable(settings), Case.attempts >= settings.max_attempts)
    with session_factory(settings).begin() as session:
        found = session.execute(select(Case.tenant_id, Case.attempts).where(exhausted)).first()
        if found is None:
            return "skipped"
        tenant_id, attempts = found
        error = (f"the case was interrupted {attempts} times (its worker stopped: killed, out of memory or "
                 f"restarted) and is not run again (the limit is {settings.max_attempts} attempts, "
                 "FACEGEN_MAX_ATTEMPTS); check the scan, or submit a smaller one")  # fmt: skip
        taken = session.execute(
            update(Case).where(exhausted).values(status="failed", progress=1.0, files=[], error=error,
                                                 finished_at=utc_now())
        ).rowcount  # fmt: skip
        if taken != 1:
            return "skipped"
        audit.record(session, tenant_id=tenant_id, actor=WORKER_ACTOR, action="case.failed", case_id=case_id,
                     detail=error)  # fmt: skip
        shutil.rmtree(store.staging_dir(case_id), ignore_errors=True)
        shutil.rmtree(store.case_dir(tenant_id, case_id), ignore_errors=True)
        if not _keep(settings, session, tenant_id):
            shutil.rmtree(store.upload_dir(case_id), ignore_errors=True)  # personal data: not kept after the job
    _notify(settings, tenant_id, case_id)
    return "failed"


def _keep(settings: Settings, session: Session, tenant_id: int) -> bool:
    """Whether the upload stays after the job (the server's setting, or the tenant's)."""
    return settings.keep_uploads or session.get_one(Tenant, tenant_id).keep_uploads


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
    """While a job runs, stamp its case every third of the stale time, so that no one takes it for interrupted;
    only while the case is on this job's attempt (a stalled worker taken over stamps nothing)."""

    def __init__(self, settings: Settings, case_id: str, attempt: int) -> None:
        self.settings, self.case_id, self.attempt, self.stop = settings, case_id, attempt, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{case_id}")

    def _beat(self) -> None:
        ours = and_(Case.id == self.case_id, Case.status == "running", Case.attempts == self.attempt)
        while not self.stop.wait(max(self.settings.stale_seconds / 3, 0.5)):
            with session_factory(self.settings).begin() as session:
                session.execute(update(Case).where(ours).values(heartbeat_at=utc_now()))

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _reconstruct(settings: Settings, upload: Path, out: Path, *, sex: str, age: float | None, bmi: str) -> str | None:
    """Run `reconstruct` on the upload (with the phenotype from its HIrisPlex record, when it has one); None on
    success, else the reason the case failed."""
    from facegen.data.scans.scan import ScanError
    from facegen.use.reconstruct import reconstruct

    scans = sorted(upload.glob("scan*"))
    landmarks = sorted(upload.glob("landmarks*"))
    if not scans:
        return "the upload is missing from the store (removed before the job ran)"
    try:
        reconstruct(scans[0], out, sex=sex, age=age, bmi=bmi, model=settings.model,
                    landmarks=landmarks[0] if landmarks else None, phenotype=_phenotype(upload))  # fmt: skip
    except (ValueError, ScanError) as exc:
        return str(exc).replace(str(upload), "upload")  # the message names the problem, not the server's paths
    except Exception as exc:  # noqa: BLE001 (any failure of one case is that case's outcome)
        return f"internal error while reconstructing ({type(exc).__name__}); the server log has the details"
    return None


def _phenotype(upload: Path) -> PhenotypePrediction | None:
    """Eye and hair colour (HIrisPlex) from the dosages the upload kept of its genotype file; None without one."""
    from facegen.models.appearance.hirisplex import predict_phenotype

    record = upload / HIRISPLEX_FILE
    if not record.is_file():
        return None
    genotypes, skin = load_hirisplex(record)
    return predict_phenotype(genotypes, skin=skin)


def _finish(settings: Settings, store: CaseStore, case_id: str, claimed: Claim, finished: Path,
            error: str | None) -> str:  # fmt: skip
    """Publish the case and mark it done (its files now visible), or mark it failed, log it and remove the upload:
    only while it is still running on this attempt, checked and published in one transaction (which holds the row:
    no sweep or claim comes between). The work of a worker that stalled and was taken over is discarded (the upload
    left to the attempt that runs now), as is a deleted case's."""
    status = "failed" if error else "done"
    ours = and_(Case.id == case_id, Case.status == "running", Case.attempts == claimed.attempt)
    with session_factory(settings).begin() as session:
        taken = session.execute(
            update(Case).where(ours).values(status=status, progress=1.0, error=error, finished_at=utc_now())
        ).rowcount
        if taken != 1:
            if session.get(Case, case_id) is None:
                store.remove(claimed.tenant_id, case_id)
            else:
                log.warning("case %s: attempt %d was taken over by a later one; its result is discarded", case_id,
                            claimed.attempt)  # fmt: skip
            return "skipped"
        files = [] if error else store.publish(claimed.tenant_id, case_id, finished)
        if not claimed.keep:
            shutil.rmtree(store.upload_dir(case_id), ignore_errors=True)  # personal data: not kept after the job
        session.execute(update(Case).where(Case.id == case_id).values(files=files))
        audit.record(session, tenant_id=claimed.tenant_id, actor=WORKER_ACTOR, action=f"case.{status}",
                     case_id=case_id, detail=error or f"{len(files)} files")  # fmt: skip
    return status
