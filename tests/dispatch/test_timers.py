"""Timers are rows with a `due_at`: quiet-hours deferrals and in-app holds."""

from __future__ import annotations

from datetime import timedelta

from tests.dispatch.conftest import attempts


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
    assert [(s["channel"], s["mode"]) for s in sent["route"]["steps"]] == [("in_app", "first"), ("email", "fallback")]
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


def test_held_in_app_expires_after_its_ttl_and_falls_back_to_email(user, send, drain, message, clock, state):
    """Issue #11 defect 1: a hold that expires unseen falls back where the category allows."""
    user(last_active_at=(clock.now - timedelta(days=1)).isoformat())
    sent = send(category="onboarding", urgency="normal", body="Take the tour")
    drain()
    assert attempts(message, sent["id"], "email")[0]["status"] == "queued"
    clock.advance(hours=71)
    drain()
    assert attempts(message, sent["id"], "email")[0]["status"] == "queued"   # still waiting for the user
    clock.advance(hours=2)
    drain()
    msg = message(sent["id"])
    assert attempts(message, sent["id"], "in_app")[0]["status"] == "expired"
    [email] = attempts(message, sent["id"], "email")
    assert email["status"] == "sent" and email["mode"] == "fallback"
    assert msg["status"] == "sent"


def test_fallback_after_a_hold_is_not_rechecked_while_the_user_is_away(user, send, clock, state):
    from orchestrator.storage.models import Attempt

    user(last_active_at=(clock.now - timedelta(days=1)).isoformat())
    sent = send(category="survey", urgency="normal", body="Two questions?")
    with state.db.session() as s:
        rows = {a.channel: a for a in s.query(Attempt).filter_by(message_id=sent["id"])}
        assert rows["email"].deadline_at - rows["in_app"].hold_until == timedelta(
            seconds=state.settings.attempt_deadline_seconds)


def test_in_app_native_message_to_a_dormant_or_new_user_goes_by_push_or_email(user, send, clock):
    """Issue #11 defect 1: a dormant (40 days) or never-active user with email and a push
    device used to get 202 `suppressed`, "no usable channel"."""
    for user_id, last_active in (("u-dormant", clock.now - timedelta(days=40)), ("u-new", None)):
        user(user_id, last_active_at=last_active.isoformat() if last_active else None,
             devices=[{"token": f"tok-{user_id}", "platform": "fcm"}],
             consents={"sms": True, "email": True, "push": True, "marketing": True})
        for category in ("onboarding", "trial_expiry", "survey", "promotion"):
            sent = send(category=category, urgency="normal", body="Hello", user_id=user_id)
            assert sent["status"] != "suppressed", (user_id, category, sent)
            channels = [s["channel"] for s in sent["route"]["steps"]]
            assert channels == ["push", "email"], (user_id, category, channels)


# -- issue #11 defect 8: messages settle as soon as the outcome is known ----------------------


def test_fallback_after_a_push_that_was_sent_is_cancelled_at_once(user, send, drain, message, clock):
    """Push `sent` never turns into a failure later: the email fallback can never fire, so
    the message is `sent` now, not `in_progress` until the 10-minute deadline."""
    user(last_active_at=(clock.now - timedelta(days=1)).isoformat(),
         devices=[{"token": "tok-1", "platform": "fcm"}])
    sent = send(category="reminder", urgency="normal", body="Your appointment is tomorrow.")
    assert [(s["channel"], s["mode"]) for s in sent["route"]["steps"]] == [("push", "first"), ("email", "fallback")]
    drain()
    msg = message(sent["id"])
    assert attempts(message, sent["id"], "push")[0]["status"] == "sent"
    assert attempts(message, sent["id"], "email")[0]["status"] == "cancelled"
    assert msg["status"] == "sent"


def test_fallback_after_an_sms_that_was_sent_waits_for_its_receipt(user, send, drain, message, clock, twilio):
    """An SMS `sent` can still fail (a carrier receipt): the fallback waits, up to its deadline."""
    user()
    sent = send(category="invitation", urgency="normal", body="Ada invited you")
    drain()
    assert attempts(message, sent["id"], "sms")[0]["status"] == "sent"
    assert attempts(message, sent["id"], "email")[0]["status"] == "queued"
    assert message(sent["id"])["status"] == "in_progress"
    clock.advance(minutes=11)
    drain()
    assert attempts(message, sent["id"], "email")[0]["status"] == "cancelled"
    assert message(sent["id"])["status"] == "sent"
