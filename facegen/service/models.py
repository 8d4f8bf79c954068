"""The service's database tables (SQLAlchemy 2): tenants, API keys, cases and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    """Now, in UTC (every stored time is UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The declarative base of every table (Alembic's migrations build the same schema)."""


class Tenant(Base):
    """An institution: its cases, keys and audit log are its own."""

    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    keep_uploads: Mapped[bool] = mapped_column(default=False)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True, default=None)
    """Where the service POSTs each finished case's summary (None: no webhook)."""
    webhook_secret: Mapped[str | None] = mapped_column(String(100), nullable=True, default=None)
    """The key the summaries are signed with (HMAC-SHA256); the server needs it in clear to sign."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ApiKey(Base):
    """A bearer key, stored only as its keyed hash (HMAC-SHA256 with the server's secret)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Case(Base):
    """One reconstruction: its state on the queue and, once done, its files."""

    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    sex: Mapped[str] = mapped_column(String(10))
    age: Mapped[float | None] = mapped_column(Float, nullable=True)
    bmi: Mapped[str] = mapped_column(String(20))
    input_name: Mapped[str] = mapped_column(String(255))
    files: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the worker running the case last said it was alive: a stale one means the job was interrupted."""


class AuditEvent(Base):
    """One access, chained to the tenant's previous event by hash: append-only, and any edit breaks the chain."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("tenant_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class RateBucket(Base):
    """A token bucket of the rate limit: `key` is 'key:<id>' for an API key or 'ip:<address>' for a caller with an
    unknown key; `tokens` is what was left at `updated` (seconds since the epoch)."""

    __tablename__ = "rate_buckets"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)
