"""SIGTERM, as a container runtime stops a service, ends every process gracefully: work in
flight finishes or is handed back, nothing accepted is lost, every line stays JSON."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.fakes.twilio_fake import TwilioFake
from tests.ops.processes import (
    BROKER_URL,
    base_env,
    create_key,
    free_port,
    start,
    wait_for,
    wait_http,
)

SID, TOKEN = "AC" + "4" * 32, "ops-signal-token"
PHONE = "+447400123456"

pytestmark = pytest.mark.slow


def send_otp(base: str, auth: dict, user_id: str, n: int = 1) -> list[str]:
    r = httpx.put(f"{base}/v1/recipients/{user_id}", headers=auth, json={"phone": PHONE, "email": "a@example.com"})
    assert r.status_code in (200, 201), r.text
    ids = []
    for i in range(n):
        r = httpx.post(f"{base}/v1/messages", headers=auth, json={
            "recipient": {"user_id": user_id}, "category": "otp", "urgency": "high",
            "content": {"body": f"code {i:06d}"}})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_finishes_the_send_in_flight_then_exits(tmp_path, schema, broker):
    with TwilioFake(SID, TOKEN) as twilio:
        env = base_env(tmp_path, DATABASE_URL=schema.url, CELERY_BROKER_URL=broker, TWILIO_ACCOUNT_SID=SID,
                       TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                       TWILIO_API_BASE_URL=twilio.base_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = start(tmp_path, "api", ["serve", "--port", str(port)], env)
        worker = start(tmp_path, "worker", ["worker", "-c", "1"], env)
        try:
            wait_http(f"{base}/readyz", 120, [api, worker])
            wait_for(lambda: (any("ready." in line for line in worker.lines()), None), 60, "worker ready", [worker])
            twilio.hang_next(4)  # the provider takes 4 s to answer this send
            [message_id] = send_otp(base, {"Authorization": f"Bearer {create_key(env)}"}, "u-sig")
            wait_for(lambda: (len(twilio.requests) == 1, len(twilio.requests)), 60, "the send reaching Twilio",
                     [worker])
            code = worker.terminate(timeout=60)  # while the provider is still answering
            assert code == 0
            assert len(twilio.messages) == 1, "the send in flight was finished, not abandoned"
            status = schema.scalar(f"SELECT status FROM attempts WHERE message_id = '{message_id}' "
                                   "AND channel = 'sms'")
            assert status == "sent"
        finally:
            api.terminate()
            worker.kill()
            api.kill()
    lines = worker.json_lines()
    assert any("warm shutdown" in e["msg"] for e in lines)
    assert any(e["msg"] == "attempt sent" and e.get("message_id") == message_id for e in lines)


def test_scheduler_hands_its_lease_back_and_exits(tmp_path):
    env = base_env(tmp_path, CELERY_BROKER_URL=BROKER_URL, SWEEP_INTERVAL_SECONDS="0.2")
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    scheduler = start(tmp_path, "scheduler", ["scheduler"], env)
    engine = create_engine(f"sqlite:///{tmp_path}/orchestrator.sqlite3")
    try:
        def holder():
            try:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT holder FROM leases WHERE name = 'sweeper'")).scalar()
            except OperationalError:  # not migrated yet
                return None

        wait_for(lambda: ((h := holder()) is not None, h), 90, "the scheduler taking the sweeper lease",
                 [scheduler])
        started = time.monotonic()
        assert scheduler.terminate(timeout=30) == 0
        assert time.monotonic() - started < 20
        assert holder() is None, "the lease is handed back, so another scheduler takes over at once"
    finally:
        scheduler.kill()
        engine.dispose()
    assert any(e["msg"] == "scheduler stopped" for e in scheduler.json_lines())


def test_serve_stops_gracefully_and_loses_nothing_it_accepted(tmp_path):
    """The embedded default: accept, SIGTERM at once; what the in-process workers did not
    send before the exit is still in the database, and the next start sends it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = base_env(tmp_path, CELERY_BROKER_URL="memory://", PORT=str(port))
    first = start(tmp_path, "serve-1", ["serve"], env)
    try:
        wait_http(f"{base}/readyz", 120, [first])
        ids = send_otp(base, {"Authorization": f"Bearer {create_key(env)}"}, "u-sig", n=20)
        code = first.terminate(timeout=60)
    finally:
        first.kill()
    assert code == 0, code
    second = start(tmp_path, "serve-2", ["serve"], env)
    sink = tmp_path / "sandbox-sends.jsonl"
    try:
        wait_http(f"{base}/readyz", 120, [second])

        def sent_once():
            rows = [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []
            return len({r.get("message_id") for r in rows}) == len(ids), len(rows)

        wait_for(sent_once, 60, "every accepted message sent", [second])
    finally:
        second.terminate()
        second.kill()
    rows = [json.loads(line) for line in sink.read_text().splitlines()]
    assert sorted(r["message_id"] for r in rows) == sorted(ids), "each exactly once"
    for proc in (first, second):
        proc.json_lines()
    assert any(e["msg"] == "Application shutdown complete." for e in first.json_lines())
