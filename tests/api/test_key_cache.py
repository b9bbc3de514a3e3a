"""API key lookups are cached (the accept path reads nothing to authenticate), and a revoked
or re-scoped key is still refused within the cache's lifetime."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, update

from orchestrator.access.auth import KeyCache
from orchestrator.storage.models import ApiKey


class Tick:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _revoke_all(state) -> None:
    with state.db.session() as s:
        s.execute(update(ApiKey).values(revoked_at=datetime.now(UTC)))


def test_a_revoked_key_is_refused_once_its_cache_entry_ages_out(state, client, auth):
    tick = Tick()
    state.key_cache = KeyCache(ttl=5.0, clock=tick)
    assert client.get("/v1/messages/nope", headers=auth).status_code == 404   # authenticated
    _revoke_all(state)
    tick.now += 4.9
    assert client.get("/v1/messages/nope", headers=auth).status_code == 404   # cached, still in
    tick.now += 0.2
    r = client.get("/v1/messages/nope", headers=auth)
    assert r.status_code == 401 and r.get_json()["error"]["field"] == "Authorization"


def test_cached_lookups_do_not_touch_the_database(state, client, auth):
    state.key_cache = KeyCache(ttl=60.0)
    client.get("/v1/messages/nope", headers=auth)
    statements: list[str] = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(state.db.engine, "before_cursor_execute", listener)
    try:
        for _ in range(5):
            assert client.get("/healthz", headers=auth).status_code == 200
            client.get("/v1/messages/nope", headers=auth)
    finally:
        event.remove(state.db.engine, "before_cursor_execute", listener)
    assert not [s for s in statements if "api_keys" in s]


def test_unknown_keys_are_cached_as_unknown(state, client):
    state.key_cache = KeyCache(ttl=60.0)
    bad = {"Authorization": "Bearer ok_000000000000_not-a-real-secret"}
    assert client.get("/v1/messages/x", headers=bad).status_code == 401
    statements: list[str] = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(state.db.engine, "before_cursor_execute", listener)
    try:
        assert client.get("/v1/messages/x", headers=bad).status_code == 401
    finally:
        event.remove(state.db.engine, "before_cursor_execute", listener)
    assert not [s for s in statements if "api_keys" in s]   # a flood of bad keys stays off the DB
