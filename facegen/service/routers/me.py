"""/v1/me: the caller's tenant and role, so that a client (the browser app) offers only what the key may do."""

from __future__ import annotations

from fastapi import APIRouter

from facegen.service.deps import AUTH_RESPONSES, SessionDep, Viewer, scope_of
from facegen.service.schemas import Me

router = APIRouter(prefix="/v1/me", tags=["me"], responses=AUTH_RESPONSES)


@router.get("", response_model=Me)
def read_me(caller: Viewer, session: SessionDep) -> Me:
    """The key's tenant, role and prefix (no case is read, so nothing is audited)."""
    with session.begin():
        tenant = scope_of(caller, session).tenant().name
    return Me(tenant=tenant, role=caller.role.value, key_prefix=caller.key_prefix)
