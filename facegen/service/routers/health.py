"""/healthz: whether the service answers and reaches its database (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from facegen.service.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def health(session: SessionDep) -> dict[str, str]:
    """'ok' once the database answers."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
