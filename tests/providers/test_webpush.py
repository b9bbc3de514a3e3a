"""The web push provider against a wire-level push service fake that checks the VAPID JWT and
decrypts the aes128gcm payload with the subscription's key: what the browser reads, the error
table (404/410 dead, 413 permanent, 429/5xx transient with Retry-After, 401/403 configuration),
the endpoint allow-list, and the settings' one-line errors."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from pywebpush import Vapid

from providers.base import Channel, Delivery, ErrorClass, ProviderError
from providers.catalog import BY_PLATFORM, PUSH_PLATFORMS
from providers.webpush import Env, WebPushProvider, WebPushSettings, check_token
from tests.fakes.webpush_fake import WebPushFake

SUBJECT = "mailto:ops@example.com"


def raw_key() -> str:
    vapid = Vapid()
    vapid.generate_keys()
    return base64.urlsafe_b64encode(vapid.private_key.private_numbers().private_value.to_bytes(32, "big")) \
        .rstrip(b"=").decode()


@pytest.fixture(scope="module")
def key():
    return raw_key()


@pytest.fixture
def push():
    with WebPushFake() as fake:
        yield fake


@pytest.fixture
def provider(push, key):
    settings = WebPushSettings.from_env({Env.VAPID_PRIVATE_KEY: key, Env.VAPID_SUBJECT: SUBJECT,
                                         Env.ENDPOINT_HOSTS: push.origin.removeprefix("http://")})
    p = WebPushProvider(settings, timeout=5)
    yield p
    p.close()


def delivery(subscription, **extra) -> Delivery:
    fields = {"message_id": "01MSG", "attempt_id": "01ATT", "channel": Channel.PUSH, "to": json.dumps(subscription),
              "title": "Hi", "body": "Your parcel is here", "action_url": "https://app.example.com/p/1",
              "platform": "webpush"}
    return Delivery(**{**fields, **extra})


def test_payload_decrypts_to_what_was_sent_with_a_valid_vapid_jwt(push, provider):
    subscription = push.subscribe()
    result = provider.send(delivery(subscription))
    assert result.provider == "webpush" and result.provider_message_id
    [got] = push.received
    assert json.loads(got.payload) == {"title": "Hi", "body": "Your parcel is here",
                                       "url": "https://app.example.com/p/1", "message_id": "01MSG", "image": None}
    assert got.claims["sub"] == SUBJECT and got.claims["aud"] == push.origin
    assert got.headers["content-encoding"] == "aes128gcm"
    assert int(got.headers["ttl"]) == 24 * 3600 and got.headers["urgency"] == "normal"


def test_expiry_becomes_the_ttl_and_a_past_one_is_never_sent(push, provider):
    subscription = push.subscribe()
    provider.send(delivery(subscription, expires_at=datetime.now(UTC) + timedelta(minutes=10), urgency="high"))
    assert 590 <= int(push.received[-1].headers["ttl"]) <= 600
    assert push.received[-1].headers["urgency"] == "high"
    with pytest.raises(ProviderError) as err:
        provider.send(delivery(subscription, expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert err.value.error_class == ErrorClass.PERMANENT and len(push.received) == 1


def test_a_long_body_is_cut_to_fit_the_push_service(push, provider):
    provider.send(delivery(push.subscribe(), body="é" * 5000))
    payload = json.loads(push.received[-1].payload)
    assert payload["body"].endswith("…") and len(push.received[-1].payload) <= 3800


@pytest.mark.parametrize("status", [404, 410])
def test_a_dead_subscription_deactivates_the_device(push, provider, status):
    subscription = push.subscribe()
    if status == 410:
        push.expire(subscription["endpoint"])
    else:
        subscription["endpoint"] = push.origin + "/push/never-issued"
    with pytest.raises(ProviderError) as err:
        provider.send(delivery(subscription))
    assert err.value.error_class == ErrorClass.PERMANENT and err.value.deactivate_address
    assert err.value.code == f"HTTP_{status}"


@pytest.mark.parametrize(("status", "error_class", "retry_after"), [
    (429, ErrorClass.TRANSIENT, 30.0), (503, ErrorClass.TRANSIENT, 7.0), (500, ErrorClass.TRANSIENT, None),
    (413, ErrorClass.PERMANENT, None), (400, ErrorClass.PERMANENT, None),
    (401, ErrorClass.CONFIGURATION, None), (403, ErrorClass.CONFIGURATION, None),
])
def test_the_error_table(push, provider, status, error_class, retry_after):
    push.fail_next(status, int(retry_after) if retry_after else None)
    with pytest.raises(ProviderError) as err:
        provider.send(delivery(push.subscribe()))
    assert err.value.error_class == error_class and err.value.retry_after == retry_after
    assert not err.value.deactivate_address


def test_the_vapid_header_carries_our_public_key(push, provider, key):
    """The fake verifies the JWT against k=; k= must be the public half of our configured key."""
    provider.send(delivery(push.subscribe()))
    authorization = push.received[-1].headers["authorization"]
    public = Vapid.from_raw(key.encode()).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert f"k={base64.urlsafe_b64encode(public).rstrip(b'=').decode()}" in authorization
    claims = push.received[-1].claims
    assert 0 < claims["exp"] - time.time() <= 24 * 3600


def test_a_subscription_key_off_the_curve_is_a_dead_device(push, provider):
    subscription = push.subscribe()
    subscription["keys"]["p256dh"] = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()
    with pytest.raises(ProviderError) as err:
        provider.send(delivery(subscription))
    assert err.value.code == "BAD_SUBSCRIPTION" and err.value.deactivate_address and push.received == []


def test_endpoints_outside_the_allowed_push_services_are_never_fetched(push, key):
    settings = WebPushSettings.from_env({Env.VAPID_PRIVATE_KEY: key, Env.VAPID_SUBJECT: SUBJECT})
    provider = WebPushProvider(settings)  # default hosts: the browsers' push services, https only
    with pytest.raises(ProviderError) as err:
        provider.send(delivery(push.subscribe()))
    assert err.value.code == "BAD_SUBSCRIPTION" and err.value.deactivate_address
    assert push.received == [] and push.refused == []
    assert provider._allowed("https://fcm.googleapis.com/fcm/send/abc")
    assert provider._allowed("https://updates.push.services.mozilla.com/wpush/v2/abc")
    assert not provider._allowed("http://fcm.googleapis.com/fcm/send/abc")
    assert not provider._allowed("https://fcm.googleapis.com.evil.example/x")
    assert not provider._allowed("https://evil.example@127.0.0.1/x")


@pytest.mark.parametrize("env", [
    {Env.VAPID_PRIVATE_KEY: "not-a-key", Env.VAPID_SUBJECT: SUBJECT},
    {Env.VAPID_PRIVATE_KEY: "A" * 43, Env.VAPID_SUBJECT: SUBJECT},
    {Env.VAPID_PRIVATE_KEY: "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----", Env.VAPID_SUBJECT: SUBJECT},
    {Env.VAPID_PRIVATE_KEY: "RAW", Env.VAPID_SUBJECT: "ops@example.com"},
    {Env.VAPID_PRIVATE_KEY: "RAW"},
])
def test_bad_settings_are_one_line_naming_the_variable(env, key):
    env = {k: key if v == "RAW" else v for k, v in env.items()}
    with pytest.raises(ValueError) as err:
        WebPushSettings.from_env(env)
    message = str(err.value)
    assert "\n" not in message and message.startswith("WEBPUSH_VAPID_") and key not in message


def test_a_bad_key_stops_startup_with_a_config_error(make_app):
    from orchestrator.config import ConfigError

    with pytest.raises(ConfigError, match="WEBPUSH_VAPID_PRIVATE_KEY"):
        make_app(WEBPUSH_VAPID_PRIVATE_KEY="not-a-key", WEBPUSH_VAPID_SUBJECT=SUBJECT)


def test_unset_means_sandboxed():
    assert WebPushSettings.from_env({}) is None


def test_the_catalog_declares_webpush_with_its_token_check(push):
    assert "webpush" in PUSH_PLATFORMS and BY_PLATFORM["webpush"].check_token is check_token
    good = push.subscribe()
    assert check_token(json.dumps(good)) is None
    bad_key = {**good, "keys": {**good["keys"], "p256dh": "AAAA"}}
    for token in ("opaque", "[]", json.dumps({"endpoint": "ftp://x/y", "keys": good["keys"]}),
                  json.dumps(bad_key), json.dumps({**good, "keys": {"p256dh": good["keys"]["p256dh"]}})):
        assert check_token(token), token
