"""API v1 over HTTP against a running `facegen serve`: a case from upload to files, roles, tenants, restart."""

from __future__ import annotations

import json

from tests.service.conftest import FORM, Server


def test_openapi_document_lists_the_v1_endpoints(server: Server):
    document = httpx_get(server, "/openapi.json")
    assert {"/v1/cases", "/v1/cases/{case_id}", "/v1/cases/{case_id}/files/{name}", "/v1/audit"} <= set(
        document["paths"]
    )


def httpx_get(server: Server, path: str) -> dict:
    with server.client() as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_skull_mesh_becomes_a_done_case_with_downloadable_files(server: Server, done_case):
    assert done_case["progress"] == 1.0 and done_case["error"] is None
    assert {"case.json", "manifest.json", "report.html", "viewer.html"} <= set(done_case["files"])
    with server.client("a-viewer") as client:
        case = client.get(f"/v1/cases/{done_case['id']}/files/case.json")
        assert case.status_code == 200 and case.headers["content-disposition"].startswith("attachment")
        record = json.loads(case.content)
        assert record["metadata_given"] == {"sex": "F", "age_years": 40.0, "bmi": 25.0}
        assert len(record["variants"]) == 1
        listed = client.get("/v1/cases").json()["cases"]
        assert [c["id"] for c in listed] == [done_case["id"]] or done_case["id"] in [c["id"] for c in listed]
        assert client.get(f"/v1/cases/{done_case['id']}/files/nope.txt").status_code == 404
        assert client.get(f"/v1/cases/{done_case['id']}/files/../../secret.key").status_code == 404
    assert not any((server.data / "uploads").iterdir()), "the upload (personal data) was kept after the job"
    assert not any((server.data / "staging").iterdir()), "a staging folder was left behind"


def test_another_tenant_gets_404_on_every_endpoint_and_reads_nothing(server: Server, done_case):
    case_id = done_case["id"]
    for key in ("b-examiner", "b-admin"):
        with server.client(key) as client:
            assert client.get(f"/v1/cases/{case_id}").status_code == 404
            assert client.get(f"/v1/cases/{case_id}/files/case.json").status_code == 404
            assert client.delete(f"/v1/cases/{case_id}").status_code == 404
            assert case_id not in [c["id"] for c in client.get("/v1/cases").json()["cases"]]
    with server.client("b-admin") as client:
        assert all(e["case_id"] != case_id for e in client.get("/v1/audit").json()["events"])
    with server.client("a-viewer") as client:
        assert client.get(f"/v1/cases/{case_id}").json()["status"] == "done"  # still there, untouched
    with server.client("a-admin") as client:
        actors = {e["actor"] for e in client.get("/v1/audit").json()["events"]}
    assert not any(server.keys["b-admin"].startswith(a.split(":")[-1]) for a in actors if a.startswith("key:"))


def test_keys_and_roles_are_enforced(server: Server, done_case, skull_upload):
    with server.client() as client:
        assert client.get("/v1/cases").status_code == 401
        answer = client.get("/v1/cases", headers={"Authorization": "Bearer fgk_not-a-key"})
        assert answer.status_code == 401 and "unknown API key" in answer.json()["detail"]
    with server.client("a-viewer") as client:
        me = client.get("/v1/me").json()
        assert me == {"tenant": "a", "role": "viewer", "key_prefix": server.keys["a-viewer"][:10]}
        answer = client.post("/v1/cases", files=skull_upload, data=FORM)
        assert answer.status_code == 403 and "viewer" in answer.json()["detail"]
        assert client.delete(f"/v1/cases/{done_case['id']}").status_code == 403
        assert client.get("/v1/audit").status_code == 403
    with server.client("a-examiner") as client:
        assert client.get("/v1/audit").status_code == 403
    with server.client("b-admin") as client:
        assert client.get("/v1/me").json()["tenant"] == "b" and client.get("/v1/me").json()["role"] == "admin"


def test_answers_carry_security_headers_and_no_cors(server: Server):
    with server.client("a-viewer") as client:
        answer = client.get("/v1/cases", headers={"Origin": "https://evil.example"})
        preflight = client.options("/v1/cases", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in preflight.headers and preflight.status_code >= 400


def test_a_deleted_case_and_its_files_are_gone(server: Server, done_case, skull_upload):
    with server.client("a-examiner") as client:
        created = client.post("/v1/cases", files=skull_upload, data=FORM).json()
        state = server.wait_for("a-examiner", created["id"])
        assert state["status"] == "done", state
        folder = next((server.data / "cases").glob(f"*/{created['id']}"))
        assert (folder / "case.json").is_file()
        assert client.delete(f"/v1/cases/{created['id']}").status_code == 204
        assert client.get(f"/v1/cases/{created['id']}").status_code == 404
        assert client.get(f"/v1/cases/{created['id']}/files/case.json").status_code == 404
    assert not folder.exists()


def test_the_audit_chain_verifies_and_records_every_access(server: Server, done_case):
    import hashlib

    with server.client("a-admin") as client:
        log = client.get("/v1/audit").json()
    assert log["verified"] is True and log["problems"] == []
    prev = "0" * 64
    for event in log["events"]:  # recomputed here, independently of the server's own check
        body = {k: event[k] for k in ("tenant_id", "seq", "at", "actor", "action", "case_id", "detail")}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        assert event["prev_hash"] == prev
        assert event["hash"] == hashlib.sha256((prev + canonical).encode()).hexdigest()
        prev = event["hash"]
    actions = {(e["action"], e["case_id"]) for e in log["events"]}
    case_id = done_case["id"]
    for action in ("case.create", "case.read", "file.download", "case.done"):
        assert (action, case_id) in actions, action
    assert any(a == "case.delete" for a, _ in actions)
    assert [e["seq"] for e in log["events"]] == list(range(1, len(log["events"]) + 1))


def test_a_restarted_server_keeps_its_cases(server: Server, done_case):
    server.stop()
    server.start()
    with server.client("a-viewer") as client:
        state = client.get(f"/v1/cases/{done_case['id']}").json()
        assert state["status"] == "done" and state["files"] == done_case["files"]
        assert json.loads(client.get(f"/v1/cases/{done_case['id']}/files/case.json").content)["variants"]


def test_the_server_runs_on_the_configured_backend(server: Server, done_case):
    on_postgres = "FACEGEN_DATABASE_URL" in server.env
    assert (server.data / "facegen.db").exists() is not on_postgres
    assert (server.data / "queue.db").exists() is not on_postgres
    if on_postgres:
        import redis

        clients = redis.Redis(host="127.0.0.1", port=6379).client_list()
        assert any(c["name"] == server.env["FACEGEN_QUEUE_NAME"] for c in clients)  # the queue's consumer


def test_a_scan_reconstruct_refuses_ends_failed_with_its_reason(server: Server):
    broken = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n"  # passes the upload checks
    with server.client("a-examiner") as client:
        answer = client.post("/v1/cases", files={"scan": ("skull.ply", broken, "application/octet-stream")}, data=FORM)
        assert answer.status_code == 202, answer.text
        state = server.wait_for("a-examiner", answer.json()["id"])
    assert state["status"] == "failed" and state["files"] == [] and state["error"], state
    assert str(server.data) not in state["error"]  # the reason names the problem, not the server's folders
    assert not any((server.data / "uploads").iterdir())
