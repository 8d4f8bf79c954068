"""/v1/audit: the tenant's hash-chained audit log (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter

from facegen.service import audit
from facegen.service.deps import AUTH_RESPONSES, Admin, SessionDep
from facegen.service.schemas import AuditEventOut, AuditLog

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=AUTH_RESPONSES)


@router.get("", response_model=AuditLog)
def read_audit(caller: Admin, session: SessionDep) -> AuditLog:
    """Every event of the caller's tenant, in order, and whether the chain verifies (this read is logged too)."""
    with session.begin():
        audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor, action="audit.read")
        chain = audit.events(session, caller.tenant_id)
    out = [AuditEventOut.model_validate(e, from_attributes=True) for e in chain]
    problems = audit.chain_problems(chain)
    return AuditLog(events=out, verified=not problems, problems=problems)
