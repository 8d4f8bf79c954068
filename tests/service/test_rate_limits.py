"""Rate limits over HTTP: a token bucket per key, shared by two `facegen serve` processes on one database; unknown
keys count per client address; a request without a key is refused before any of that."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.service.conftest import BACKENDS, Server, backend_env, clean_env, free_port

PER_MINUTE, BURST = 30, 4
"""One token every 2 s: the few requests of a test land well within one refill."""


@pytest.fixture(scope="module", params=BACKENDS)
def two_servers(request, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    """Two servers (no queue workers) on the same data folder and database, as behind a load balancer."""
    with backend_env(request.param) as extra:
        env = clean_env(FACEGEN_RATE_LIMIT=str(PER_MINUTE), FACEGEN_RATE_BURST=str(BURST), **extra)
        folder = tmp_path_factory.mktemp("limited")
        first = Server(folder / "data", env, free_port(), folder / "first.log", workers=0)
        first.add_tenant("lab", "examiner", "viewer")
        second = Server(folder / "data", env, free_port(), folder / "second.log", keys=first.keys, workers=0)
        try:
            first.launch()
            second.launch()
            first.wait_ready()
            second.wait_ready()
            yield first, second
        finally:
            second.stop()
            first.stop()


def _alternate(servers: tuple[Server, Server], n: int, headers: dict[str, str]) -> list[httpx.Response]:
    """`n` calls of GET /v1/cases, alternately on each server."""
    answers = []
    for i in range(n):
        with httpx.Client(base_url=servers[i % 2].url, headers=headers, timeout=30.0) as client:
            answers.append(client.get("/v1/cases"))
    return answers


def test_a_key_over_its_limit_gets_429_with_retry_after_on_every_server(two_servers):
    first, second = two_servers
    answers = _alternate(two_servers, BURST + 2, {"Authorization": f"Bearer {first.keys['lab-examiner']}"})
    assert [a.status_code for a in answers] == [200] * BURST + [429] * 2
    refused = answers[-1]
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60 / PER_MINUTE
    assert refused.json()["detail"].startswith("too many requests: this key may make 30 requests a minute")
    assert refused.headers["x-content-type-options"] == "nosniff"  # the refusal carries the security headers too
    with second.client("lab-viewer") as client:
        assert client.get("/v1/cases").status_code == 200  # another key has its own bucket
    time.sleep(wait)
    with second.client("lab-examiner") as client:
        assert client.get("/v1/cases").status_code == 200  # Retry-After was honest: a token is back


def test_unknown_keys_count_per_address_and_no_key_is_refused_before_any_bucket(two_servers):
    first, _ = two_servers
    answers = [_alternate(two_servers, 1, {"Authorization": f"Bearer fgk_guess{i}"})[0] for i in range(BURST + 2)]
    assert [a.status_code for a in answers] == [401] * BURST + [429] * 2
    assert "unknown keys from your address" in answers[-1].json()["detail"] and answers[-1].headers["retry-after"]
    assert [a.status_code for a in _alternate(two_servers, 2 * BURST, {})] == [401] * 2 * BURST
    with first.client("lab-viewer") as client:
        assert client.get("/v1/cases").status_code == 200  # a valid key from the same address is not held up


def test_the_limit_is_documented_in_the_openapi_document(two_servers):
    document = httpx.get(two_servers[0].url + "/openapi.json").json()
    answers = document["paths"]["/v1/cases/{case_id}"]["get"]["responses"]
    assert {"401", "429"} <= set(answers) and "Retry-After" in answers["429"]["description"]


def test_a_bucket_refills_at_its_rate_and_refilled_buckets_are_pruned(tmp_path):
    from facegen.service.database import migrate, session_factory
    from facegen.service.ratelimit import RateLimit, Refused, prune, take
    from facegen.service.settings import Settings

    settings = Settings(data=tmp_path)
    migrate(settings)
    limit = RateLimit(per_minute=60, burst=2)  # a token a second
    with session_factory(settings).begin() as session:
        assert take(session, "key:1", limit, now=100.0) is None and take(session, "key:1", limit, now=100.0) is None
        assert take(session, "key:1", limit, now=100.5) == Refused(1)  # half a token back: wait half a second more
        assert take(session, "key:1", limit, now=101.0) is None
        assert take(session, "key:2", limit, now=101.0) is None  # a bucket of its own
        assert take(session, "key:1", RateLimit(per_minute=0, burst=1), now=101.0) is None  # 0: no limit
    with session_factory(settings).begin() as session:
        assert prune(session, limit, now=102.5) == 0  # not yet full again
        assert prune(session, limit, now=103.5) == 2  # both full after burst / rate = 2 s: gone
