"""Webhooks: when a case finishes (done or failed) its summary is POSTed to the tenant's URL, signed with HMAC-SHA256
over the raw body (`X-Facegen-Signature: sha256=<hex>`), tried again with exponential back-off, every attempt audited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from urllib.parse import urlsplit

import httpx

from facegen.service import audit
from facegen.service.database import session_factory
from facegen.service.models import Case, Tenant
from facegen.service.settings import Settings

SIGNATURE_HEADER = "X-Facegen-Signature"
EVENT = "case.finished"
ACTOR = "webhook"
log = logging.getLogger(__name__)


def new_secret() -> str:
    """A fresh webhook signing secret (256 random bits), shown once at registration."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: 'sha256=' and the hex HMAC-SHA256 under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL with a host; a ValueError naming the problem otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"webhook URL {url!r} must be an absolute http:// or https:// URL with a host")
    if len(url) > 2000:
        raise ValueError("webhook URL is longer than 2000 characters")
    return url


def summary(case: Case) -> dict:
    """What a delivery carries: the case's id, final status, files and error."""
    return {"event": EVENT, "id": case.id, "status": case.status, "files": list(case.files or []),
            "error": case.error}  # fmt: skip


def notify(settings: Settings, tenant_id: int, case_id: str) -> bool | None:
    """Deliver the finished case's summary to its tenant's webhook; True when delivered, False when every try
    failed, None when the tenant has no webhook (or the case is gone)."""
    with session_factory(settings)() as session:
        tenant, case = session.get(Tenant, tenant_id), session.get(Case, case_id)
        if tenant is None or case is None or not tenant.webhook_url or not tenant.webhook_secret:
            return None
        url, secret, body = tenant.webhook_url, tenant.webhook_secret, json.dumps(summary(case)).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body),
               "X-Facegen-Event": EVENT, "X-Facegen-Delivery": str(uuid.uuid4())}  # fmt: skip
    tries = settings.webhook_tries
    with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as client:
        for attempt in range(1, tries + 1):
            try:
                code = client.post(url, content=body, headers=headers).status_code
                outcome, delivered = f"HTTP {code}", 200 <= code < 300
            except httpx.HTTPError as exc:
                outcome, delivered = f"{type(exc).__name__}: {str(exc)[:200]}", False
            _record(settings, tenant_id, case_id, f"attempt {attempt}/{tries} to {url}: {outcome}"
                    + ("" if delivered else " (failed)"))  # fmt: skip
            if delivered:
                return True
            if attempt < tries:
                time.sleep(settings.webhook_backoff_seconds * 2 ** (attempt - 1))
    log.warning("webhook for case %s not delivered to %s after %d tries", case_id, url, tries)
    return False


def _record(settings: Settings, tenant_id: int, case_id: str, detail: str) -> None:
    """Audit one delivery attempt."""
    with session_factory(settings).begin() as session:
        audit.record(session, tenant_id=tenant_id, actor=ACTOR, action="webhook.delivery", case_id=case_id,
                     detail=detail)  # fmt: skip
