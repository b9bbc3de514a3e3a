"""Timers are rows with a `due_at`: quiet-hours deferrals and in-app holds."""

from __future__ import annotations

from datetime import timedelta


def attempts(message, message_id, channel):
    return [a for a in message(message_id)["attempts"] if a["channel"] == channel]


def test_quiet_hours_defer_sms_to_the_morning(user, send, drain, message, twilio, clock):
    clock.now = clock.now.replace(hour=23)
    user(timezone="UTC")
    sent = send(category="invitation", urgency="normal", body="Ada invited you to the team")
    step = sent["route"]["steps"][0]
    assert step["channel"] == "sms" and step["not_before"].startswith("2026-03-11T08:00")
    drain()
    assert twilio.messages == {}
    assert attempts(message, sent["id"], "sms")[0]["status"] == "queued"
    clock.now = clock.now.replace(day=11, hour=8, minute=0, second=1)
    drain()
    assert attempts(message, sent["id"], "sms")[0]["status"] == "sent"
    assert len(twilio.messages) == 1


def test_critical_messages_are_not_deferred(user, send, drain, twilio, clock):
    clock.now = clock.now.replace(hour=23)
    user(timezone="UTC")
    send(category="otp", urgency="high", body="123456")
    drain()
    assert len(twilio.messages) == 1


def test_held_in_app_waits_for_the_next_session(client, auth, user, send, drain, message, clock):
    user(last_active_at=(clock.now - timedelta(days=1)).isoformat())
    sent = send(category="onboarding", urgency="normal", body="Take the tour")
    assert sent["route"]["steps"] == [{**sent["route"]["steps"][0], "channel": "in_app"}]
    assert sent["route"]["steps"][0]["hold_ttl_seconds"] == 72 * 3600
    drain()
    assert attempts(message, sent["id"], "in_app")[0]["status"] == "queued"
    clock.advance(hours=5)
    assert client.post("/v1/recipients/u-1/presence", headers=auth).status_code == 200  # the user is back
    drain()
    assert attempts(message, sent["id"], "in_app")[0]["status"] == "sent"
    token = client.post("/v1/recipients/u-1/inapp-token", headers=auth).get_json()["token"]
    inbox = client.get("/v1/inbox", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [i["message_id"] for i in inbox["items"]] == [sent["id"]]


def test_held_in_app_expires_after_its_ttl(user, send, drain, message, clock):
    user(last_active_at=(clock.now - timedelta(days=1)).isoformat())
    sent = send(category="onboarding", urgency="normal", body="Take the tour")
    clock.advance(hours=73)
    drain()
    msg = message(sent["id"])
    assert attempts(message, sent["id"], "in_app")[0]["status"] == "expired"
    assert msg["status"] == "expired"
