"""FCMProvider against a local FCM v1 + OAuth server (tests/fakes/fcm_fake.py)."""

from __future__ import annotations

import json
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `tests` is not a package; make `tests.fakes` importable
    sys.path.insert(0, str(ROOT))

from providers.base import Channel, Delivery, ErrorClass, ProviderError, SendResult  # noqa: E402
from providers.fcm import FCMProvider  # noqa: E402
from providers.fcm_errors import BY_FCM_ERROR_CODE, BY_RPC_STATUS  # noqa: E402
from tests.fakes.fcm_fake import BAD_REQUEST_TYPE, FcmFake  # noqa: E402

TOKEN = "fcm-token-" + "a" * 140


@pytest.fixture(scope="module")
def fcm_server():
    with FcmFake() as server:   # one RSA key pair and server per module: key generation is slow
        yield server


@pytest.fixture()
def fake(fcm_server):
    fcm_server.reset()
    return fcm_server


@pytest.fixture()
def provider(fake):
    with FCMProvider(fake.service_account_info, endpoint_base=fake.base_url, timeout=2.0) as p:
        yield p


def delivery(**overrides) -> Delivery:
    fields = {
        "message_id": "msg-1",
        "attempt_id": "att-1",
        "channel": Channel.PUSH,
        "to": TOKEN,
        "title": "Your order shipped",
        "body": "Arrives Tuesday",
        "platform": "fcm",
    }
    fields.update(overrides)
    return Delivery(**fields)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def send_error(provider: FCMProvider, **overrides) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.send(delivery(**overrides))
    return info.value


# -- success ---------------------------------------------------------------------------------

def test_send_success_reaches_fcm_with_oauth_token_and_payload(fake, provider):
    expires = datetime.now(UTC) + timedelta(minutes=10)
    result = provider.send(
        delivery(urgency="critical", expires_at=expires, image_url="https://img.example/x.png",
                 data={"order": 42, "kind": "shipping", "flags": {"a": True}}, action_url="app://o/42")
    )

    assert isinstance(result, SendResult)
    assert result.provider == "fcm"
    assert result.provider_message_id.startswith(f"projects/{fake.project_id}/messages/")
    assert result.sandboxed is False

    # OAuth: one JWT-bearer grant, verified by the fake against the service account's key.
    assert len(fake.token_requests) == 1
    assertion = fake.token_requests[0].body["assertion"]
    claims = jwt.decode(assertion, fake.public_key, algorithms=["RS256"],
                        audience="https://oauth2.googleapis.com/token")
    assert claims["iss"] == fake.client_email

    (sent,) = fake.sends
    assert sent.path == f"/v1/projects/{fake.project_id}/messages:send"
    assert sent.headers["authorization"].removeprefix("Bearer ") in fake.issued_tokens
    message = sent.body["message"]
    assert message["token"] == TOKEN
    assert message["notification"] == {
        "title": "Your order shipped", "body": "Arrives Tuesday", "image": "https://img.example/x.png"
    }
    assert message["data"] == {
        "order": "42", "kind": "shipping", "flags": '{"a":true}', "message_id": "msg-1",
        "action_url": "app://o/42",
    }
    assert message["android"]["priority"] == "HIGH"
    ttl = int(message["android"]["ttl"].removesuffix("s"))
    assert 590 <= ttl <= 600
    assert message["webpush"]["headers"]["Urgency"] == "high"
    assert message["apns"]["headers"]["apns-expiration"] == str(int(expires.timestamp()))
    assert sent.body["validate_only"] is False


def test_normal_urgency_and_data_only_message(fake, provider):
    provider.send(delivery(title="", body="", data={"sync": "1"}))
    message = fake.sends[0].body["message"]
    assert message["android"] == {"priority": "NORMAL"}
    assert "notification" not in message
    assert "apns" not in message


def test_access_token_reused_across_sends(fake, provider):
    for i in range(3):
        provider.send(delivery(attempt_id=f"att-{i}"))
    assert len(fake.token_requests) == 1
    assert len({s.headers["authorization"] for s in fake.sends}) == 1


def test_expired_access_token_is_refreshed_once_and_send_retried(fake, provider):
    provider.send(delivery())
    fake.expire_tokens()
    result = provider.send(delivery(attempt_id="att-2"))
    assert result.provider_message_id
    assert len(fake.token_requests) == 2
    assert [s.headers["authorization"] == fake.sends[0].headers["authorization"] for s in fake.sends] == [
        True, True, False
    ]


