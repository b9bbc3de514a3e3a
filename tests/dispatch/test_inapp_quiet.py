"""Issue #11 defect 7: over the in-app cap, a user who is in the app gets a quiet inbox
entry (listed and counted unread, no live display), not a push that pulls them out of the
app. Against the FCM wire fake."""

from __future__ import annotations

import pytest

from tests.dispatch.conftest import FCM_DEVICE, go_online, statuses, user_token


@pytest.fixture
def app(fcm_app):
    return fcm_app


def online_user_at_the_cap(client, auth, user, send, drain, clock):
    go_online(client, auth, user, clock, FCM_DEVICE)
    for n in range(3):  # the default policy's daily cap
        sent = send(category="reminder", urgency="normal", body=f"Reminder {n}")
        assert sent["route"]["steps"][0]["quiet"] is False
    drain()


def test_over_the_cap_a_user_in_the_app_gets_a_quiet_inbox_entry_and_no_push(client, auth, user, send, drain,
                                                                              message, clock, fcm):
    online_user_at_the_cap(client, auth, user, send, drain, clock)
    sent = send(category="reminder", urgency="normal", body="Your parcel is on its way")
    first = sent["route"]["steps"][0]
    assert (first["channel"], first["quiet"]) == ("in_app", True)
    assert "in-app cap reached" in first["reason"]
    assert "in_app" not in [e["channel"] for e in sent["route"]["excluded"]]
    drain()
    assert statuses(message, sent["id"]) == {"in_app": "sent", "push": "cancelled", "email": "cancelled"}
    assert [(a["channel"], a["quiet"]) for a in message(sent["id"])["attempts"]][0] == ("in_app", True)
    assert fcm.sends == []  # nobody was pulled out of the app
    inbox = client.get("/v1/inbox", headers=user_token(client, auth)).get_json()
    quiet = [i for i in inbox["items"] if i["message_id"] == sent["id"]]
    assert quiet and quiet[0]["quiet"] is True
    assert inbox["unread"] == 4
    assert all(i["quiet"] is False for i in inbox["items"] if i["message_id"] != sent["id"])


def test_over_the_cap_a_user_not_in_the_app_gets_no_in_app(client, auth, user, send, drain, message, clock, fcm):
    online_user_at_the_cap(client, auth, user, send, drain, clock)
    clock.advance(minutes=5)  # the heartbeat is older than the presence window: offline
    sent = send(category="reminder", urgency="normal", body="Your parcel is on its way")
    assert [(s["channel"], s["quiet"]) for s in sent["route"]["steps"]] == [("push", False), ("email", False)]
    drain()
    assert len(fcm.sends) == 1
