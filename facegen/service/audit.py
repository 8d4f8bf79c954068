"""The audit log in one place: append-only events per tenant, each chained to the previous one by SHA-256."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegen.service.models import AuditEvent, Tenant, utc_now

GENESIS = "0" * 64
"""The previous hash of a tenant's first event."""


def event_hash(prev_hash: str, *, tenant_id: int, seq: int, at: str, actor: str, action: str,
               case_id: str | None, detail: str) -> str:  # fmt: skip
    """SHA-256 of the previous hash and the event's fields as canonical JSON (sorted keys, no spaces)."""
    body = {"tenant_id": tenant_id, "seq": seq, "at": at, "actor": actor, "action": action, "case_id": case_id,
            "detail": detail}  # fmt: skip
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def record(session: Session, *, tenant_id: int, actor: str, action: str, case_id: str | None = None,
           detail: str = "") -> AuditEvent:  # fmt: skip
    """Append one event to the tenant's chain (in the caller's transaction; the tenant row is locked meanwhile)."""
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())  # one appender at a time
    last = session.scalar(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.seq.desc()).limit(1)
    )
    seq, prev = (1, GENESIS) if last is None else (last.seq + 1, last.hash)
    at = utc_now().isoformat(timespec="microseconds")
    fields = {"tenant_id": tenant_id, "seq": seq, "at": at, "actor": actor, "action": action, "case_id": case_id,
              "detail": detail}  # fmt: skip
    event = AuditEvent(**fields, prev_hash=prev, hash=event_hash(prev, **fields))
    session.add(event)
    session.flush()
    return event


def events(session: Session, tenant_id: int) -> list[AuditEvent]:
    """The tenant's events in order."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.seq)
    return list(session.scalars(query))


def chain_problems(chain: Iterable[AuditEvent]) -> list[str]:
    """Where the chain is broken (a missing, reordered or edited event); empty when it verifies."""
    problems, prev, expected_seq = [], GENESIS, 1
    for e in chain:
        if e.seq != expected_seq:
            problems.append(f"event {e.seq}: expected sequence number {expected_seq}")
        fields = {"tenant_id": e.tenant_id, "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                  "case_id": e.case_id, "detail": e.detail}  # fmt: skip
        if e.prev_hash != prev or e.hash != event_hash(prev, **fields):
            problems.append(f"event {e.seq}: hash does not match its content and predecessor")
        prev, expected_seq = e.hash, e.seq + 1
    return problems
