"""Webhooks against a running `facegen serve`: a finished case is POSTed, HMAC-signed, to a receiver on 127.0.0.1;
a failing receiver gets it again with back-off; every attempt is in the audit log."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from facegen.cli.main import app
from tests.service.conftest import FORM, Server, free_port


class Receiver:
    """A tiny HTTP receiver on 127.0.0.1 answering each POST with the next of `codes` (then 200)."""

    def __init__(self, codes: list[int]) -> None:
        self.codes, self.posts = list(codes), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((time.monotonic(), dict(self.headers), body))
                self.send_response(receiver.codes.pop(0) if receiver.codes else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/hook"

    def wait(self, count: int, seconds: float = 300.0) -> list:
        """The POSTs once `count` have arrived (the case runs first: minutes on a loaded 2-core machine)."""
        deadline = time.monotonic() + seconds
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.posts) >= count, f"{len(self.posts)} of {count} webhook POSTs arrived"
        return self.posts


@pytest.fixture()
def hooked(case_model_run, tmp_path) -> Iterator[tuple[Server, dict[str, tuple[Receiver, str]]]]:
    """An embedded server whose tenants 'steady' and 'flaky' (500, 500, then 200) have webhooks; their secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGEN_") or k == "FACEGEN_CACHE"}
    env |= {"FACEGEN_MODEL": str(case_model_run), "FACEGEN_WEBHOOK_BACKOFF_SECONDS": "0.3"}
    server = Server(tmp_path / "data", env, free_port(), tmp_path / "serve.log")
    hooks = {}
    for tenant, codes in [("steady", []), ("flaky", [500, 500])]:
        server.facegen("admin", "tenant", "create", tenant)
        for role in ("examiner", "admin"):
            server.keys[f"{tenant}-{role}"] = server.facegen("admin", "key", "create", "--tenant", tenant, "--role",
                                                             role).strip().splitlines()[-1]  # fmt: skip
        receiver = Receiver(codes)
        secret = server.facegen("admin", "webhook", "set", "--tenant", tenant, "--url", receiver.url).strip()
        hooks[tenant] = (receiver, secret)
    try:
        server.start()
        yield server, hooks
    finally:
        server.stop()
        for receiver, _ in hooks.values():
            receiver.http.shutdown()