def test_from_env_json_and_file(fake, tmp_path):
    info = fake.service_account_info
    env = {"FCM_CREDENTIALS_JSON": json.dumps(info), "FCM_ENDPOINT": fake.base_url}
    with FCMProvider.from_env(env) as p:
        assert p.send(delivery()).provider_message_id

    path = tmp_path / "sa.json"
    path.write_text(json.dumps({**info, "token_uri": "https://oauth2.invalid/token"}))
    env = {
        "FCM_CREDENTIALS_FILE": str(path), "FCM_ENDPOINT": fake.base_url,
        "FCM_TOKEN_URI": fake.token_uri, "FCM_PROJECT_ID": fake.project_id,
    }
    with FCMProvider.from_env(env) as p:
        assert p.send(delivery()).provider_message_id
        assert p.endpoint == f"{fake.base_url}/v1/projects/{fake.project_id}/messages:send"


def test_from_env_unconfigured_and_broken():
    assert FCMProvider.from_env({}) is None
    with pytest.raises(ValueError, match="FCM_CREDENTIALS_JSON") as info:
        FCMProvider.from_env({"FCM_CREDENTIALS_JSON": "{not json -----BEGIN PRIVATE KEY-----"})
    assert "PRIVATE KEY" not in str(info.value)


# -- error classification, parametrised over the data tables ---------------------------------

HTTP_FOR_FCM_CODE = {
    "UNREGISTERED": 404, "SENDER_ID_MISMATCH": 403, "INVALID_ARGUMENT": 400, "QUOTA_EXCEEDED": 429,
    "UNAVAILABLE": 503, "INTERNAL": 500, "THIRD_PARTY_AUTH_ERROR": 401, "UNSPECIFIED_ERROR": 500,
}
HTTP_FOR_RPC_STATUS = {
    "NOT_FOUND": 404, "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503, "INTERNAL": 500, "DEADLINE_EXCEEDED": 504,
}


@pytest.mark.parametrize("error_code", sorted(BY_FCM_ERROR_CODE))
def test_fcm_error_codes_through_the_wire(fake, provider, error_code):
    expected = BY_FCM_ERROR_CODE[error_code]
    fake.fail_next(HTTP_FOR_FCM_CODE[error_code], error_code=error_code, message="Requested entity")
    error = send_error(provider)
    assert (error.error_class, error.code, error.deactivate_address) == (
        expected.error_class, error_code, expected.deactivate_address
    )
    assert error.provider == "fcm"


@pytest.mark.parametrize("status", sorted(BY_RPC_STATUS))
def test_rpc_statuses_without_fcm_detail(fake, provider, status):
    expected = BY_RPC_STATUS[status]
    fake.fail_next(HTTP_FOR_RPC_STATUS[status], status=status)
    error = send_error(provider)
    assert (error.error_class, error.code, error.deactivate_address) == (
        expected.error_class, status, expected.deactivate_address
    )


@pytest.mark.parametrize(
    ("http_status", "error_class"),
    [(400, ErrorClass.PERMANENT), (401, ErrorClass.CONFIGURATION), (403, ErrorClass.CONFIGURATION),
     (404, ErrorClass.PERMANENT), (429, ErrorClass.TRANSIENT), (500, ErrorClass.TRANSIENT),
     (502, ErrorClass.TRANSIENT), (503, ErrorClass.TRANSIENT), (599, ErrorClass.TRANSIENT),
     (418, ErrorClass.PERMANENT)],
)
def test_bare_http_status_fallback(fake, provider, http_status, error_class):
    fake.fail_next(http_status, status="SOMETHING_NEW")
    error = send_error(provider)
    assert (error.error_class, error.code) == (error_class, f"HTTP_{http_status}")


def test_unregistered_token_is_flagged_for_deactivation(fake, provider):
    fake.fail_next(404, "NOT_FOUND", "UNREGISTERED", message="Requested entity was not found.")
    error = send_error(provider)
    assert error.error_class == ErrorClass.PERMANENT
    assert error.deactivate_address is True


