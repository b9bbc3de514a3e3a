"""Rate limits per API key: RateLimit-* headers on every authenticated response, a JSON 429
with Retry-After past the budget, a default from settings and a budget per key (admin API and
CLI); in memory by default, shared through Redis across API processes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from orchestrator.cli.main import main
from orchestrator.storage.models import ApiKey, AuditEntry
from tests.conftest import require_redis

REDIS_URL = "redis://127.0.0.1:6379/12"


def _key_id(headers) -> str:
    return headers["Authorization"].split("_")[1]


def _id_of(state, headers) -> str:
    with state.db.session() as s:
        return s.scalar(select(ApiKey.id).where(ApiKey.prefix == _key_id(headers)))


def test_headers_count_down_then_json_429_with_retry_after(make_app, make_key):
    app = make_app(RATE_LIMIT_PER_MINUTE=5)
    client = app.test_client()
    key = make_key(("read", "recipients"), name="limited")
    other = make_key(("read",), name="other")
    remaining = []
    for _ in range(5):
        r = client.get("/v1/recipients/u-1", headers=key)
        assert r.status_code == 404
        assert r.headers["RateLimit-Limit"] == "5"
        assert 1 <= int(r.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(r.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    r = client.get("/v1/recipients/u-1", headers=key)
    assert r.status_code == 429
    error = r.get_json()["error"]
    assert error["code"] == "rate_limited" and error["field"] == "Authorization" and "5 requests" in error["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["RateLimit-Remaining"] == "0"
    # a 403 counts (and answers with headers) too; other keys have their own budget
    assert client.post("/v1/messages", headers=key, json={}).status_code == 429
    r = client.get("/v1/messages/nope", headers=other)
    assert r.status_code == 404 and r.headers["RateLimit-Remaining"] == "4"


def test_unauthenticated_responses_carry_no_rate_headers(make_app):
    client = make_app(RATE_LIMIT_PER_MINUTE=5).test_client()
    assert "RateLimit-Limit" not in client.get("/healthz").headers
    r = client.get("/v1/recipients/u-1")
    assert r.status_code == 401 and "RateLimit-Limit" not in r.headers


def test_zero_means_unlimited(make_app, make_key):
    client = make_app(RATE_LIMIT_PER_MINUTE=0).test_client()
    key = make_key(("read",))
    for _ in range(30):
        r = client.get("/v1/messages/nope", headers=key)
        assert r.status_code == 404 and "RateLimit-Limit" not in r.headers


def test_admin_sets_a_budget_per_key_audited(make_app, make_key, state):
    app = make_app(RATE_LIMIT_PER_MINUTE=100)
    client = app.test_client()
    admin = make_key(("admin",), name="root")
    key = make_key(("read",), name="small")
    key_id = _id_of(state, key)
    r = client.put(f"/v1/keys/{key_id}/rate-limit", headers=admin,
                   json={"rate_limit_per_minute": 2, "reason": "noisy batch job"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["rate_limit_per_minute"] == 2
    assert [client.get("/v1/messages/x", headers=key).status_code for _ in range(3)] == [404, 404, 429]
    assert client.get("/v1/messages/x", headers=admin).headers["RateLimit-Limit"] == "100"
    listed = {k["id"]: k for k in client.get("/v1/keys", headers=admin).get_json()["keys"]}
    assert listed[key_id]["rate_limit_per_minute"] == 2
    r = client.put(f"/v1/keys/{key_id}/rate-limit", headers=admin,
                   json={"rate_limit_per_minute": None, "reason": "back to normal"})
    assert r.status_code == 200 and r.get_json()["rate_limit_per_minute"] is None
    with state.db.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "key.rate_limit")
                            .order_by(AuditEntry.id)).all()
        assert [(e.detail["before"], e.detail["after"], e.actor) for e in entries] == [
            (None, 2, "root"), (2, None, "root")]


@pytest.mark.parametrize("body, field, code", [
    ({"rate_limit_per_minute": 0, "reason": "r"}, "rate_limit_per_minute", "validation_error"),
    ({"rate_limit_per_minute": 10**7, "reason": "r"}, "rate_limit_per_minute", "validation_error"),
    ({"rate_limit_per_minute": "many", "reason": "r"}, "rate_limit_per_minute", "validation_error"),
    ({"rate_limit_per_minute": 5}, "reason", "validation_error"),
    ({"rate_limit_per_minute": 5, "reason": ""}, "reason", "validation_error"),
    ({"rate_limit_per_minute": 5, "reason": "x" * 2001}, "reason", "validation_error"),
    ({"rate_limit_per_minute": 5, "reason": "r", "burst": 1}, "burst", "validation_error"),
])
def test_bad_rate_limit_bodies_are_named(make_app, make_key, state, body, field, code):
    client = make_app().test_client()
    admin = make_key(("admin",))
    r = client.put(f"/v1/keys/{_id_of(state, admin)}/rate-limit", headers=admin, json=body)
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["field"] == field and r.get_json()["error"]["code"] == code


@pytest.mark.parametrize("raw, code", [
    (b'{"rate_limit_per_minute": 1e400, "reason": "r"}', "invalid_number"),
    (b'{"rate_limit_per_minute": NaN, "reason": "r"}', "invalid_number"),
    (b'{"rate_limit_per_minute": 5, "reason": "a\\u0000b"}', "invalid_character"),
    (b'{"rate_limit_per_minute": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nesting_too_deep"),
])
def test_hostile_rate_limit_bodies_are_4xx(make_app, make_key, state, raw, code):
    client = make_app().test_client()
    admin = make_key(("admin",))
    r = client.put(f"/v1/keys/{_id_of(state, admin)}/rate-limit", headers={**admin, "Content-Type": "application/json"},
                   data=raw)
    assert 400 <= r.status_code < 500 and r.get_json()["error"]["code"] == code


def test_rate_limit_route_needs_admin_and_a_known_key(make_app, make_key):
    client = make_app().test_client()
    admin, reader = make_key(("admin",)), make_key(("read",))
    body = {"rate_limit_per_minute": 5, "reason": "r"}
    assert client.put("/v1/keys/nope/rate-limit", headers=reader, json=body).status_code == 403
    r = client.put("/v1/keys/nope/rate-limit", headers=admin, json=body)
    assert r.status_code == 404 and r.get_json()["error"]["field"] == "key_id"


def test_cli_creates_and_sets_a_key_budget(make_app, settings_env):
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--name", "cli", "--scopes", "read", "--rate-limit", "3"],
                            env=settings_env, catch_exceptions=False)
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["rate_limit_per_minute"] == 3
    client = make_app(RATE_LIMIT_PER_MINUTE=100).test_client()
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert client.get("/v1/messages/x", headers=headers).headers["RateLimit-Limit"] == "3"
    changed = runner.invoke(main, ["keys", "set-rate", key["id"], "--per-minute", "default", "--reason", "ok"],
                            env=settings_env, catch_exceptions=False)
    assert changed.exit_code == 0 and json.loads(changed.stdout)["rate_limit_per_minute"] is None
    bad = runner.invoke(main, ["keys", "set-rate", key["id"], "--per-minute", "lots", "--reason", "x"],
                        env=settings_env)
    assert bad.exit_code == 2 and "--per-minute" in bad.output
    unknown = runner.invoke(main, ["keys", "set-rate", "nope", "--per-minute", "5", "--reason", "x"],
                            env=settings_env)
    assert unknown.exit_code == 1 and "no API key" in unknown.output


@pytest.fixture
def redis_env():
    return {"REDIS_URL": require_redis(REDIS_URL, flush=True)}


@pytest.mark.redis
def test_budget_is_shared_across_processes_through_redis(make_app, make_key, redis_env):
    first, second = make_app(RATE_LIMIT_PER_MINUTE=4, **redis_env), make_app(RATE_LIMIT_PER_MINUTE=4, **redis_env)
    key = make_key(("read",))
    a, b = first.test_client(), second.test_client()
    assert [a.get("/v1/messages/x", headers=key).status_code for _ in range(2)] == [404, 404]
    r = b.get("/v1/messages/x", headers=key)
    assert r.status_code == 404 and r.headers["RateLimit-Remaining"] == "1"
    assert b.get("/v1/messages/x", headers=key).status_code == 404
    assert a.get("/v1/messages/x", headers=key).status_code == 429
    assert b.get("/v1/messages/x", headers=key).status_code == 429


def test_limit_holds_exactly_under_concurrency_behind_uvicorn_and_a2wsgi(make_app, make_key):
    """The real server: a2wsgi's thread pool runs requests in parallel; the budget is exact."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live_server import running

    key = make_key(("read",))
    with running(make_app, worker=False, RATE_LIMIT_PER_MINUTE=20) as (_, base, _asgi):
        with httpx.Client(base_url=base, timeout=10) as http:
            def call(_):
                r = http.get("/v1/messages/x", headers=key)
                return r.status_code, r.headers.get("RateLimit-Limit"), r.headers.get("Retry-After")

            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(call, range(40)))
    statuses = [s for s, _, _ in results]
    assert statuses.count(404) == 20 and statuses.count(429) == 20
    assert all(limit == "20" for _, limit, _ in results)
    assert all(retry for s, _, retry in results if s == 429)


def test_an_unreachable_redis_lets_requests_through_uncounted():
    from orchestrator.rate_limits import KeyRateLimiter

    limiter = KeyRateLimiter(1, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert [limiter.hit("k", None) for _ in range(3)] == [None, None, None]
    memory = KeyRateLimiter(1)
    assert [b.allowed for b in (memory.hit("k", None), memory.hit("k", None))] == [True, False]


def test_the_memory_store_starts_no_thread_per_request():
    """limits' stock MemoryStorage starts a new expiry Timer thread 10 ms after the last one
    finished, so steady traffic started ~100 threads a second; ours runs the pass at most
    once a second, and the budget still counts every hit."""
    import time

    from orchestrator.rate_limits import KeyRateLimiter

    limiter = KeyRateLimiter(1000)
    timers = set()
    for _ in range(150):
        budget = limiter.hit("k-1", None)
        timers.add(id(limiter.storage.timer))
        time.sleep(0.002)
    assert budget is not None and budget.remaining == 1000 - 150
    assert len(timers) <= 2, len(timers)
