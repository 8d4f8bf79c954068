"""The audit chain: appended in order per tenant, and any edit, removal or reordering is found."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from facegen.service import audit
from facegen.service.admin import create_tenant
from facegen.service.database import session_factory
from facegen.service.models import AuditEvent
from facegen.service.settings import Settings


@pytest.fixture
def logged(tmp_path) -> Settings:
    """Tenants 1 and 2 with four events between them, on SQLite."""
    settings = Settings(data=tmp_path)
    first, second = create_tenant(settings, "one"), create_tenant(settings, "two")
    with session_factory(settings).begin() as session:
        for tenant, action in [(first, "case.create"), (second, "case.create"), (first, "case.read"),
                               (first, "case.delete")]:  # fmt: skip
            audit.record(session, tenant_id=tenant, actor="key:1:fgk_abc", action=action, case_id="c1")
    return settings


def _chain(settings: Settings, tenant: int = 1) -> list[AuditEvent]:
    with session_factory(settings)() as session:
        return audit.events(session, tenant)


def test_each_tenant_has_its_own_chain_that_verifies(logged):
    one, two = _chain(logged, 1), _chain(logged, 2)
    assert [e.seq for e in one] == [1, 2, 3] and [e.seq for e in two] == [1]
    assert one[0].prev_hash == audit.GENESIS and one[1].prev_hash == one[0].hash
    assert audit.chain_problems(one) == [] and audit.chain_problems(two) == []


@pytest.mark.parametrize(
    "tamper",
    [
        update(AuditEvent).where(AuditEvent.seq == 2, AuditEvent.tenant_id == 1).values(action="case.list"),
        update(AuditEvent).where(AuditEvent.seq == 1, AuditEvent.tenant_id == 1).values(actor="key:9:fgk_x"),
        delete(AuditEvent).where(AuditEvent.seq == 2, AuditEvent.tenant_id == 1),
    ],
    ids=["edited action", "edited actor", "removed event"],
)
def test_an_edited_or_removed_event_breaks_the_chain(logged, tamper):
    with session_factory(logged).begin() as session:
        session.execute(tamper)
    problems = audit.chain_problems(_chain(logged))
    assert problems and problems[0].startswith("event ")