def test_invalid_token_argument_deactivates_but_bad_payload_does_not(fake, provider):
    violation = {"@type": BAD_REQUEST_TYPE,
                 "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}
    fake.fail_next(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", message="Invalid value",
                   extra_details=[violation])
    bad_token = send_error(provider)
    assert (bad_token.error_class, bad_token.code, bad_token.deactivate_address) == (
        ErrorClass.PERMANENT, "INVALID_REGISTRATION_TOKEN", True
    )

    fake.fail_next(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", message="Invalid android.ttl")
    bad_payload = send_error(provider)
    assert (bad_payload.error_class, bad_payload.deactivate_address) == (ErrorClass.PERMANENT, False)


def test_sender_id_mismatch_beats_the_403_status(fake, provider):
    fake.fail_next(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")
    error = send_error(provider)
    assert (error.error_class, error.deactivate_address) == (ErrorClass.PERMANENT, True)


# -- Retry-After guard -----------------------------------------------------------------------

@pytest.mark.parametrize(("code", "status", "error_code"), [
    (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    (503, "UNAVAILABLE", "UNAVAILABLE"),   # urllib3's Retry would also sleep on this one
])
def test_retry_after_of_an_hour_is_not_slept_on(fake, provider, code, status, error_code):
    fake.fail_next(code, status, error_code, retry_after=3600, times=5)
    started = time.monotonic()
    error = send_error(provider)
    assert time.monotonic() - started < 2.0
    assert error.error_class == ErrorClass.TRANSIENT
    assert error.retry_after == provider.max_retry_after == 30.0
    assert "3600" in error.detail
    assert len(fake.sends) == 1   # no hidden retry either


def test_short_retry_after_is_passed_on_and_http_date_understood(fake, provider):
    fake.fail_next(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", retry_after=7)
    assert send_error(provider).retry_after == 7.0
    fake.fail_next(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED",
                   retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    assert send_error(provider).retry_after == 0.0


# -- OAuth and network -----------------------------------------------------------------------

def test_oauth_invalid_grant_is_configuration(fake, provider):
    fake.fail_oauth("invalid_grant", "Invalid JWT Signature.")
    error = send_error(provider)
    assert error.error_class == ErrorClass.CONFIGURATION
    assert error.code == "OAUTH_REFRESH_FAILED"
    assert "invalid_grant" in error.detail
    assert fake.sends == []


def test_oauth_rejects_a_key_it_does_not_know(fake):
    with FcmFake() as stranger:   # a different key pair; same client_email and token_uri
        info = {**stranger.service_account_info, "token_uri": fake.token_uri,
                "client_email": fake.client_email}
    with FCMProvider(info, endpoint_base=fake.base_url) as p:
        error = send_error(p)
    assert error.error_class == ErrorClass.CONFIGURATION


def test_oauth_endpoint_unreachable_is_transient(fake):
    with FCMProvider(fake.service_account_info, endpoint_base=fake.base_url,
                     token_uri=closed_port_url() + "/token") as p:
        error = send_error(p)
    assert (error.error_class, error.code) == (ErrorClass.TRANSIENT, "OAUTH_UNREACHABLE")


def test_fcm_endpoint_unreachable_is_transient(fake):
    with FCMProvider(fake.service_account_info, endpoint_base=closed_port_url()) as p:
        error = send_error(p)
    assert (error.error_class, error.code) == (ErrorClass.TRANSIENT, "NETWORK_ERROR")


def test_timeout_is_transient(fake):
    with FCMProvider(fake.service_account_info, endpoint_base=fake.base_url, timeout=0.3) as p:
        fake.delay_next(3.0)  # far past the 0.3 s timeout: the bound below holds on a loaded machine
        started = time.monotonic()
        error = send_error(p)
    assert time.monotonic() - started < 2.0
    assert (error.error_class, error.code) == (ErrorClass.TRANSIENT, "TIMEOUT")


def test_already_expired_delivery_is_not_sent(fake, provider):
    error = send_error(provider, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert error.error_class == ErrorClass.PERMANENT
    assert fake.sends == []


def test_a_notification_collapses_per_attempt_so_a_resend_replaces_it(fake, provider):
    provider.send(delivery(attempt_id="01JATTEMPTULID000000000000"))
    message = fake.sends[0].body["message"]
    assert message["android"]["collapse_key"] == "01JATTEMPTULID000000000000"
    assert message["apns"]["headers"]["apns-collapse-id"] == "01JATTEMPTULID000000000000"
    assert message["webpush"]["headers"]["Topic"] == "01JATTEMPTULID000000000000"
