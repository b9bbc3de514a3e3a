"""Presence across API processes with Redis: a heartbeat or open stream seen by one app
instance is seen by another; a closed stream stops counting."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.app_state import EXTENSION_KEY
from tests.conftest import require_redis

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def redis_env():
    return {"REDIS_URL": require_redis(REDIS_URL)}


@pytest.fixture
def two_apps(make_app, redis_env):
    return make_app(**redis_env), make_app(**redis_env)


def explain(client, auth, user_id):
    return client.post("/v1/routing/explain", headers=auth, json={
        "recipient": {"user_id": user_id}, "category": "onboarding", "content": {"body": "Tour"}}).get_json()


def key_for(app):
    from orchestrator.access.auth import create_api_key

    with app.extensions[EXTENSION_KEY].db.session() as s:
        _, key = create_api_key(s, "p", ["send", "read", "recipients"])
    return {"Authorization": f"Bearer {key}"}


def test_heartbeat_on_one_process_is_seen_by_another(two_apps):
    a, b = two_apps
    auth = key_for(a)
    user = f"u-{uuid.uuid4().hex[:8]}"
    a.test_client().put(f"/v1/recipients/{user}", headers=auth, json={"email": "x@example.com"})
    assert explain(b.test_client(), auth, user)["facts"]["presence"] == "offline"
    r = a.test_client().post(f"/v1/recipients/{user}/presence", headers=auth)
    assert r.get_json()["store"] == "redis"
    assert explain(b.test_client(), auth, user)["facts"]["presence"] == "online"


def test_open_stream_counts_as_connected_until_closed(two_apps, clock):
    a, b = two_apps
    st_a = a.extensions[EXTENSION_KEY]
    user = f"u-{uuid.uuid4().hex[:8]}"
    auth = key_for(a)
    with st_a.db.session() as s:
        conn = st_a.presence.open_connection(s, user, clock())
    assert b.extensions[EXTENSION_KEY].presence.overlay(user, clock())[1] is True
    plan = explain(b.test_client(), auth, user)
    assert plan["facts"]["presence"] == "online"
    st_a.presence.close_connection(user, conn)
    assert b.extensions[EXTENSION_KEY].presence.overlay(user, clock())[1] is False


def test_a_crashed_process_connection_ages_out(two_apps, clock):
    a, b = two_apps
    st_a = a.extensions[EXTENSION_KEY]
    user = f"u-{uuid.uuid4().hex[:8]}"
    with st_a.db.session() as s:
        st_a.presence.open_connection(s, user, clock())   # never closed: the process died
    clock.advance(minutes=2)
    assert b.extensions[EXTENSION_KEY].presence.overlay(user, clock())[1] is False
