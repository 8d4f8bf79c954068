"""Request and response bodies of API v1 (kept apart from the database tables)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

CaseStatus = Literal["queued", "running", "done", "failed"]


class CaseCreated(BaseModel):
    """The answer to an accepted upload: poll GET /v1/cases/{id} for the outcome."""

    id: str
    status: CaseStatus


class CaseOut(BaseModel):
    """One case: its state on the queue, its progress (0..1), its files once done, the reason when failed."""

    id: str
    status: CaseStatus
    progress: float
    files: list[str]
    error: str | None
    sex: str
    age: float | None
    bmi: str
    created_at: str
    finished_at: str | None


class CaseList(BaseModel):
    """The caller's tenant's cases, newest first."""

    cases: list[CaseOut]


class AuditEventOut(BaseModel):
    """One audit event: hash = sha256(prev_hash + canonical JSON of the other fields but id)."""

    tenant_id: int
    seq: int
    at: str
    actor: str
    action: str
    case_id: str | None
    detail: str
    prev_hash: str
    hash: str


class AuditLog(BaseModel):
    """The tenant's audit chain and whether it verifies."""

    events: list[AuditEventOut]
    verified: bool
    problems: list[str]


class Me(BaseModel):
    """Who a key is: its tenant, its role (viewer, examiner or admin) and its printable prefix."""

    tenant: str
    role: Literal["viewer", "examiner", "admin"]
    key_prefix: str
