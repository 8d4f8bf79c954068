"""Request dependencies: the database session, the authenticated caller, role checks and the tenant scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from facegen.service.keys import Role
from facegen.service.ratelimit import take
from facegen.service.tenancy import Caller, Scope, authenticate

AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"description": "No API key, or an unknown one."},
    403: {"description": "The key's role may not do this."},
    429: {"description": "Over the key's rate limit; `Retry-After` says in how many seconds to try again."},
}
"""The answers every keyed endpoint may give besides its own, for the OpenAPI document."""
bearer = HTTPBearer(auto_error=False, description="An API key from `facegen admin key create`.")


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request."""
    with request.app.state.sessions() as session:
        yield session


def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: Annotated[Session, Depends(get_session)],
) -> Caller:
    """The caller of a request from its bearer key; 401 without a valid one (refused before the database when no key
    is sent), 429 once the key (or, for unknown keys, the client's address) is over the rate limit."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(401, "send your API key as 'Authorization: Bearer KEY'",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    limit = request.app.state.settings.rate_limit
    with session.begin():
        caller = authenticate(session, request.app.state.secret, credentials.credentials)
        bucket = f"key:{caller.key_id}" if caller is not None else f"ip:{_address(request)}"
        refused = take(session, bucket, limit)  # unknown keys count against the caller's address
    if refused is not None:
        whose = "this key" if caller is not None else "unknown keys from your address"
        raise HTTPException(429, f"too many requests: {whose} may make {limit.describe()}; retry in "
                                 f"{refused.retry_after_seconds} s",
                            headers={"Retry-After": str(refused.retry_after_seconds)})  # fmt: skip
    if caller is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return caller


def _address(request: Request) -> str:
    """The client's address (the proxy's, unless uvicorn trusts its forwarded headers)."""
    return request.client.host if request.client is not None else "unknown"


def require(role: Role) -> Callable[[Caller], Caller]:
    """A dependency that lets through callers whose role includes `role` (403 otherwise)."""

    def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if not caller.role.allows(role):
            raise HTTPException(403, f"a {caller.role.value} key may not do this; it needs the {role.value} role")
        return caller

    return check


def scope_of(caller: Caller, session: Session) -> Scope:
    """The caller's tenant scope: the one way routes reach cases."""
    return Scope(session, caller.tenant_id)


SessionDep = Annotated[Session, Depends(get_session)]
Viewer = Annotated[Caller, Depends(require(Role.VIEWER))]
Examiner = Annotated[Caller, Depends(require(Role.EXAMINER))]
Admin = Annotated[Caller, Depends(require(Role.ADMIN))]
