"""Tenants and keys, made from the command line (`facegen admin`): the service's Python API for them."""

from __future__ import annotations

from sqlalchemy import select

from facegen.service.database import migrate, session_factory
from facegen.service.keys import Role, key_hash, new_key, server_secret
from facegen.service.models import ApiKey, Tenant
from facegen.service.settings import Settings


def create_tenant(settings: Settings, name: str) -> int:
    """Create tenant `name`; its id. A name in use fails."""
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"tenant name {name!r} must be 1-100 letters, digits, '-', '_' or '.'")
    migrate(settings)
    with session_factory(settings).begin() as session:
        if session.scalar(select(Tenant).where(Tenant.name == name)) is not None:
            raise ValueError(f"tenant {name!r} exists already; choose another name")
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
        return tenant.id


def create_key(settings: Settings, tenant: str, role: str) -> str:
    """A new key for `tenant` with `role`, returned once; only its keyed hash is stored."""
    parsed = Role.parse(role)
    migrate(settings)
    secret = server_secret(settings.secret_file)
    with session_factory(settings).begin() as session:
        row = session.scalar(select(Tenant).where(Tenant.name == tenant))
        if row is None:
            raise ValueError(f"no tenant {tenant!r}; create it first: facegen admin tenant create {tenant}")
        key = new_key()
        session.add(ApiKey(tenant_id=row.id, role=parsed.value, key_hash=key_hash(secret, key), prefix=key[:10]))
    return key


def set_keep_uploads(settings: Settings, tenant: str, keep: bool) -> None:
    """Turn on (or off) keeping a tenant's original uploads after their jobs (personal data: off by default)."""
    migrate(settings)
    with session_factory(settings).begin() as session:
        row = session.scalar(select(Tenant).where(Tenant.name == tenant))
        if row is None:
            raise ValueError(f"no tenant {tenant!r}; create it first: facegen admin tenant create {tenant}")
        row.keep_uploads = keep


def set_webhook(settings: Settings, tenant: str, url: str | None) -> str | None:
    """Register `url` as the tenant's webhook with a new signing secret, returned once (None with `url` None:
    the webhook is removed)."""
    from facegen.service.webhooks import check_url, new_secret

    secret = new_secret() if url is not None else None
    if url is not None:
        check_url(url)
    migrate(settings)
    with session_factory(settings).begin() as session:
        row = session.scalar(select(Tenant).where(Tenant.name == tenant))
        if row is None:
            raise ValueError(f"no tenant {tenant!r}; create it first: facegen admin tenant create {tenant}")
        row.webhook_url, row.webhook_secret = url, secret
    return secret
