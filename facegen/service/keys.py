"""API keys: made at random, shown once, stored only as HMAC-SHA256 under a secret kept in DATA."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from enum import StrEnum
from pathlib import Path

KEY_PREFIX = "fgk_"


class Role(StrEnum):
    """What a key may do: a viewer reads, an examiner also creates and deletes cases, an admin also reads audit."""

    VIEWER = "viewer"
    EXAMINER = "examiner"
    ADMIN = "admin"

    @staticmethod
    def parse(text: str) -> Role:
        """The role named `text`; an unknown name fails and lists the known ones."""
        try:
            return Role(text)
        except ValueError:
            raise ValueError(f"role {text!r} is unknown; use one of {', '.join(r.value for r in Role)}") from None

    def allows(self, needed: Role) -> bool:
        """Whether this role includes the rights of `needed` (viewer < examiner < admin)."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


def server_secret(path: Path) -> bytes:
    """The server's key-hashing secret, made once (readable by the owner only) and kept under DATA."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        with contextlib.suppress(FileExistsError):  # first writer wins; a racing one reads the winner's secret
            os.link(path.with_suffix(".tmp"), path)
        path.with_suffix(".tmp").unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) < 32:
        raise ValueError(f"{path} is not a facegen server secret (too short); restore it from a backup")
    return secret


def new_key() -> str:
    """A fresh bearer key (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(secret: bytes, key: str) -> str:
    """The stored form of a key: HMAC-SHA256 under the server secret (a leaked database gives no keys)."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()
