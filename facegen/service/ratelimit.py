"""Rate limits in one place: a token bucket per API key (and per client address for unknown keys), kept in the
database so that every `facegen serve` process on the same database shares it.

A bucket holds at most `burst` tokens and refills at `per_minute / 60` tokens a second; each request takes one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from facegen.service.models import RateBucket


@dataclass(frozen=True)
class RateLimit:
    """`per_minute` requests a minute on average, `burst` at once; `per_minute` 0 turns the limit off."""

    per_minute: float
    burst: int

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.per_minute > 0

    @property
    def per_second(self) -> float:
        """Tokens added to a bucket each second."""
        return self.per_minute / 60.0

    def describe(self) -> str:
        """The limit in words, for the 429 message."""
        return f"{self.per_minute:g} requests a minute (bursts of {self.burst})"


@dataclass(frozen=True)
class Refused:
    """A request over the limit: how long to wait before the next one is let through."""

    retry_after_seconds: int


def take(session: Session, bucket: str, limit: RateLimit, *, now: float | None = None) -> Refused | None:
    """Take one token from `bucket` in the caller's transaction (its row locked meanwhile); None when the request
    may go on, Refused with the wait when the bucket is empty."""
    if not limit.enabled:
        return None
    now = time.time() if now is None else now
    _ensure(session, bucket, limit, now)
    row = session.execute(
        select(RateBucket.tokens, RateBucket.updated).where(RateBucket.key == bucket).with_for_update()
    ).one()
    tokens = min(float(limit.burst), row.tokens + max(now - row.updated, 0.0) * limit.per_second)
    allowed = tokens >= 1.0
    values = {"tokens": tokens - 1.0 if allowed else tokens, "updated": max(now, row.updated)}
    session.execute(update(RateBucket).where(RateBucket.key == bucket).values(**values))
    if allowed:
        return None
    return Refused(max(1, math.ceil((1.0 - tokens) / limit.per_second)))


def _ensure(session: Session, bucket: str, limit: RateLimit, now: float) -> None:
    """Create a full bucket unless it exists (two servers creating the same one at once both succeed)."""
    values = {"key": bucket, "tokens": float(limit.burst), "updated": now}
    dialect = session.get_bind().dialect.name
    if dialect in {"sqlite", "postgresql"}:
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        session.execute(insert(RateBucket).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    elif session.get(RateBucket, bucket) is None:
        with session.begin_nested():
            session.add(RateBucket(**values))


def prune(session: Session, limit: RateLimit, *, now: float | None = None) -> int:
    """Delete the buckets that have refilled completely (the same as no bucket), so that the table stays small;
    how many were deleted."""
    if not limit.enabled:
        return 0
    now = time.time() if now is None else now
    full_since = now - limit.burst / limit.per_second
    return session.execute(delete(RateBucket).where(RateBucket.updated < full_since)).rowcount
