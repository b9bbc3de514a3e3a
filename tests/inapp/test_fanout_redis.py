"""Cross-process fan-out: two independent app instances, each under its own server, share
the database and Redis. A stream held by server A receives a message that server B
accepted and delivered: B's bus publishes through Redis and A's subscriber wakes A's
stream (streams never poll the database, so nothing else could bring it there)."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from orchestrator.app_state import EXTENSION_KEY
from orchestrator.storage.models import Attempt
from providers.base import AttemptStatus, Channel
from tests.conftest import require_redis
from tests.inapp.conftest import key_for
from tests.inapp.sse import SSE
from tests.live_server import serving

REDIS_URL = "redis://127.0.0.1:6379/15"

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url():
    return require_redis(REDIS_URL, flush=True)


def test_a_stream_on_one_server_receives_what_another_server_delivered(make_app, redis_url):
    # Keep-alive far beyond the test: only a bus notification can make A's stream read.
    env = {"REDIS_URL": redis_url, "STREAM_KEEPALIVE_SECONDS": "120"}
    apps = [make_app(**env), make_app(**env)]
    states = [app.extensions[EXTENSION_KEY] for app in apps]
    for st in states:
        st.clock = lambda: datetime.now(UTC)
    assert [st.bus.kind for st in states] == ["redis", "redis"]
    with ExitStack() as stack:
        (base_a, _), (base_b, _) = (stack.enter_context(serving(app)) for app in apps)
        auth = key_for(apps[1])
        r = httpx.put(f"{base_b}/v1/recipients/u-1", headers=auth, timeout=5,
                      json={"email": "a@example.com", "last_active_at": datetime.now(UTC).isoformat()})
        assert r.status_code in (200, 201), r.text
        token = httpx.post(f"{base_b}/v1/recipients/u-1/inapp-token", headers=auth, timeout=5).json()["token"]
        on_a = SSE(f"{base_a}/v1/inbox/stream", params={"token": token})
        stack.callback(on_a.close)
        assert on_a.status == 200
        on_a.next("unread").json()  # the stream's first read is done: from now on it only waits

        r = httpx.post(f"{base_b}/v1/messages", headers=auth, timeout=5, json={
            "recipient": {"user_id": "u-1"}, "category": "onboarding", "content": {"body": "From B"}})
        assert r.status_code == 202 and r.json()["route"]["steps"][0]["channel"] == "in_app", r.text
        # B's worker code delivers it (the task body Celery would run in B's process).
        st_b = states[1]
        with st_b.db.session() as s:
            attempt_id = s.scalar(select(Attempt.id).where(Attempt.message_id == r.json()["id"],
                                                           Attempt.channel == Channel.IN_APP))
        assert st_b.dispatcher.deliver(attempt_id) == "sent"

        entry = on_a.next("message", timeout=5).json()
        assert entry["message_id"] == r.json()["id"] and entry["body"] == "From B"
        assert on_a.next("unread").json() == {"unread": 1}
        with st_b.db.session() as s:  # shown on A's stream: delivered
            assert s.get(Attempt, attempt_id).status == AttemptStatus.DELIVERED


def test_an_item_read_through_one_server_reaches_a_stream_on_another_as_an_item_event(make_app, redis_url):
    """The `item` notice carries the item ids through Redis: B's route names the item, A's
    stream re-reads it and sends its new state, then the badge A's tab shows."""
    env = {"REDIS_URL": redis_url, "STREAM_KEEPALIVE_SECONDS": "120"}
    apps = [make_app(**env), make_app(**env)]
    states = [app.extensions[EXTENSION_KEY] for app in apps]
    for st in states:
        st.clock = lambda: datetime.now(UTC)
    with ExitStack() as stack:
        (base_a, _), (base_b, _) = (stack.enter_context(serving(app)) for app in apps)
        auth = key_for(apps[1])
        httpx.put(f"{base_b}/v1/recipients/u-1", headers=auth, timeout=5,
                  json={"email": "a@example.com", "last_active_at": datetime.now(UTC).isoformat()})
        token = httpx.post(f"{base_b}/v1/recipients/u-1/inapp-token", headers=auth, timeout=5).json()["token"]
        on_a = SSE(f"{base_a}/v1/inbox/stream", params={"token": token})
        stack.callback(on_a.close)
        assert on_a.next("unread").json() == {"unread": 0}
        r = httpx.post(f"{base_b}/v1/messages", headers=auth, timeout=5, json={
            "recipient": {"user_id": "u-1"}, "category": "onboarding", "content": {"body": "From B"}})
        with states[1].db.session() as s:
            attempt_id = s.scalar(select(Attempt.id).where(Attempt.message_id == r.json()["id"],
                                                           Attempt.channel == Channel.IN_APP))
        assert states[1].dispatcher.deliver(attempt_id) == "sent"
        assert on_a.next("message", timeout=5).json()["id"] == attempt_id
        assert on_a.next("unread").json() == {"unread": 1}

        user = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{base_b}/v1/inbox/{attempt_id}/read", headers=user, timeout=5).status_code == 200
        item = on_a.next("item", timeout=5).json()
        assert item["id"] == attempt_id and item["read_at"] and item["archived_at"] is None
        assert on_a.next("unread").json() == {"unread": 0}
        assert httpx.post(f"{base_b}/v1/inbox/{attempt_id}/archive", headers=user, timeout=5).status_code == 200
        item = on_a.next("item", timeout=5).json()
        assert item["id"] == attempt_id and item["archived_at"]
