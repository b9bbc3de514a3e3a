"""The embedded default for real: the in-process delivery workers (fed by the units of work
that commit attempts) and the sweeper thread inside the app process — what `orchestrator
serve` runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest


@pytest.fixture
def live_app(make_app, clock):
    app = make_app(EMBEDDED_WORKER="true", SWEEP_INTERVAL_SECONDS="0.2")
    from orchestrator.app_state import EXTENSION_KEY

    st = app.extensions[EXTENSION_KEY]
    st.clock = lambda: datetime.now(UTC)  # threads run on real time here
    st.dispatcher.start_background()
    return app


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_messages_flow_through_the_embedded_workers(live_app):
    client = live_app.test_client()
    auth = make_key_for(live_app)
    client.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com", "phone": "+447400123456"})
    ids = []
    for i in range(10):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high",
            "content": {"body": f"code {i}"}})
        assert r.status_code == 202
        ids.append(r.get_json()["id"])

    def all_sent():
        states = [client.get(f"/v1/messages/{i}", headers=auth).get_json()["status"] for i in ids]
        return all(s in ("sent", "in_progress") for s in states) and all(
            any(a["status"] == "sent" for a in client.get(f"/v1/messages/{i}", headers=auth).get_json()["attempts"])
            for i in ids)

    wait_for(all_sent)


def make_key_for(app):
    from orchestrator.access.auth import create_api_key
    from orchestrator.app_state import EXTENSION_KEY

    with app.extensions[EXTENSION_KEY].db.session() as session:
        _, key = create_api_key(session, "live", ["send", "read", "recipients"])
    return {"Authorization": f"Bearer {key}"}


def test_parallel_attempts_finishing_together_leave_a_current_message_status(live_app):
    """Two worker threads finish sibling attempts at once; each must see the other's
    outcome, so the message ends `sent`, not stuck `in_progress`."""
    client = live_app.test_client()
    auth = make_key_for(live_app)
    client.put("/v1/recipients/u-2", headers=auth, json={"email": "b@example.com", "phone": "+447400123457"})
    ids = []
    for i in range(12):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-2"}, "category": "security_alert", "urgency": "critical",
            "content": {"body": f"sign-in {i}"}})
        steps = r.get_json()["route"]["steps"]
        assert [s["mode"] for s in steps][:2] == ["first", "parallel"]
        ids.append(r.get_json()["id"])
    wait_for(lambda: all(client.get(f"/v1/messages/{i}", headers=auth).get_json()["status"] == "sent"
                         for i in ids))
