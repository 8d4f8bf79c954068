"""Tenant scoping in one place: every read or change of a case goes through a Scope, so none can cross tenants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegen.service.keys import Role, key_hash
from facegen.service.models import ApiKey, Case, Tenant


def is_case_id(text: str) -> bool:
    """Whether `text` is a case id as the service makes them (a UUID in its canonical form)."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


class CaseNotFoundError(LookupError):
    """A case that does not exist for this tenant (another tenant's case is not found either)."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: their tenant, their key (by id and printable prefix) and role."""

    tenant_id: int
    key_id: int
    key_prefix: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names the caller: the key's id and its printable prefix, never the key."""
        return f"key:{self.key_id}:{self.key_prefix}"


def authenticate(session: Session, secret: bytes, key: str) -> Caller | None:
    """The caller holding `key`, or None for an unknown key."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(secret, key)))
    if row is None:
        return None
    return Caller(row.tenant_id, row.id, row.prefix, Role(row.role))


@dataclass(frozen=True)
class Scope:
    """The cases of one tenant: the only way the API reaches the cases table."""

    session: Session
    tenant_id: int

    def cases(self) -> list[Case]:
        """The tenant's cases, newest first."""
        query = select(Case).where(Case.tenant_id == self.tenant_id).order_by(Case.created_at.desc(), Case.id)
        return list(self.session.scalars(query))

    def case(self, case_id: str) -> Case:
        """The tenant's case `case_id`; CaseNotFoundError for an unknown id or another tenant's."""
        if not is_case_id(case_id):  # not an id the service hands out: not found, and never sent to the database
            raise CaseNotFoundError(f"no case {case_id[:40]!r}")
        row = self.session.scalar(select(Case).where(Case.id == case_id, Case.tenant_id == self.tenant_id))
        if row is None:
            raise CaseNotFoundError(f"no case {case_id}")
        return row

    def add(self, case: Case) -> Case:
        """Add a new case to this tenant."""
        case.tenant_id = self.tenant_id
        self.session.add(case)
        return case

    def tenant(self) -> Tenant:
        """The tenant row itself (its settings)."""
        return self.session.get_one(Tenant, self.tenant_id)
