"""Web push end to end: the user's browser registers its push subscription through the in-app
client's route (user token, platform `webpush`), a push-channel message reaches the wire fake
encrypted for that subscription, and once the browser drops the subscription (410) the next
send deactivates the device, as FCM's UNREGISTERED does."""

from __future__ import annotations

import base64
import json

import pytest
from pywebpush import Vapid

from tests.dispatch.conftest import attempts
from tests.fakes.webpush_fake import WebPushFake


@pytest.fixture
def push():
    with WebPushFake() as fake:
        yield fake


@pytest.fixture
def app(make_app, push):
    vapid = Vapid()
    vapid.generate_keys()
    key = base64.urlsafe_b64encode(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))
    return make_app(WEBPUSH_VAPID_PRIVATE_KEY=key.rstrip(b"=").decode(), WEBPUSH_VAPID_SUBJECT="mailto:ops@example.com",
                    WEBPUSH_ENDPOINT_HOSTS=push.origin.removeprefix("http://"))


def register_browser(client, auth, subscription) -> None:
    token = client.post("/v1/recipients/u-1/inapp-token", headers=auth).get_json()["token"]
    r = client.post("/v1/inbox/devices", headers={"Authorization": f"Bearer {token}"},
                    json={"platform": "webpush", "token": json.dumps(subscription)})
    assert r.status_code == 201, r.get_json()


def test_a_browser_subscription_gets_push_until_it_expires(client, auth, user, send, drain, message, push):
    user(devices=[])
    subscription = push.subscribe()
    register_browser(client, auth, subscription)

    sent = send(category="reminder", urgency="normal", body="Your appointment is tomorrow")
    assert sent["route"]["steps"][0]["channel"] == "push"
    drain()
    [attempt] = attempts(message, sent["id"], "push")
    assert attempt["status"] == "sent" and attempt["provider"] == "webpush" and not attempt["sandboxed"]
    [got] = push.received
    assert json.loads(got.payload)["body"] == "Your appointment is tomorrow"
    assert json.loads(got.payload)["message_id"] == sent["id"]

    push.expire(subscription["endpoint"])
    again = send(category="reminder", urgency="normal", body="Reminder again")
    drain()
    [dead] = attempts(message, again["id"], "push")
    assert dead["status"] == "failed" and dead["error"]["class"] == "permanent"
    assert push.refused[-1][0] == 410
    profile = client.get("/v1/recipients/u-1", headers=auth).get_json()
    assert [d["active"] for d in profile["devices"]] == [False]
    third = send(category="reminder", urgency="normal", body="And again")
    assert "push" not in [s["channel"] for s in third["route"]["steps"]]
