"""The service's settings, read from the environment once into one typed object."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from facegen.service.ratelimit import RateLimit

ENV_PREFIX = "FACEGEN_"
MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Every knob of the service; defaults run everything embedded under `data` (SQLite, SQLite queue, files)."""

    data: Path
    database_url: str | None = None
    """PostgreSQL (or any SQLAlchemy URL) instead of SQLite under `data`."""
    queue_url: str | None = None
    """redis://... for a Redis queue instead of SQLite under `data`."""
    queue_name: str = "facegen"
    """The queue's name: the key prefix on Redis, so that several services can share one server."""
    model: str = "default"
    """The model every case is reconstructed with: 'default' or a run folder from `facegen train`."""
    max_upload_bytes: int = 512 * MB
    max_archive_members: int = 5000
    max_unpacked_bytes: int = 2048 * MB
    max_compression_ratio: float = 200.0
    stale_seconds: int = 120
    """A running case whose worker has not reported for this long was interrupted and is run again."""
    max_attempts: int = 3
    """How many times a case is started at most: one whose job was interrupted this often (it kills its worker,
    out of memory) is failed instead of being queued again forever."""
    job_nice: int = 10
    """The nice value jobs run at (0: as the server): status calls stay quick while cases keep every core busy."""
    sweep_seconds: float = 30.0
    """How often every server and worker looks for such interrupted cases and queues them again."""
    rate_per_minute: float = 600.0
    """Requests a minute each API key may make on average (0: no limit); unknown keys count per client address."""
    rate_burst: int = 120
    """Requests a key may make at once before the average applies."""
    keep_uploads: bool = False
    """Keep the original upload beside the case (personal data: off unless an institution turns it on)."""
    webhook_tries: int = 5
    """How many times a webhook delivery is tried before it is given up (each attempt is in the audit log)."""
    webhook_backoff_seconds: float = 2.0
    """The wait before the second try; it doubles before each further one."""
    webhook_timeout_seconds: float = 10.0

    @property
    def resolved_database_url(self) -> str:
        """The database URL: the configured one, else SQLite (WAL) under `data`."""
        return self.database_url or f"sqlite:///{self.data / 'facegen.db'}"

    @property
    def rate_limit(self) -> RateLimit:
        """The per-key rate limit."""
        return RateLimit(self.rate_per_minute, self.rate_burst)

    @property
    def cases_dir(self) -> Path:
        return self.data / "cases"

    @property
    def uploads_dir(self) -> Path:
        return self.data / "uploads"

    @property
    def staging_dir(self) -> Path:
        return self.data / "staging"

    @property
    def secret_file(self) -> Path:
        return self.data / "secret.key"


def _int(name: str, default: int) -> int:
    text = os.environ.get(ENV_PREFIX + name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name}={text!r} must be a whole number") from None


def _float(name: str, default: float, unit: str = "a number of seconds") -> float:
    text = os.environ.get(ENV_PREFIX + name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{ENV_PREFIX}{name}={text!r} must be {unit}, 0 or more")
    return value


def _flag(name: str) -> bool:
    text = os.environ.get(ENV_PREFIX + name, "0").strip().lower()
    if text not in {"0", "1", "true", "false", "yes", "no", ""}:
        raise ValueError(f"{ENV_PREFIX}{name}={text!r} must be 1/0, true/false or yes/no")
    return text in {"1", "true", "yes"}


def load_settings(data: Path | str | None = None) -> Settings:
    """Settings from FACEGEN_* variables; `data` (the --data option) wins over FACEGEN_DATA."""
    folder = data if data is not None else os.environ.get(ENV_PREFIX + "DATA")
    if not folder:
        raise ValueError("no data folder: pass --data DIR or set FACEGEN_DATA")
    return Settings(
        data=Path(folder).expanduser().resolve(),
        database_url=os.environ.get(ENV_PREFIX + "DATABASE_URL") or None,
        queue_url=os.environ.get(ENV_PREFIX + "QUEUE_URL") or None,
        queue_name=os.environ.get(ENV_PREFIX + "QUEUE_NAME", "facegen"),
        model=os.environ.get(ENV_PREFIX + "MODEL", "default"),
        max_upload_bytes=_int("MAX_UPLOAD_MB", 512) * MB,
        max_archive_members=_int("MAX_ARCHIVE_MEMBERS", 5000),
        max_unpacked_bytes=_int("MAX_UNPACKED_MB", 2048) * MB,
        stale_seconds=_int("STALE_SECONDS", 120),
        max_attempts=max(_int("MAX_ATTEMPTS", 3), 1),
        sweep_seconds=max(_float("SWEEP_SECONDS", 30.0), 0.1),
        job_nice=min(max(_int("JOB_NICE", 10), 0), 19),
        rate_per_minute=_float("RATE_LIMIT", 600.0, "a number of requests a minute"),
        rate_burst=max(_int("RATE_BURST", 120), 1),
        keep_uploads=_flag("KEEP_UPLOADS"),
        webhook_tries=max(_int("WEBHOOK_TRIES", 5), 1),
        webhook_backoff_seconds=_float("WEBHOOK_BACKOFF_SECONDS", 2.0),
    )  # fmt: skip
