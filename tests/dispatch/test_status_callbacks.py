"""Status changes posted to the product backend: signed, retried on 5xx/429/network only."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from orchestrator.access.auth import create_api_key
from orchestrator.dispatch.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from orchestrator.lifecycle.status_callbacks import CallbackState
from orchestrator.storage.models import StatusCallback
from tests.fakes.http_receiver import HttpReceiver


@pytest.fixture
def receiver():
    with HttpReceiver() as r:
        yield r


@pytest.fixture
def hooked_key(state, receiver):
    with state.db.session() as s:
        key, plaintext = create_api_key(s, "backend", ["send", "read", "recipients"], receiver.url)
        secret = key.callback_secret
    return {"Authorization": f"Bearer {plaintext}"}, secret


def run_callbacks(state):
    with state.db.session() as s:
        ids = list(s.scalars(select(StatusCallback.id).where(StatusCallback.state == CallbackState.PENDING,
                                                             StatusCallback.due_at <= state.clock())))
    return [state.dispatcher.deliver_callback(i) for i in ids]


def callbacks(state):
    with state.db.session() as s:
        return s.scalars(select(StatusCallback).order_by(StatusCallback.id)).all()


def test_status_changes_are_posted_signed(client, hooked_key, receiver, state, drain, twilio):
    auth, secret = hooked_key
    client.put("/v1/recipients/u-1", headers=auth, json={"phone": "+447400123456"})
    sent = client.post("/v1/messages", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high",
        "content": {"body": "123456"}}).get_json()
    drain()
    sid = next(iter(twilio.messages))
    cb = twilio.status_callback_for(sid, "delivered")
    client.post("/webhooks/twilio", data=cb.form, headers=cb.headers)
    assert run_callbacks(state)
    statuses = [json.loads(body)["status"] for _, body in receiver.received]
    assert statuses[-1] == "delivered"
    headers, body = receiver.received[-1]
    payload = json.loads(body)
    assert payload["message_id"] == sent["id"]
    expected = hmac.new(secret.encode(), headers[TIMESTAMP_HEADER].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"v1={expected}"


@pytest.mark.parametrize("first_answer, retried", [(503, True), (429, True), (400, False), (410, False)])
def test_retry_policy_by_status(client, hooked_key, receiver, state, drain, clock, first_answer, retried):
    auth, _ = hooked_key
    client.put("/v1/recipients/u-1", headers=auth, json={"phone": "+447400123456"})
    client.post("/v1/messages", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high", "content": {"body": "1"}})
    receiver.answer_next(first_answer)
    drain()
    run_callbacks(state)
    first = callbacks(state)[0]
    assert first.tries == 1
    assert first.state == (CallbackState.PENDING if retried else CallbackState.FAILED)
    clock.advance(minutes=15)
    run_callbacks(state)
    first = callbacks(state)[0]
    assert first.state == (CallbackState.DELIVERED if retried else CallbackState.FAILED)
    assert first.tries == (2 if retried else 1)


def test_unreachable_receiver_is_retried(client, state, drain, clock):
    from tests.fakes.twilio_fake import closed_port_url

    with state.db.session() as s:
        _, plaintext = create_api_key(s, "down", ["send", "read", "recipients"], closed_port_url() + "/hook")
    auth = {"Authorization": f"Bearer {plaintext}"}
    client.put("/v1/recipients/u-1", headers=auth, json={"phone": "+447400123456"})
    client.post("/v1/messages", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high", "content": {"body": "1"}})
    drain()
    assert run_callbacks(state) == ["retry_later"]
    cb = callbacks(state)[0]
    assert cb.state == CallbackState.PENDING and cb.last_error
