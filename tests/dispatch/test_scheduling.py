"""Scheduled sends: stored undecided, decided by the sweeper when `send_at` comes, with the
facts of that moment, durably (a restart loses nothing, a second sweeper decides nothing twice)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from orchestrator.sending import scheduling
from orchestrator.storage.models import Attempt, Message


def at(clock, **delta) -> str:
    return (clock.now + timedelta(**delta)).isoformat()


def attempt_count(state, message_id) -> int:
    with state.db.session() as s:
        return s.scalar(select(func.count()).select_from(Attempt).where(Attempt.message_id == message_id))


def test_scheduled_message_waits_then_is_decided_and_sent(user, send, drain, message, twilio, clock, state):
    user()
    sent = send(send_at=at(clock, hours=2))
    assert sent["status"] == "scheduled" and sent["route"] is None
    assert sent["send_at"].startswith("2026-03-10T14:00")
    shown = message(sent["id"])
    assert shown["status"] == "scheduled" and shown["attempts"] == [] and shown["route"] is None
    assert shown["decision"] is None and shown["send_at"].startswith("2026-03-10T14:00")
    clock.advance(hours=1, minutes=59)
    drain()
    assert twilio.messages == {} and message(sent["id"])["status"] == "scheduled"
    clock.advance(minutes=1)
    drain()
    shown = message(sent["id"])
    assert shown["status"] in ("in_progress", "sent", "delivered")
    assert shown["decision"]["decided_at"].startswith("2026-03-10T14:00")
    assert [a["channel"] for a in shown["attempts"]] == ["sms", "email"]  # email: the fallback
    assert len(twilio.messages) == 1


def test_decided_with_the_facts_of_send_time(client, auth, user, send, drain, message, clock, twilio):
    """SMS consent withdrawn after scheduling: at send time SMS is no longer a channel."""
    user()
    sent = send(send_at=at(clock, hours=1))
    user(consents={"sms": False, "email": True, "push": True})
    clock.advance(hours=1)
    drain()
    shown = message(sent["id"])
    assert "sms" not in [a["channel"] for a in shown["attempts"]]
    assert "sms" in [e["channel"] for e in shown["route"]["excluded"]]
    assert twilio.messages == {}


def test_quiet_hours_still_apply_at_send_time(user, send, drain, message, clock, twilio):
    """Scheduled at midday for 23:00: the policy defers the SMS to 08:00, as for any send at 23:00."""
    user(timezone="UTC")
    sent = send(category="invitation", urgency="normal", body="Ada invited you", send_at=at(clock, hours=11))
    clock.now = clock.now.replace(hour=23)
    drain()
    shown = message(sent["id"])
    assert shown["route"]["steps"][0]["not_before"].startswith("2026-03-11T08:00")
    assert twilio.messages == {}
    clock.now = clock.now.replace(day=11, hour=8, minute=0, second=1)
    drain()
    assert len(twilio.messages) == 1


def test_expired_while_waiting_is_never_sent(user, send, drain, message, clock, twilio):
    user()
    sent = send(send_at=at(clock, hours=1), expires_at=at(clock, hours=2))
    clock.advance(hours=3)  # the sweeper was down past the expiry
    drain()
    shown = message(sent["id"])
    assert shown["status"] == "expired" and shown["attempts"] == []
    assert "already in the past" in shown["route"]["suppressed_reasons"][0]
    assert twilio.messages == {}


def test_a_restart_picks_up_scheduled_messages(make_app, user, send, clock, state, twilio):
    user()
    sent = send(send_at=at(clock, minutes=5))
    state.dispatcher.stop()  # the process that accepted it is gone
    clock.advance(minutes=10)
    from orchestrator.app_state import EXTENSION_KEY

    fresh = make_app(TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN="twilio-test-token",
                     TWILIO_FROM_NUMBER="+15005550006", TWILIO_API_BASE_URL=twilio.base_url)
    st = fresh.extensions[EXTENSION_KEY]
    counts = st.dispatcher.sweep_once()
    assert counts["scheduled"] == 1
    assert attempt_count(st, sent["id"]) == 2  # sms + email fallback


def test_a_scheduled_message_is_decided_once(user, send, clock, state):
    user()
    sent = send(send_at=at(clock, minutes=5))
    clock.advance(minutes=5)
    assert scheduling.release_one(state, sent["id"], clock()) is True
    assert scheduling.release_one(state, sent["id"], clock()) is False
    assert state.dispatcher.sweep_once()["scheduled"] == 0
    assert attempt_count(state, sent["id"]) == 2  # sms + email fallback


def test_concurrent_sweepers_decide_it_once(user, send, clock, state):
    user()
    ids = [send(send_at=at(clock, minutes=5), user_id="u-1")["id"] for _ in range(5)]
    clock.advance(minutes=5)
    barrier = threading.Barrier(3)
    results: list[int] = []

    def sweep():
        barrier.wait()
        results.append(scheduling.release_due(state, clock()))

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(results) == 5
    for message_id in ids:
        assert attempt_count(state, message_id) == 2  # sms + email fallback


def test_a_failed_decision_leaves_it_scheduled(user, send, clock, state):
    """Anything failing between the claim and the commit rolls the claim back: the message
    is still scheduled and a later pass decides it. Here the failure is a row the decision
    cannot read (an urgency no version of the API wrote)."""
    user()
    sent = send(send_at=at(clock, minutes=1))
    clock.advance(minutes=1)
    with state.db.session() as s:
        s.execute(update(Message).where(Message.id == sent["id"]).values(urgency="bogus"))
    assert scheduling.release_due(state, clock()) == 0
    with state.db.session() as s:
        assert s.scalar(select(Message.status).where(Message.id == sent["id"])) == "scheduled"
        s.execute(update(Message).where(Message.id == sent["id"]).values(urgency="high"))
    assert scheduling.release_due(state, clock()) == 1
    assert attempt_count(state, sent["id"]) == 2  # sms + email fallback


@pytest.mark.parametrize("send_at", [
    "2026-03-10T14:00:00",          # naive
    "not a date",
    "99999-01-01T00:00:00Z",
    "8999-01-01T00:00:00Z",         # beyond the maximum ahead
    12,
    1e308,
    {"a": {"b": 1}},
    "2026-03-10T14:00:00\u0000Z",
    "9000-12-31T23:59:59-23:59",    # converting to UTC overflows the year range
])
def test_bad_send_at_is_refused_naming_it(client, auth, user, send_at):
    user()
    r = client.post("/v1/messages", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "1"}, "send_at": send_at})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["field"] == "send_at"


def test_send_at_after_expiry_and_too_far_ahead(client, auth, user, clock):
    user()
    base = {"recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "1"}}
    r = client.post("/v1/messages", headers=auth, json={**base, "send_at": at(clock, hours=2),
                                                         "expires_at": at(clock, hours=1)})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "send_at"
    assert "before expires_at" in r.get_json()["error"]["message"]
    r = client.post("/v1/messages", headers=auth, json={**base, "send_at": at(clock, days=91)})
    assert r.status_code == 422 and "90 days" in r.get_json()["error"]["message"]
    r = client.post("/v1/messages", headers=auth, json={**base, "send_at": at(clock, days=89)})
    assert r.status_code == 202 and r.get_json()["status"] == "scheduled"


def test_send_at_in_the_past_sends_now(send, user, clock):
    user()
    sent = send(send_at=at(clock, minutes=-1))
    assert sent["status"] == "accepted" and sent["route"]["steps"]


def test_scheduled_send_is_idempotent(client, auth, user, clock, state):
    user()
    headers = {**auth, "Idempotency-Key": "later-1"}
    payload = {"recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "1"},
               "send_at": at(clock, hours=1)}
    a = client.post("/v1/messages", headers=headers, json=payload)
    b = client.post("/v1/messages", headers=headers, json=payload)
    assert a.status_code == b.status_code == 202 and a.get_json() == b.get_json()
    with state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1


def test_impact_simulation_skips_undecided_messages(user, send, clock, state):
    from orchestrator.compliance.simulation import simulate

    user()
    send(send_at=at(clock, hours=1))
    send()
    result = simulate(state.db, state.policies.active(), since=clock.now - timedelta(days=1))
    assert result.messages == 1 and result.error_count == 0


def test_cancel_and_release_race(client, auth, user, send, clock, state):
    """A cancel and the sweeper's decision at the same moment: either the message is
    cancelled undecided, or decided and then every attempt cancelled; never sent."""
    user()
    for _ in range(4):
        sent = send(send_at=at(clock, minutes=1))
        clock.advance(minutes=1)
        barrier = threading.Barrier(2)
        answers: list[int] = []

        def release(barrier, message_id):
            barrier.wait()
            scheduling.release_one(state, message_id, clock())

        def cancel(barrier, message_id, answers):
            barrier.wait()
            answers.append(client.post(f"/v1/messages/{message_id}/cancel", headers=auth).status_code)

        threads = [threading.Thread(target=release, args=(barrier, sent["id"])),
                   threading.Thread(target=cancel, args=(barrier, sent["id"], answers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert answers == [200]
        shown = client.get(f"/v1/messages/{sent['id']}", headers=auth).get_json()
        assert shown["status"] == "cancelled"
        assert all(a["status"] == "cancelled" for a in shown["attempts"])
