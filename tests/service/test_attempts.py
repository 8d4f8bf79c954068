"""The retry limit and the double-run guard of the case job, in process on SQLite: a case interrupted
`max_attempts` times is failed instead of queued forever; a stalled worker whose case was taken over by a later
attempt discards its work instead of publishing it a second time."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from facegen.service import jobs
from facegen.service.admin import create_tenant
from facegen.service.database import session_factory
from facegen.service.models import AuditEvent, Case, utc_now
from facegen.service.settings import Settings, load_settings
from facegen.service.storage import CaseStore


@pytest.fixture
def settings(tmp_path) -> Settings:
    """An embedded service's settings (jobs at the caller's priority) with tenant 'lab'."""
    settings = Settings(data=tmp_path / "data", job_nice=0)
    create_tenant(settings, "lab")
    return settings


def _case(settings: Settings, **values: object) -> str:
    """A case of tenant 'lab' (queued unless `values` say otherwise) with its upload in the store; its id."""
    case_id = str(uuid.uuid4())
    row = {"status": "queued", "progress": 0.0, "files": [], "attempts": 0} | values
    with session_factory(settings).begin() as session:
        session.add(Case(id=case_id, tenant_id=1, sex="F", age=40.0, bmi="25", input_name="scan.ply", **row))
    upload = CaseStore(settings.data).upload_dir(case_id)
    upload.mkdir(parents=True)
    (upload / "scan.ply").write_bytes(b"ply\n")
    return case_id


def _row(settings: Settings, case_id: str) -> Case:
    with session_factory(settings)() as session:
        return session.get_one(Case, case_id)


def _actions(settings: Settings, case_id: str) -> list[tuple[str, str]]:
    with session_factory(settings)() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq))
        return [(e.action, e.detail) for e in events]


def _stall(settings: Settings, case_id: str) -> None:
    """Make the case's running worker look dead: its last heartbeat an hour ago."""
    with session_factory(settings).begin() as session:
        session.execute(update(Case).where(Case.id == case_id).values(heartbeat_at=utc_now() - timedelta(hours=1)))


def _no_reconstruct(*args: object, **kwargs: object) -> str:
    raise AssertionError("a case past its attempt limit was run")


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_case_interrupted_max_attempts_times_fails_instead_of_running(settings, status, monkeypatch):
    monkeypatch.setattr(jobs, "_reconstruct", _no_reconstruct)
    case_id = _case(settings, status=status, attempts=3)  # three runs started, none finished: each one interrupted
    if status == "running":
        _stall(settings, case_id)
    store = CaseStore(settings.data)
    (store.staging_dir(case_id) / "attempt-3" / "case").mkdir(parents=True)  # what the last attempt left
    assert jobs.claim(settings, case_id) is None
    assert jobs.run_case(settings, case_id) == "failed"
    case = _row(settings, case_id)
    assert case.status == "failed" and case.files == [] and case.attempts == 3 and case.finished_at is not None
    assert "interrupted 3 times" in case.error and "FACEGEN_MAX_ATTEMPTS" in case.error
    assert _actions(settings, case_id) == [("case.failed", case.error)]
    assert not store.upload_dir(case_id).exists() and not store.staging_dir(case_id).exists()
    assert not store.case_dir(1, case_id).exists()
    assert jobs.run_case(settings, case_id) == "skipped"  # a duplicate message changes nothing
    assert _actions(settings, case_id) == [("case.failed", case.error)]


