"""Issue #19 §6: a key revoked, re-scoped or re-limited in one process is dropped by every
other within a second when REDIS_URL is set (Redis pub/sub, orchestrator/access/key_sync.py); the
cache TTL stays the fallback without Redis or while it is unreachable.

Two app instances with caches of their own share the database and Redis; the cache clock of
the one that did not make the change is frozen, so its TTL can never be what refuses the key.
tests/ops/test_key_revocation_processes.py does the same with real server processes."""

from __future__ import annotations

import json
import time

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select, update

from orchestrator.app_state import EXTENSION_KEY
from orchestrator.cli.main import main
from orchestrator.storage.models import ApiKey
from tests.conftest import require_redis

REDIS_URL = "redis://127.0.0.1:6379/11"
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"   # nothing listens on port 1: connections are refused
WITHIN = 5.0  # seconds: far inside the fallback (a frozen cache clock / a 60 s TTL), with room for a loaded CI box


def state_of(app):
    return app.extensions[EXTENSION_KEY]


def frozen(app) -> list[float]:
    """Freezes the app's key-cache clock (returned, to move by hand): no entry ages out."""
    now = [1000.0]
    state_of(app).key_cache.clock = lambda: now[0]
    return now


def subscribed(app) -> None:
    assert state_of(app).key_sync.subscriber.subscribed.wait(5), "the key-cache subscriber never subscribed"


def key(app, scopes, name) -> tuple[str, dict[str, str]]:
    from orchestrator.access.auth import create_api_key

    with state_of(app).db.session() as s:
        row, plaintext = create_api_key(s, name, scopes)
        return row.id, {"Authorization": f"Bearer {plaintext}"}


def status_within(client, headers, expected: int, seconds: float = WITHIN, path="/v1/messages/nope") -> float:
    """Seconds until `path` answers `expected`; fails after `seconds`."""
    start = time.monotonic()
    while True:
        r = client.get(path, headers=headers)
        elapsed = time.monotonic() - start
        if r.status_code == expected:
            return elapsed
        assert elapsed < seconds, f"still {r.status_code} after {elapsed:.2f} s (wanted {expected})"
        time.sleep(0.01)


@pytest.fixture
def redis_pair(make_app):
    """Two app instances on one database and one Redis, as two server processes are."""
    require_redis(REDIS_URL)
    a, b = make_app(REDIS_URL=REDIS_URL), make_app(REDIS_URL=REDIS_URL)
    for app in (a, b):
        subscribed(app)
    assert state_of(a).key_cache is not state_of(b).key_cache
    return a, b


def test_an_api_revocation_reaches_the_other_instance_within_a_second(redis_pair):
    a, b = redis_pair
    _, admin = key(a, ["admin"], "root")
    victim_id, victim = key(a, ["read"], "victim")
    frozen(b)
    other = b.test_client()
    assert other.get("/v1/messages/nope", headers=victim).status_code == 404   # cached as valid in b
    r = a.test_client().delete(f"/v1/keys/{victim_id}", headers=admin, json={"reason": "leaked"})
    assert r.status_code == 200, r.get_json()
    refused = status_within(other, victim, 401)
    assert other.get("/v1/messages/nope", headers=victim).get_json()["error"]["field"] == "Authorization"
    print(f"refused by the other instance {refused * 1000:.0f} ms after the DELETE answered")


def test_cli_revoke_scope_and_rate_changes_reach_running_instances(redis_pair, settings_env):
    """The CLI is a process of its own: it publishes after committing."""
    a, b = redis_pair
    run = lambda *args: CliRunner().invoke(main, list(args), env={**settings_env, "REDIS_URL": REDIS_URL},  # noqa: E731
                                           catch_exceptions=False)
    victim_id, victim = key(a, ["read", "send"], "victim")
    for app in (a, b):
        frozen(app)
    clients = [a.test_client(), b.test_client()]
    for c in clients:
        assert c.get("/v1/messages/nope", headers=victim).headers["RateLimit-Limit"] != "777"

    done = run("keys", "set-rate", victim_id, "--per-minute", "777", "--reason", "noisy")
    assert done.exit_code == 0 and done.stderr == "", done.output
    for c in clients:
        start = time.monotonic()
        while c.get("/v1/messages/nope", headers=victim).headers.get("RateLimit-Limit") != "777":
            assert time.monotonic() - start < WITHIN, "the new rate limit did not arrive"
            time.sleep(0.01)

    assert run("keys", "set-scopes", victim_id, "--scopes", "send", "--reason", "no reads").exit_code == 0
    for c in clients:
        status_within(c, victim, 403)    # `read` gone

    done = run("keys", "revoke", victim_id, "--reason", "rotated")
    assert done.exit_code == 0 and json.loads(done.stdout)["revoked_at"]
    for c in clients:
        status_within(c, victim, 401)


