"""Issue #11 defect 4: the semantics of a chain (policies/README.md, "Chains"), against the
FCM wire fake. A step is cancelled only by the condition it names: a fallback by the success
of the step right before it, an escalation by the status it watches."""

from __future__ import annotations

import pytest

from tests.dispatch.conftest import FCM_DEVICE, go_online, mark_in_app, statuses


@pytest.fixture
def app(fcm_app):
    return fcm_app


def social_in_app_delivered(client, auth, user, send, drain, message, clock):
    go_online(client, auth, user, clock, FCM_DEVICE)  # the user's stream is open
    sent = send(category="social", urgency="normal", body="Bob: are you coming?")
    assert [(s["channel"], s["mode"]) for s in sent["route"]["steps"]] == [
        ("in_app", "first"), ("push", "escalate"), ("email", "fallback")]
    drain()
    # Shown on the user's stream (seen): delivered, but not read.
    assert mark_in_app(client, auth, message, sent["id"], "seen").status_code == 200
    drain()
    assert statuses(message, sent["id"]) == {"in_app": "delivered", "push": "queued", "email": "queued"}
    assert message(sent["id"])["status"] == "delivered"  # delivery is known; the chain goes on
    return sent


def test_email_goes_when_the_push_reminder_fails_after_in_app_was_delivered(client, auth, user, send, drain,
                                                                            message, clock, fcm):
    sent = social_in_app_delivered(client, auth, user, send, drain, message, clock)
    fcm.fail_next(404, "NOT_FOUND", "UNREGISTERED")
    clock.advance(minutes=10, seconds=1)
    drain()
    assert len(fcm.sends) == 1
    assert statuses(message, sent["id"]) == {"in_app": "delivered", "push": "failed", "email": "sent"}
    assert message(sent["id"])["status"] == "delivered"


def test_a_push_reminder_that_goes_out_settles_the_chain(client, auth, user, send, drain, message, clock, fcm):
    sent = social_in_app_delivered(client, auth, user, send, drain, message, clock)
    clock.advance(minutes=10, seconds=1)
    drain()
    assert statuses(message, sent["id"]) == {"in_app": "delivered", "push": "sent", "email": "cancelled"}
    assert message(sent["id"])["status"] == "delivered"


def test_the_sweeper_keeps_the_fallback_waiting_past_its_window_while_the_escalation_is_pending(
        client, auth, user, send, drain, message, clock, fcm, state):
    """The email fallback's own sending window (10 min by default) ends before the push
    reminder is due: it must wait for the push, not be dropped."""
    sent = social_in_app_delivered(client, auth, user, send, drain, message, clock)
    clock.advance(minutes=9, seconds=59)
    state.dispatcher.sweep_once()
    clock.advance(seconds=30)  # email window passed, push not yet claimed
    state.dispatcher.sweep_once()
    assert statuses(message, sent["id"])["email"] == "queued"
    fcm.fail_next(404, "NOT_FOUND", "UNREGISTERED")
    drain()
    assert statuses(message, sent["id"]) == {"in_app": "delivered", "push": "failed", "email": "sent"}


def test_reading_in_app_cancels_the_escalation_and_so_the_fallback_after_it(client, auth, user, send, drain,
                                                                           message, clock, fcm):
    sent = social_in_app_delivered(client, auth, user, send, drain, message, clock)
    mark_in_app(client, auth, message, sent["id"], "read")
    assert statuses(message, sent["id"]) == {"in_app": "delivered", "push": "cancelled", "email": "cancelled"}
    assert message(sent["id"])["status"] == "read"
    clock.advance(minutes=30)
    drain()
    assert fcm.sends == []


def test_a_fallback_chain_cascades_when_the_first_step_delivers(client, auth, user, send, drain, message, clock,
                                                               fcm):
    """Plain fallbacks (in-app, push, email): the first success settles every later step."""
    go_online(client, auth, user, clock, FCM_DEVICE)
    sent = send(category="reminder", urgency="normal", body="Dentist at 3pm")
    assert [s["mode"] for s in sent["route"]["steps"]] == ["first", "fallback", "fallback"]
    drain()
    mark_in_app(client, auth, message, sent["id"], "seen")
    assert statuses(message, sent["id"]) == {"in_app": "delivered", "push": "cancelled", "email": "cancelled"}
    assert message(sent["id"])["status"] == "delivered"