def _verify(secret: str, headers: dict, body: bytes) -> None:
    """The delivery's signature is HMAC-SHA256 of the raw body under the tenant's secret."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Facegen-Signature"], expected)


def test_finished_cases_are_posted_signed_and_retried_with_back_off(hooked, skull_upload):
    server, hooks = hooked
    ids = {}
    for tenant in hooks:
        with server.client(f"{tenant}-examiner") as client:
            ids[tenant] = client.post("/v1/cases", files=skull_upload, data=FORM).json()["id"]
    (steady, steady_secret), (flaky, flaky_secret) = hooks["steady"], hooks["flaky"]
    [(_, headers, body)] = steady.wait(1)
    _verify(steady_secret, headers, body)
    delivered = json.loads(body)
    state = server.wait_for("steady-examiner", ids["steady"])
    assert delivered == {"event": "case.finished", "id": ids["steady"], "status": "done", "files": state["files"],
                         "error": None}  # fmt: skip
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(AssertionError):  # a signature under another tenant's secret does not verify
        _verify(flaky_secret, headers, body)

    posts = flaky.wait(3)
    time.sleep(1.0)
    assert len(flaky.posts) == 3, "a delivery was repeated after it succeeded"
    for _, headers, body in posts:
        _verify(flaky_secret, headers, body)
        assert json.loads(body)["id"] == ids["flaky"] and json.loads(body)["status"] == "done"
    gaps = [b[0] - a[0] for a, b in zip(posts, posts[1:], strict=False)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6, f"no exponential back-off between tries: {gaps}"
    with server.client("flaky-admin") as client:
        log = client.get("/v1/audit").json()
    attempts = [e["detail"] for e in log["events"] if e["action"] == "webhook.delivery"]
    assert log["verified"] and len(attempts) == 3, attempts
    assert "HTTP 500 (failed)" in attempts[0] and "HTTP 500 (failed)" in attempts[1]
    assert attempts[2].startswith("attempt 3/5") and attempts[2].endswith("HTTP 200")


def test_webhook_commands_name_the_problem(tmp_path):
    runner, data = CliRunner(), ["--data", str(tmp_path)]
    assert runner.invoke(app, ["admin", "tenant", "create", "lab", *data]).exit_code == 0
    bad = runner.invoke(app, ["admin", "webhook", "set", "--tenant", "lab", "--url", "ftp://x/y", *data])
    assert bad.exit_code == 2 and "http:// or https://" in bad.output
    unknown = runner.invoke(app, ["admin", "webhook", "set", "--tenant", "nope", "--url", "http://127.0.0.1/", *data])
    assert unknown.exit_code == 2 and "no tenant 'nope'" in unknown.output
    first = runner.invoke(app, ["admin", "webhook", "set", "--tenant", "lab", "--url", "http://127.0.0.1:9/h", *data])
    second = runner.invoke(app, ["admin", "webhook", "set", "--tenant", "lab", "--url", "http://127.0.0.1:9/h", *data])
    assert first.exit_code == second.exit_code == 0
    assert first.output.strip().startswith("whsec_") and first.output != second.output  # a new secret each time
    assert runner.invoke(app, ["admin", "webhook", "clear", "--tenant", "lab", *data]).exit_code == 0


def _failed_case(tmp_path, url: str, tries: int) -> tuple[object, int, str, str]:
    """Settings with tenant 'lab' (webhook at `url`) and one failed case of it; the settings, tenant id, case id
    and webhook secret."""
    import uuid

    from facegen.service.admin import create_tenant, set_webhook
    from facegen.service.database import session_factory
    from facegen.service.models import Case
    from facegen.service.settings import Settings

    settings = Settings(data=tmp_path / "data", webhook_tries=tries, webhook_backoff_seconds=0.05,
                        webhook_timeout_seconds=2.0)  # fmt: skip
    tenant_id = create_tenant(settings, "lab")
    secret = set_webhook(settings, "lab", url)
    case_id = str(uuid.uuid4())
    with session_factory(settings).begin() as session:
        session.add(Case(id=case_id, tenant_id=tenant_id, status="failed", progress=1.0, sex="F", age=40.0, bmi="25",
                         input_name="scan.ply", files=[], error="the skull is cut off", attempts=1))  # fmt: skip
    return settings, tenant_id, case_id, secret


def test_a_failed_case_is_announced_with_its_error(tmp_path):
    from facegen.service.webhooks import notify

    receiver = Receiver([])
    try:
        settings, tenant_id, case_id, secret = _failed_case(tmp_path, receiver.url, tries=3)
        assert notify(settings, tenant_id, case_id) is True
    finally:
        receiver.http.shutdown()
    [(_, headers, body)] = receiver.posts
    _verify(secret, headers, body)
    assert json.loads(body) == {"event": "case.finished", "id": case_id, "status": "failed", "files": [],
                                "error": "the skull is cut off"}  # fmt: skip


def test_an_unreachable_receiver_is_tried_a_bounded_number_of_times_and_each_try_audited(tmp_path):
    from facegen.service import audit
    from facegen.service.database import session_factory
    from facegen.service.webhooks import notify

    settings, tenant_id, case_id, _ = _failed_case(tmp_path, f"http://127.0.0.1:{free_port()}/hook", tries=3)
    assert notify(settings, tenant_id, case_id) is False
    with session_factory(settings)() as session:
        chain = audit.events(session, tenant_id)
    details = [e.detail for e in chain if e.action == "webhook.delivery"]
    assert [d.split(" to ")[0] for d in details] == ["attempt 1/3", "attempt 2/3", "attempt 3/3"]
    assert all(d.endswith("(failed)") and "ConnectError" in d for d in details), details
    assert audit.chain_problems(chain) == []
