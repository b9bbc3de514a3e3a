"""POST /v1/messages/{id}/cancel: what is not yet sent is cancelled, who cancelled it is kept,
a final message answers 409, and a send already in flight is never taken back."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from orchestrator.audit import log as audit
from orchestrator.storage.models import Attempt


def cancel(client, headers, message_id, **body):
    return client.post(f"/v1/messages/{message_id}/cancel", headers=headers, json=body or None)


def cancel_while_sending(client, auth, state, twilio, attempt_id, message_id):
    """Cancels the message once a worker's send of `attempt_id` has reached Twilio; the
    cancel's answer, after the worker is done."""
    worker = threading.Thread(target=state.dispatcher.deliver, args=(attempt_id,))
    worker.start()
    _wait(lambda: twilio.requests)
    r = cancel(client, auth, message_id)
    worker.join(30)
    return r


def statuses(state, message_id) -> dict[str, str]:
    with state.db.session() as s:
        return dict(s.execute(select(Attempt.channel, Attempt.status).where(Attempt.message_id == message_id)).all())


def test_cancel_a_scheduled_message(client, auth, user, send, drain, message, clock, state, twilio):
    user()
    sent = send(send_at=(clock.now + timedelta(hours=1)).isoformat())
    r = cancel(client, auth, sent["id"], reason="customer changed their mind")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "cancelled" and body["previous_status"] == "scheduled"
    assert body["cancelled"]["by"]["key_name"] == "test"
    shown = message(sent["id"])
    assert shown["status"] == "cancelled"
    assert shown["cancelled"]["by"]["key_name"] == "test" and shown["cancelled"]["at"].startswith("2026-03-10T12:00")
    clock.advance(hours=2)
    drain()
    assert twilio.messages == {} and message(sent["id"])["attempts"] == []
    with state.db.session() as s:
        entry = audit.recent(s, 1, subject=f"message:{sent['id']}")[0]
        assert entry.action == "message.cancel" and entry.actor == "test"
        assert entry.reason == "customer changed their mind"
    again = cancel(client, auth, sent["id"])
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "message_final"


def test_cancel_before_delivery_cancels_every_attempt(client, auth, user, send, drain, message, twilio, state):
    user()
    sent = send()
    r = cancel(client, auth, sent["id"])
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert len(r.get_json()["cancelled_attempts"]) == 2
    drain()
    assert twilio.messages == {}
    assert set(statuses(state, sent["id"]).values()) == {"cancelled"}
    assert message(sent["id"])["status"] == "cancelled"


def test_a_final_message_answers_409(client, auth, send, message):
    sent = send(user_id="nobody-known")  # no profile, no address: suppressed at once
    assert sent["status"] == "suppressed"
    r = cancel(client, auth, sent["id"])
    assert r.status_code == 409
    assert r.get_json()["error"] == {"code": "message_final", "field": "id",
                                     "message": "id: cannot cancel: the message is suppressed; nothing is left to send"}
    assert message(sent["id"])["cancelled"] is None


def test_a_send_in_flight_is_not_cancelled(client, auth, user, send, message, twilio, state, due):
    """The SMS is claimed and its request is at the provider when the cancel arrives: the
    SMS goes out (it cannot be taken back) and only the queued email fallback is cancelled."""
    user()
    sent = send()
    twilio.hang_next(1.5)
    sms_id = due()[0]
    r = cancel_while_sending(client, auth, state, twilio, sms_id, sent["id"])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["cancelled_attempts"] != [sms_id]
    assert statuses(state, sent["id"]) == {"sms": "sent", "email": "cancelled"}
    assert len(twilio.messages) == 1
    assert message(sent["id"])["status"] == "sent"
    assert cancel(client, auth, sent["id"]).status_code == 409


def test_a_retry_after_cancel_is_not_sent(client, auth, user, send, twilio, state, due):
    """The send fails transiently while the cancel lands: it is not retried."""
    user()
    sent = send()
    for _ in range(3):
        twilio.fail_next(status=503)
    sms_id = due()[0]
    r = cancel_while_sending(client, auth, state, twilio, sms_id, sent["id"])
    assert r.status_code == 200
    assert statuses(state, sent["id"]) == {"sms": "cancelled", "email": "cancelled"}
    assert twilio.messages == {}


def test_cancel_and_claim_race(client, auth, user, send, twilio, state, due):
    """Cancel and a worker's claim at the same moment: each attempt is either sent or
    cancelled, never both, and the message status agrees."""
    user()
    for _ in range(5):
        sent = send()
        sms_id = due()[0]
        barrier = threading.Barrier(2)
        answers = []

        def deliver(barrier, sms_id):
            barrier.wait()
            state.dispatcher.deliver(sms_id)

        def do_cancel(barrier, message_id, answers):
            barrier.wait()
            answers.append(cancel(client, auth, message_id).status_code)

        threads = [threading.Thread(target=deliver, args=(barrier, sms_id)),
                   threading.Thread(target=do_cancel, args=(barrier, sent["id"], answers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        sms = statuses(state, sent["id"])["sms"]
        assert sms in ("sent", "cancelled") and answers == [200]
        sent_to_provider = [m for m in twilio.messages.values()]
        assert (sms == "sent") == (len(sent_to_provider) == 1)
        twilio.messages.clear()


def test_cancel_visibility_and_scopes(client, auth, make_key, user, send):
    user()
    sent = send()
    other = make_key(name="other")
    assert cancel(client, other, sent["id"]).status_code == 404
    reader = make_key(scopes=("read",), name="reader")
    assert cancel(client, reader, sent["id"]).status_code == 403
    assert cancel(client, auth, "01NOPE").status_code == 404


@pytest.mark.parametrize("data, field", [
    ({"reason": 12}, "reason"),
    ({"reason": "x" * 2001}, "reason"),
    ({"reason": "ok", "force": True}, "force"),
    ({"reason": {"a": {"b": {}}}}, "reason"),
])
def test_bad_cancel_bodies(client, auth, user, send, data, field):
    user()
    sent = send()
    r = client.post(f"/v1/messages/{sent['id']}/cancel", headers=auth, json=data)
    assert r.status_code == 422 and r.get_json()["error"]["field"] == field


def test_cancel_body_not_json(client, auth, user, send):
    user()
    sent = send()
    r = client.post(f"/v1/messages/{sent['id']}/cancel", headers={**auth, "Content-Type": "application/json"},
                    data="{nope")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "body"
    r = client.post(f"/v1/messages/{sent['id']}/cancel", headers={**auth, "Content-Type": "application/json"},
                    data='{"reason": "a\\u0000b"}')
    assert r.status_code == 422


def _wait(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.fixture
def due(state):
    from tests.conftest import due_ids

    def get():
        ids = due_ids(state)
        with state.db.session() as s:
            channels = dict(s.execute(select(Attempt.id, Attempt.channel).where(Attempt.id.in_(ids))).all())
        return sorted(ids, key=lambda i: channels[i] != "sms")

    return get
