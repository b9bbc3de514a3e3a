"""The pipeline through real shared brokers (Redis, RabbitMQ) on PostgreSQL: the API commits
and enqueues, the Celery WorkController consumes from the broker, the provider call goes to
a real HTTP fake of Twilio. Every message is sent exactly once.

Needs Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672: under CI=true an unreachable
broker fails the run; elsewhere the test skips with the reason."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY
from orchestrator.storage.models import Attempt
from providers.base import AttemptStatus
from tests.conftest import truncated_pg_url, unavailable
from tests.dispatch.conftest import SID, TOKEN

PHONE = "+447400123456"
N_MESSAGES = 20

BROKERS = [
    pytest.param("Redis", "redis://127.0.0.1:6379/14", marks=pytest.mark.redis, id="redis"),
    pytest.param("RabbitMQ", "amqp://guest:guest@127.0.0.1:5672//", marks=pytest.mark.rabbitmq, id="rabbitmq"),
]


def require_tcp(service: str, url: str) -> None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            pass
    except OSError as exc:
        unavailable(service, f"{parts.hostname}:{parts.port}: {exc}")


@pytest.fixture
def database_url(pg_schema_url):
    """PostgreSQL only (overrides the sqlite/postgres parametrization of tests.conftest):
    a shared broker means several processes, which is what PostgreSQL is for."""
    return truncated_pg_url(pg_schema_url)


def stale_producer_pool(celery_app) -> str | None:
    """The URL the cached producer pool publishes to, if it isn't the configured broker."""
    pool = celery_app._pool
    if pool is None:
        return None
    bound = pool.connection.as_uri()
    configured = celery_app.connection_for_write().as_uri()
    return None if bound == configured else bound


@pytest.fixture
def celery_producer():
    from orchestrator.dispatch.celery_app import celery_app

    return celery_app


def purge_queue(celery_app) -> int:
    """Drops leftovers of earlier runs from the shared broker's queue."""
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        try:
            return channel.queue_purge("orchestrator") or 0
        except Exception:  # noqa: BLE001 - the queue may not exist yet (first run on RabbitMQ)
            return 0


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not met within {timeout} s; last state: {last}")


@pytest.mark.postgres
@pytest.mark.parametrize("service,broker_url", BROKERS)
def test_messages_flow_through_a_shared_broker_exactly_once(service, broker_url, celery_producer, make_app,
                                                           twilio):
    require_tcp(service, broker_url)
    celery_app = celery_producer

    app = make_app(CELERY_BROKER_URL=broker_url, EMBEDDED_WORKER="true", SWEEP_INTERVAL_SECONDS="0.3",
                   TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                   TWILIO_API_BASE_URL=twilio.base_url)
    st = app.extensions[EXTENSION_KEY]
    st.clock = lambda: datetime.now(UTC)  # the worker and sweeper threads run on real time
    assert celery_app.conf.broker_url == broker_url
    assert stale_producer_pool(celery_app) is None, "the producer must publish where the worker consumes"
    purge_queue(celery_app)
    st.dispatcher.start_background()
    try:
        run_messages(service, st, app.test_client(), twilio)
    finally:
        st.dispatcher.stop()


def run_messages(service, st, client, twilio) -> None:
    with st.db.session() as session:
        _, key = create_api_key(session, "brokers", ["send", "read", "recipients"])
    auth = {"Authorization": f"Bearer {key}"}
    r = client.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com", "phone": PHONE})
    assert r.status_code in (200, 201), r.get_json()

    started = time.monotonic()
    ids = []
    for i in range(N_MESSAGES):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high",
            "content": {"body": f"code {i:06d}"}})
        assert r.status_code == 202, r.get_json()
        ids.append(r.get_json()["id"])

    def all_sms_sent():
        with st.db.session() as session:
            rows = session.execute(select(Attempt.message_id, Attempt.status).where(
                Attempt.message_id.in_(ids), Attempt.channel == "sms")).all()
        by_status: dict[str, int] = {}
        for _, status in rows:
            by_status[str(status)] = by_status.get(str(status), 0) + 1
        sent = {m for m, s in rows if s == AttemptStatus.SENT}
        return len(sent) == N_MESSAGES, by_status

    wait_for(all_sms_sent, timeout=20, what=f"all {N_MESSAGES} SMS attempts sent via {service}")
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # a duplicate delivery, if any, would show up at the fake now

    bodies = sorted(m["body"] for m in twilio.messages.values())
    assert bodies == sorted(f"code {i:06d}" for i in range(N_MESSAGES)), "each code exactly once"
    assert len(twilio.messages) == N_MESSAGES
    assert all(m["to"] == PHONE for m in twilio.messages.values())
    with st.db.session() as session:
        attempts = session.scalars(select(Attempt).where(Attempt.message_id.in_(ids))).all()
        sms = [a for a in attempts if a.channel == "sms"]
        assert len(sms) == N_MESSAGES
        assert all(a.send_count == 1 and a.provider_message_id in twilio.messages for a in sms)
        # The email fallback is released only if SMS fails: it must not have gone out.
        assert not [a for a in attempts if a.channel == "email" and a.status == AttemptStatus.SENT]
    print(f"\n{service}: {N_MESSAGES} messages sent in {elapsed:.2f} s, fake sends {len(twilio.messages)}")
