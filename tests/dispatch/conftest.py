from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import TWILIO_SID, TWILIO_TOKEN
from tests.fakes.event_signers import sendgrid_public_key_b64
from tests.fakes.fcm_fake import FcmFake
from tests.fakes.smtp_fake import shared_ca

SID, TOKEN = TWILIO_SID, TWILIO_TOKEN  # the names the dispatch tests import


@pytest.fixture
def app(make_app, twilio):
    return make_app(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                    TWILIO_API_BASE_URL=twilio.base_url, PUBLIC_BASE_URL="http://localhost")


@pytest.fixture(scope="module")
def fcm_server():
    with FcmFake() as server:  # one key pair per module: RSA generation is slow
        yield server


@pytest.fixture
def fcm(fcm_server):
    fcm_server.reset()
    return fcm_server


@pytest.fixture
def fcm_app(make_app, fcm):
    """FCM pointed at its wire fake (SMS and email stay sandboxed). A module that pushes
    through it declares `app` as this fixture."""
    return make_app(FCM_CREDENTIALS_JSON=json.dumps(fcm.service_account_info), FCM_ENDPOINT=fcm.base_url,
                    FCM_TOKEN_URI=fcm.token_uri)


FCM_DEVICE = [{"token": "fcm-device-token-1", "platform": "fcm"}]


def attempts(message, message_id, channel) -> list[dict]:
    """A message's attempts on one channel, as GET /v1/messages/{id} shows them."""
    return [a for a in message(message_id)["attempts"] if a["channel"] == channel]


def statuses(message, message_id) -> dict[str, str]:
    """Each channel's attempt status of a message (one attempt per channel)."""
    return {a["channel"]: a["status"] for a in message(message_id)["attempts"]}


def die_mid_send(state, clock, attempt_id: str, *, reach_provider: bool, provider: str | None = None) -> None:
    """What a worker killed mid-send leaves behind: its claim committed; maybe its request
    reached the provider (sent with the real provider client: the attempt's first, or the one
    named `provider`); no outcome recorded."""
    from orchestrator.dispatch.deliver import build_delivery, claim_for_send

    with state.db.session() as s:
        claimed = claim_for_send(s, attempt_id, clock.now, 60, "host:4242:dead")
        assert claimed is not None
        _, row, message = claimed
    if reach_provider:
        delivery = build_delivery(row, message, message.content, "http://localhost/webhooks/twilio")
        pool = state.providers.pool(row.channel, row.platform, row.provider)
        next(p for p in pool if provider in (None, p.name)).send(delivery)
    clock.advance(seconds=61)  # the lease runs out


def go_online(client, auth, user, clock, devices) -> None:
    """Makes u-1 a user with `devices` who is in the app now (active, stream open)."""
    user(devices=devices, last_active_at=clock.now.isoformat())
    client.post("/v1/recipients/u-1/presence", headers=auth)


def mark_in_app(client, auth, message, message_id, action: str):
    """Marks the message's in-app item `action` (seen, read...) as u-1's client does; the answer."""
    item = attempts(message, message_id, "in_app")[0]
    return client.post(f"/v1/inbox/{item['id']}/{action}", headers=user_token(client, auth))


def user_token(client, auth, user_id="u-1"):
    """Headers for the in-app routes of `user_id`, with a freshly minted token."""
    token = client.post(f"/v1/recipients/{user_id}/inapp-token", headers=auth).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def user(client, auth):
    def make(user_id="u-1", **profile):
        data = {"email": "ada@example.com", "phone": "+44 7400 123456", "timezone": "UTC",
                "consents": {"sms": True, "email": True, "push": True}}
        data.update(profile)
        r = client.put(f"/v1/recipients/{user_id}", headers=auth, json=data)
        assert r.status_code in (200, 201), r.get_json()
        return user_id

    return make


@pytest.fixture
def send(client, auth):
    def post(category="otp", body="Your code is 123456", urgency="high", user_id="u-1", **extra):
        payload = {"recipient": {"user_id": user_id}, "category": category, "urgency": urgency,
                   "content": {"title": "Hi", "body": body}, **extra}
        r = client.post("/v1/messages", headers=auth, json=payload)
        assert r.status_code == 202, r.get_json()
        return r.get_json()

    return post


@pytest.fixture
def message(client, auth):
    def get(message_id):
        return client.get(f"/v1/messages/{message_id}", headers=auth).get_json()

    return get


# -- email event webhooks: keys and signers (generated once per module) ---------------------


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def sendgrid_public_key(sendgrid_key) -> str:
    return sendgrid_public_key_b64(sendgrid_key)


@pytest.fixture(scope="module")
def sns_signer():
    """An RSA key and a certificate for it from the test CA, valid around the test clock."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    cert, _ = shared_ca().issue("sns.amazonaws.com", key=key, server_auth=False,
                                not_before=start, not_after=start + dt.timedelta(days=60))
    return key, cert.public_bytes(serialization.Encoding.PEM)


class Recorder:
    """Stands in for the HTTPS certificate fetcher / subscription confirmer."""

    def __init__(self, responses: dict[str, bytes] | None = None) -> None:
        self.responses = responses or {}
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.responses.get(url, b"")