def test_a_case_below_the_limit_runs_and_the_limit_is_a_setting(settings, monkeypatch):
    case_id = _case(settings, attempts=2)
    claimed = jobs.claim(settings, case_id)
    assert claimed is not None and claimed.attempt == 3 and _row(settings, case_id).status == "running"
    five = _case(settings, attempts=4)
    assert jobs.claim(Settings(data=settings.data, max_attempts=5), five).attempt == 5
    monkeypatch.setenv("FACEGEN_MAX_ATTEMPTS", "5")
    assert load_settings(settings.data).max_attempts == 5
    monkeypatch.setenv("FACEGEN_MAX_ATTEMPTS", "0")
    assert load_settings(settings.data).max_attempts == 1
    monkeypatch.setenv("FACEGEN_MAX_ATTEMPTS", "many")
    with pytest.raises(ValueError, match="FACEGEN_MAX_ATTEMPTS='many' must be a whole number"):
        load_settings(settings.data)
    monkeypatch.delenv("FACEGEN_MAX_ATTEMPTS")
    assert load_settings(settings.data).max_attempts == 3


def _finished(folder: Path, text: str) -> Path:
    """A finished case folder as `reconstruct` leaves it, holding `text`."""
    folder.mkdir(parents=True)
    (folder / "case.json").write_text(text)
    return folder


def test_a_stalled_worker_taken_over_discards_its_work(settings, tmp_path):
    case_id = _case(settings)
    store = CaseStore(settings.data)
    first = jobs.claim(settings, case_id)
    _stall(settings, case_id)  # the first worker stalls past the stale time (alive, but silent) ...
    assert jobs.requeue_stale(settings, lambda _: None) == [case_id]  # ... the sweep queues the case again
    second = jobs.claim(settings, case_id)
    assert (first.attempt, second.attempt) == (1, 2) and jobs.claim(settings, case_id) is None
    stamped = _row(settings, case_id).heartbeat_at
    with jobs._Heartbeat(Settings(data=settings.data, stale_seconds=1), case_id, first.attempt):
        time.sleep(0.8)  # the first worker's heartbeat beats once: it stamps nothing of the second's run
    assert _row(settings, case_id).heartbeat_at == stamped

    answer = jobs._finish(settings, store, case_id, first, _finished(tmp_path / "first", "first"), None)
    assert answer == "skipped"  # the first worker wakes up and finishes: discarded, nothing published
    case = _row(settings, case_id)
    assert (case.status, case.attempts, case.files) == ("running", 2, [])
    assert not store.case_dir(1, case_id).exists() and store.upload_dir(case_id).is_dir()  # the second still needs it

    assert jobs._finish(settings, store, case_id, second, _finished(tmp_path / "second", "second"), None) == "done"
    assert (store.case_dir(1, case_id) / "case.json").read_text() == "second"
    assert _row(settings, case_id).files == ["case.json"] and not store.upload_dir(case_id).exists()
    assert [a for a, _ in _actions(settings, case_id)] == ["case.requeue", "case.done"]
    assert jobs._finish(settings, store, case_id, first, _finished(tmp_path / "late", "late"), "boom") == "skipped"
    assert _row(settings, case_id).status == "done"  # a late failure does not undo the published case either


def test_a_run_taken_over_mid_job_is_published_once_by_the_later_run(settings, monkeypatch):
    case_id = _case(settings)
    runs: list[str] = []

    def reconstruct(settings: Settings, upload: Path, out: Path, **metadata: object) -> None:
        runs.append(out.parent.name)
        if len(runs) == 1:  # the first run stalls; meanwhile the sweep queues the case again and a worker runs it
            _stall(settings, case_id)
            assert jobs.requeue_stale(settings, lambda _: None) == [case_id]
            assert jobs.run_case(settings, case_id) == "done"
        _finished(out, out.parent.name)

    monkeypatch.setattr(jobs, "_reconstruct", reconstruct)
    assert jobs.run_case(settings, case_id) == "skipped"
    assert runs == ["attempt-1", "attempt-2"]
    store = CaseStore(settings.data)
    assert (store.case_dir(1, case_id) / "case.json").read_text() == "attempt-2"
    assert [a for a, _ in _actions(settings, case_id)] == ["case.requeue", "case.done"]
    assert not store.staging_dir(case_id).exists() and not store.upload_dir(case_id).exists()
