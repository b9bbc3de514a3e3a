"""Push end to end: the device's platform picks the provider (here FCM, against its wire
fake with the OAuth token endpoint); an unregistered token deactivates the device so the
policy stops choosing it."""

from __future__ import annotations

import pytest

from tests.dispatch.conftest import attempts


@pytest.fixture
def app(fcm_app):
    return fcm_app


def test_reminder_goes_by_push_to_the_fcm_device(user, send, drain, message, fcm):
    user(devices=[{"token": "fcm-device-token-1", "platform": "fcm"}])
    sent = send(category="reminder", urgency="normal", body="Your appointment is tomorrow")
    assert sent["route"]["steps"][0]["channel"] == "push"
    drain()
    [attempt] = attempts(message, sent["id"], "push")
    assert attempt["status"] == "sent" and attempt["provider"] == "fcm" and not attempt["sandboxed"]
    assert len(fcm.sends) == 1
    assert len(fcm.token_requests) == 1


def test_unregistered_token_deactivates_the_device_and_falls_back(client, auth, user, send, drain, message, fcm):
    user(devices=[{"token": "fcm-dead-token", "platform": "fcm"}])
    fcm.fail_next(404, "NOT_FOUND", "UNREGISTERED")
    sent = send(category="reminder", urgency="normal", body="Your appointment is tomorrow")
    drain()
    msg = message(sent["id"])
    [push] = attempts(message, sent["id"], "push")
    assert push["status"] == "failed" and push["error"]["class"] == "permanent"
    assert any(a["channel"] == "email" and a["status"] == "sent" for a in msg["attempts"])
    profile = client.get("/v1/recipients/u-1", headers=auth).get_json()
    assert [d["active"] for d in profile["devices"]] == [False]
    again = send(category="reminder", urgency="normal", body="Reminder again")
    assert "push" not in [s["channel"] for s in again["route"]["steps"]]