def test_a_change_published_while_an_instance_was_not_listening_is_not_missed(redis_pair):
    """The subscriber loses its connection; the key is revoked meanwhile without any message
    (straight in the database): once subscribed again, the instance reads keys afresh."""
    a, b = redis_pair
    victim_id, victim = key(a, ["read"], "victim")
    frozen(b)
    other = b.test_client()
    assert other.get("/v1/messages/nope", headers=victim).status_code == 404
    sub = state_of(b).key_sync.subscriber
    admin = redis.Redis.from_url(REDIS_URL)
    ids = [c["id"] for c in admin.client_list() if c["name"] == sub.client_name]
    assert len(ids) == 1, ids
    admin.client_kill_filter(_id=ids[0])
    deadline = time.monotonic() + 5
    while sub.subscribed.is_set():
        assert time.monotonic() < deadline, "the subscriber did not notice its connection was killed"
        time.sleep(0.005)
    with state_of(a).db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.id == victim_id).values(revoked_at=state_of(a).clock()))
    assert other.get("/v1/messages/nope", headers=victim).status_code == 404   # nothing said it yet
    assert sub.subscribed.wait(5), "the subscriber did not reconnect"
    status_within(other, victim, 401)


def test_without_redis_the_ttl_is_the_fallback(make_app, settings_env):
    """REDIS_URL set but unreachable: revoking still works (200, at once in the revoking
    process); the other instance follows when its cache entry ages out, not before."""
    a, b = make_app(REDIS_URL=DEAD_REDIS_URL), make_app(REDIS_URL=DEAD_REDIS_URL)
    _, admin = key(a, ["admin"], "root")
    victim_id, victim = key(a, ["read"], "victim")
    now = frozen(b)
    other = b.test_client()
    assert other.get("/v1/messages/nope", headers=victim).status_code == 404
    r = a.test_client().delete(f"/v1/keys/{victim_id}", headers=admin, json={"reason": "leaked"})
    assert r.status_code == 200, r.get_json()
    assert a.test_client().get("/v1/messages/nope", headers=victim).status_code == 401   # at once here
    time.sleep(0.3)
    assert other.get("/v1/messages/nope", headers=victim).status_code == 404             # nothing heard
    now[0] += state_of(b).key_cache.ttl + 0.1
    assert other.get("/v1/messages/nope", headers=victim).status_code == 401

    with state_of(a).db.session() as s:
        other_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "root"))
    done = CliRunner().invoke(main, ["keys", "revoke", other_id, "--reason", "x"],
                              env={**settings_env, "REDIS_URL": DEAD_REDIS_URL}, catch_exceptions=False)
    assert done.exit_code == 0 and json.loads(done.stdout)["revoked_at"]
    assert "Redis is unreachable" in done.stderr and "KEY_CACHE_SECONDS" in done.stderr


def test_a_lookup_racing_a_change_is_not_cached():
    """A request that read the key before a change and stores it after must not keep the
    old key for a whole TTL: the change's `forget` makes that `put` a no-op."""
    from orchestrator.access.auth import KeyCache, KeyIdentity

    cache = KeyCache(ttl=60)
    old = KeyIdentity("k1", "victim", frozenset({"read"}))
    generation = cache.generation          # the request starts its database read
    cache.forget("k1")                     # the revocation arrives meanwhile
    cache.put("hash-1", old, generation)   # the request stores what it read
    assert cache.get("hash-1") is not old
    cache.put("hash-1", old, cache.generation)
    assert cache.get("hash-1") is old
    cache.put("hash-2", KeyIdentity("k2", "other", frozenset()), cache.generation)
    cache.forget("k1")
    assert cache.get("hash-1") is not old and cache.get("hash-2").id == "k2"   # only that key dropped
