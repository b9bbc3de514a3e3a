"""Twilio SMS provider, exercised over real HTTP against tests/fakes/twilio_fake.py.

Nothing of ours or of the SDK is mocked: the provider's `twilio.rest.Client` talks to a local
server that answers the way Twilio's REST API does.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# tests/ is not a package on sys.path (the project is an editable install that maps only its
# three packages), so make the repo root importable to reach the shared fakes.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from providers.base import (  # noqa: E402
    AttemptStatus,
    Channel,
    Delivery,
    Engagement,
    ErrorClass,
    ProviderError,
    SignatureError,
)
from providers.twilio_errors import TWILIO_ERROR_CODES  # noqa: E402
from providers.twilio_sms import (  # noqa: E402
    TwilioSMSProvider,
    error_for_receipt,
    mask_phone,
    parse_status_callback,
    public_url_for,
    verify_twilio_signature,
)
from providers.twilio_statuses import STATUS_MAP, TwilioMessageStatus  # noqa: E402
from tests.fakes.twilio_fake import (  # noqa: E402
    TwilioFake,
    closed_port_url,
    sign,
    signed_callback,
    signed_json_callback,
)

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
FROM = "+15005550006"
TO = "+447700900789"
BODY = "Your code is 123456"
CALLBACK = "https://hooks.example.com/webhooks/twilio/status"
PROXIED_URL = "http://10.0.0.5:8000/webhooks/twilio/status"  # the same request as the app sees it
SID_RE = re.compile(r"^SM[0-9a-f]{32}$")


@pytest.fixture
def fake():
    with TwilioFake(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def provider(fake):
    return TwilioSMSProvider(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM, base_url=fake.base_url, timeout=2.0)


def delivery(**overrides) -> Delivery:
    values = dict(message_id="msg-1", attempt_id="att-1", channel=Channel.SMS, to=TO, body=BODY,
                  status_callback_url=CALLBACK)
    values.update(overrides)
    return Delivery(**values)


def send_expecting_error(provider: TwilioSMSProvider, d: Delivery | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.send(d or delivery())
    return info.value


# --- sending ---------------------------------------------------------------------------------


def test_send_posts_twilio_form_with_basic_auth_and_returns_sid(fake, provider):
    result = provider.send(delivery())

    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert req.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.form == {"To": TO, "From": FROM, "Body": BODY, "StatusCallback": CALLBACK}

    assert result.provider == "twilio"
    assert SID_RE.match(result.provider_message_id)
    assert result.provider_message_id in fake.messages
    assert result.status == AttemptStatus.QUEUED
    assert result.sandboxed is False
    # raw keeps ids and status, never the number or the text
    assert result.raw["sid"] == result.provider_message_id
    assert result.raw["num_segments"] == "1"
    assert "to" not in result.raw and "body" not in result.raw


def test_configured_status_callback_used_when_delivery_has_none(fake):
    p = TwilioSMSProvider(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM, base_url=fake.base_url,
                          status_callback_url="https://cfg.example.com/cb")
    p.send(delivery(status_callback_url=None))
    p.send(delivery(status_callback_url="https://per-delivery.example.com/cb"))
    assert fake.requests[0].form["StatusCallback"] == "https://cfg.example.com/cb"
    assert fake.requests[1].form["StatusCallback"] == "https://per-delivery.example.com/cb"


def test_no_status_callback_field_when_none_configured(fake, provider):
    provider.send(delivery(status_callback_url=None))
    assert "StatusCallback" not in fake.requests[0].form


def test_messaging_service_sender_is_accepted_status_queued(fake):
    p = TwilioSMSProvider(ACCOUNT_SID, AUTH_TOKEN, messaging_service_sid="MG" + "2" * 32,
                          base_url=fake.base_url)
    result = p.send(delivery())
    assert fake.requests[0].form["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in fake.requests[0].form
    assert result.raw["status"] == "accepted"
    assert result.status == AttemptStatus.QUEUED


def test_expiry_becomes_validity_period(fake, provider):
    provider.send(delivery(expires_at=datetime.now(UTC) + timedelta(minutes=5)))
    assert 290 <= int(fake.requests[0].form["ValidityPeriod"]) <= 300


def test_expired_delivery_is_not_sent(fake, provider):
    err = send_expecting_error(provider, delivery(expires_at=datetime.now(UTC) - timedelta(seconds=5)))
    assert err.error_class == ErrorClass.PERMANENT
    assert fake.requests == []


def test_wrong_channel_is_a_programming_error(provider):
    with pytest.raises(ValueError):
        provider.send(delivery(channel=Channel.EMAIL))


# --- error classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http_status", "code", "error_class", "deactivate"),
    [
        (400, 21211, ErrorClass.PERMANENT, True),       # invalid To
        (400, 21610, ErrorClass.PERMANENT, True),       # unsubscribed (STOP)
        (400, 21614, ErrorClass.PERMANENT, True),       # not a mobile number
        (400, 21612, ErrorClass.PERMANENT, False),      # cannot route
        (400, 21617, ErrorClass.PERMANENT, False),      # body too long
        (400, 21408, ErrorClass.CONFIGURATION, False),  # region not enabled
        (400, 21606, ErrorClass.CONFIGURATION, False),  # From not SMS-capable
        (401, 20003, ErrorClass.CONFIGURATION, False),  # auth failed
        (429, 20429, ErrorClass.TRANSIENT, False),      # too many requests
        # The code wins over the HTTP status: a listed code means the same on any status.
        (503, 21211, ErrorClass.PERMANENT, True),
    ],
)
def test_twilio_error_codes_classified(fake, provider, http_status, code, error_class, deactivate):
    fake.fail_next(status=http_status, code=code)
    err = send_expecting_error(provider)
    assert err.error_class == error_class
    assert err.deactivate_address is deactivate
    assert err.code == str(code)
    assert err.provider == "twilio"


@pytest.mark.parametrize(
    ("http_status", "json_body", "error_class"),
    [
        (500, True, ErrorClass.TRANSIENT),
        (502, False, ErrorClass.TRANSIENT),   # HTML page from a load balancer
        (503, True, ErrorClass.TRANSIENT),
        (429, False, ErrorClass.TRANSIENT),
        (408, True, ErrorClass.TRANSIENT),
        (401, False, ErrorClass.CONFIGURATION),
        (403, True, ErrorClass.CONFIGURATION),
        (400, False, ErrorClass.PERMANENT),   # unknown 4xx: refused, do not retry
        (404, True, ErrorClass.PERMANENT),
    ],
)
def test_http_status_without_known_code(fake, provider, http_status, json_body, error_class):
    fake.fail_next(status=http_status, code=None, json_body=json_body)
    err = send_expecting_error(provider)
    assert err.error_class == error_class
    assert err.deactivate_address is False
    assert err.code == str(http_status)


def test_unknown_twilio_code_on_4xx_is_permanent_without_deactivation(fake, provider, caplog):
    assert 29999 not in TWILIO_ERROR_CODES
    fake.fail_next(status=400, code=29999, message="Something new")
    with caplog.at_level(logging.WARNING, logger="providers.twilio_sms"):
        err = send_expecting_error(provider)
    assert (err.error_class, err.deactivate_address, err.code) == (ErrorClass.PERMANENT, False, "29999")
    assert "29999" in caplog.text  # unlisted codes are logged so the table can grow


def test_unknown_twilio_code_on_5xx_is_transient(fake, provider):
    fake.fail_next(status=500, code=20500)
    assert send_expecting_error(provider).error_class == ErrorClass.TRANSIENT


@pytest.mark.parametrize(("header", "expected"), [
    ("7", 7.0),
    ("99999999999", 3600.0),  # capped (providers/retry_after.py)
    ("inf", None),            # once passed on as inf: deliver's retry time overflowed
    ("1e12", None),
    ("nan", None),
    ("-3", None),
])
def test_retry_after_is_passed_on(fake, provider, header, expected):
    fake.fail_next(status=429, code=20429, headers={"Retry-After": header})
    err = send_expecting_error(provider)
    assert err.error_class == ErrorClass.TRANSIENT
    assert err.retry_after == expected


def test_real_bad_credentials_are_configuration(fake):
    p = TwilioSMSProvider(ACCOUNT_SID, "wrong-token", from_number=FROM, base_url=fake.base_url)
    err = send_expecting_error(p)
    assert (err.error_class, err.code) == (ErrorClass.CONFIGURATION, "20003")
    assert fake.messages == {}


def test_fake_validation_error_flows_through(fake, provider):
    err = send_expecting_error(provider, delivery(body="x" * 1601))
    assert (err.error_class, err.code, err.deactivate_address) == (ErrorClass.PERMANENT, "21617", False)


def test_connection_refused_is_transient():
    p = TwilioSMSProvider(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM, base_url=closed_port_url(), timeout=1.0)
    err = send_expecting_error(p)
    assert (err.error_class, err.code) == (ErrorClass.TRANSIENT, "connection_error")


def test_connection_reset_is_transient(fake, provider):
    fake.reset_next()
    err = send_expecting_error(provider)
    assert (err.error_class, err.code) == (ErrorClass.TRANSIENT, "connection_error")


def test_read_timeout_is_transient_and_bounded(fake):
    p = TwilioSMSProvider(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM, base_url=fake.base_url, timeout=0.3)
    fake.hang_next(5)
    started = time.monotonic()
    err = send_expecting_error(p)
    assert time.monotonic() - started < 2
    assert (err.error_class, err.code) == (ErrorClass.TRANSIENT, "timeout")


def test_provider_recovers_after_network_error(fake, provider):
    fake.reset_next()
    send_expecting_error(provider)
    assert SID_RE.match(provider.send(delivery()).provider_message_id)


@pytest.mark.parametrize("body", ["<html>ok</html>", "", "{}"])
def test_unusable_success_body_is_transient(fake, provider, body):
    fake.respond_next(201, body, {"Content-Type": "text/html"})
    err = send_expecting_error(provider)
    assert (err.error_class, err.code) == (ErrorClass.TRANSIENT, "bad_response")


def test_created_but_already_failed_message_is_classified(fake, provider):
    fake.respond_next(201, '{"sid": "SM' + "f" * 32 + '", "status": "failed", "error_code": 30006}',
                      {"Content-Type": "application/json"})
    err = send_expecting_error(provider)
    assert (err.error_class, err.code, err.deactivate_address) == (ErrorClass.PERMANENT, "30006", True)


def test_rfc9457_problem_body_is_classified_by_code(fake, provider):
    # Newer Twilio APIs answer with RFC 9457 problem details; the SDK raises
    # TwilioServiceException for those instead of TwilioRestException.
    problem = ('{"type": "https://www.twilio.com/docs/errors/21610", "title": "Unsubscribed recipient",'
               ' "status": 400, "code": 21610}')
    fake.respond_next(400, problem, {"Content-Type": "application/problem+json"})
    err = send_expecting_error(provider)
    assert (err.error_class, err.code, err.deactivate_address) == (ErrorClass.PERMANENT, "21610", True)


def test_concurrent_sends_from_one_provider(fake, provider):
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: provider.send(delivery(attempt_id=f"att-{i}")), range(24)))
    assert len({r.provider_message_id for r in results}) == 24
    assert len(fake.requests) == 24


def test_logs_never_carry_number_or_body(fake, provider, caplog):
    with caplog.at_level(logging.DEBUG):
        provider.send(delivery())
        fake.fail_next(status=400, code=21211)
        send_expecting_error(provider)
        fake.fail_next(status=400, code=29999)
        send_expecting_error(provider)
    assert TO not in caplog.text
    assert BODY not in caplog.text
    assert mask_phone(TO) in caplog.text


def test_mask_phone():
    assert mask_phone("+447700900789") == "+44******789"
    assert mask_phone("") == ""
    assert "12345" not in mask_phone("12345")


# --- configuration ---------------------------------------------------------------------------


def test_from_env_returns_none_without_credentials():
    assert TwilioSMSProvider.from_env({}) is None
    assert TwilioSMSProvider.from_env({"TWILIO_ACCOUNT_SID": " ", "TWILIO_AUTH_TOKEN": ""}) is None


def test_from_env_with_half_the_credentials_is_a_configuration_mistake():
    # Half a configuration is an error, not a silent sandbox.
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        TwilioSMSProvider.from_env({"TWILIO_ACCOUNT_SID": ACCOUNT_SID})
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        TwilioSMSProvider.from_env({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": " "})


def test_from_env_without_sender_is_a_configuration_mistake():
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER"):
        TwilioSMSProvider.from_env({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN})


def test_from_env_sends_to_configured_base_url(fake):
    p = TwilioSMSProvider.from_env({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM,
        "TWILIO_API_BASE_URL": fake.base_url + "/",
        "TWILIO_STATUS_CALLBACK_URL": CALLBACK,
    })
    assert p is not None and p.name == "twilio" and p.channel == Channel.SMS
    assert AUTH_TOKEN not in repr(p)
    p.send(delivery(status_callback_url=None))
    assert fake.requests[0].form["StatusCallback"] == CALLBACK


def test_stray_region_env_does_not_redirect_the_sdk(fake, provider, monkeypatch):
    # The SDK reads TWILIO_REGION/TWILIO_EDGE from os.environ and rewrites hostnames with it.
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    p = TwilioSMSProvider(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM, base_url=fake.base_url)
    assert SID_RE.match(p.send(delivery()).provider_message_id)


# --- status callbacks ------------------------------------------------------------------------

STATUS_CASES = [
    ("accepted", AttemptStatus.QUEUED, None),
    ("scheduled", AttemptStatus.QUEUED, None),
    ("queued", AttemptStatus.QUEUED, None),
    ("sending", AttemptStatus.SENDING, None),
    ("sent", AttemptStatus.SENT, None),
    ("delivered", AttemptStatus.DELIVERED, None),
    ("undelivered", AttemptStatus.UNDELIVERED, None),
    ("failed", AttemptStatus.FAILED, None),
    ("canceled", AttemptStatus.CANCELLED, None),
    ("read", AttemptStatus.DELIVERED, Engagement.READ),
    ("partially_delivered", AttemptStatus.DELIVERED, None),
    ("receiving", None, None),
    ("received", None, None),
    ("some_future_status", None, None),
]


def test_status_cases_cover_the_table():
    assert {s for s, _, _ in STATUS_CASES} >= {s.value for s in TwilioMessageStatus}
    assert set(STATUS_MAP) == set(TwilioMessageStatus)


@pytest.mark.parametrize(("twilio_status", "status", "engagement"), STATUS_CASES)
def test_parse_status_callback(twilio_status, status, engagement):
    sid = "SM" + "a" * 32
    form = signed_callback(AUTH_TOKEN, CALLBACK, message_sid=sid, status=twilio_status).form
    receipt = parse_status_callback(form)
    assert receipt.provider == "twilio"
    assert receipt.provider_message_id == sid
    assert receipt.status == status
    assert receipt.engagement == engagement
    assert receipt.event_id == f"{sid}:{twilio_status}"
    assert receipt.occurred_at is None
    assert receipt.error_code is None
    assert receipt.raw == form


def test_duplicate_callbacks_share_event_id_and_statuses_differ():
    sid = "SM" + "b" * 32
    first = parse_status_callback({"MessageSid": sid, "MessageStatus": "delivered"})
    again = parse_status_callback({"MessageSid": sid, "MessageStatus": "delivered"})
    sent = parse_status_callback({"MessageSid": sid, "MessageStatus": "sent"})
    assert first.event_id == again.event_id != sent.event_id


def test_parse_status_callback_legacy_sms_fields_and_error_code():
    form = {"SmsSid": "SM" + "c" * 32, "SmsStatus": "undelivered", "ErrorCode": "30005"}
    receipt = parse_status_callback(form)
    assert receipt.provider_message_id == "SM" + "c" * 32
    assert receipt.status == AttemptStatus.UNDELIVERED
    assert receipt.error_code == "30005"


def test_parse_status_callback_without_sid_is_bad_input():
    with pytest.raises(ValueError):
        parse_status_callback({"MessageStatus": "delivered"})


@pytest.mark.parametrize(
    ("code", "error_class", "deactivate"),
    [
        ("30003", ErrorClass.PERMANENT, False),   # handset unreachable: fall back, keep number
        ("30004", ErrorClass.PERMANENT, False),   # blocked
        ("30005", ErrorClass.PERMANENT, True),    # number not in service
        ("30006", ErrorClass.PERMANENT, True),    # landline / unreachable carrier
        ("30007", ErrorClass.PERMANENT, False),   # carrier filtered
        ("30008", ErrorClass.TRANSIENT, False),   # unknown error: Twilio says retry may work
        ("39999", ErrorClass.PERMANENT, False),   # unlisted: fall back, never deactivate
        (None, ErrorClass.PERMANENT, False),
    ],
)
@pytest.mark.parametrize("twilio_status", ["undelivered", "failed"])
def test_delivery_receipt_error_codes(twilio_status, code, error_class, deactivate):
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "d" * 32, status=twilio_status,
                         error_code=code)
    receipt = parse_status_callback(cb.form)
    assert receipt.status in (AttemptStatus.UNDELIVERED, AttemptStatus.FAILED)
    err = error_for_receipt(receipt)
    assert err is not None
    assert (err.error_class, err.deactivate_address) == (error_class, deactivate)
    assert err.code == (code or twilio_status)


@pytest.mark.parametrize("twilio_status", ["queued", "sent", "delivered", "read"])
def test_no_error_for_successful_receipts(twilio_status):
    receipt = parse_status_callback({"MessageSid": "SM1", "MessageStatus": twilio_status})
    assert error_for_receipt(receipt) is None


# --- signatures ------------------------------------------------------------------------------


def test_genuine_signature_accepted():
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "e" * 32, status="delivered")
    verify_twilio_signature(AUTH_TOKEN, cb.url, cb.form, cb.signature)  # no exception


def test_tampered_param_rejected():
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "e" * 32, status="undelivered")
    tampered = {**cb.form, "MessageStatus": "delivered"}
    with pytest.raises(SignatureError):
        verify_twilio_signature(AUTH_TOKEN, cb.url, tampered, cb.signature)


def test_added_param_rejected():
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "e" * 32, status="sent")
    with pytest.raises(SignatureError):
        verify_twilio_signature(AUTH_TOKEN, cb.url, {**cb.form, "ErrorCode": "30005"}, cb.signature)


def test_wrong_url_rejected():
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "e" * 32, status="delivered")
    with pytest.raises(SignatureError):
        verify_twilio_signature(AUTH_TOKEN, PROXIED_URL, cb.form, cb.signature)


def test_wrong_token_rejected():
    cb = signed_callback("another-accounts-token", CALLBACK, message_sid="SM" + "e" * 32, status="delivered")
    with pytest.raises(SignatureError):
        verify_twilio_signature(AUTH_TOKEN, cb.url, cb.form, cb.signature)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_signature_header_rejected(header):
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "e" * 32, status="delivered")
    with pytest.raises(SignatureError, match="missing"):
        verify_twilio_signature(AUTH_TOKEN, cb.url, cb.form, header)


def test_signature_with_explicit_default_port_accepted():
    # Twilio sometimes signs https://host:443/..., sometimes https://host/...; both verify.
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "e" * 32, status="sent")
    with_port = CALLBACK.replace("hooks.example.com", "hooks.example.com:443")
    verify_twilio_signature(AUTH_TOKEN, with_port, cb.form, cb.signature)


def test_sha256_body_variant_accepted():
    body = '{"MessageSid": "SM1", "MessageStatus": "delivered"}'
    url, signature = signed_json_callback(AUTH_TOKEN, CALLBACK, body)
    assert "bodySHA256=" in url
    verify_twilio_signature(AUTH_TOKEN, url, None, signature, body=body)
    verify_twilio_signature(AUTH_TOKEN, url, None, signature, body=body.encode())


def test_sha256_body_variant_tampered_body_rejected():
    body = '{"MessageSid": "SM1", "MessageStatus": "undelivered"}'
    url, signature = signed_json_callback(AUTH_TOKEN, CALLBACK, body)
    with pytest.raises(SignatureError):
        tampered = body.replace("undelivered", "delivered")
        verify_twilio_signature(AUTH_TOKEN, url, None, signature, body=tampered)


def test_sha256_url_without_body_rejected():
    # The signature covers only the URL then; without the body nothing binds the content.
    url, signature = signed_json_callback(AUTH_TOKEN, CALLBACK, '{"a": 1}')
    with pytest.raises(SignatureError):
        verify_twilio_signature(AUTH_TOKEN, url, {}, signature)


def test_body_without_sha256_in_url_rejected():
    signature = sign(AUTH_TOKEN, CALLBACK, {})
    with pytest.raises(SignatureError):
        verify_twilio_signature(AUTH_TOKEN, CALLBACK, None, signature, body='{"a": 1}')


def test_verify_via_public_url_behind_proxy():
    cb = signed_callback(AUTH_TOKEN, CALLBACK, message_sid="SM" + "e" * 32, status="delivered")
    url = public_url_for(PROXIED_URL, "https://hooks.example.com")
    assert url == CALLBACK
    verify_twilio_signature(AUTH_TOKEN, url, cb.form, cb.signature)


@pytest.mark.parametrize(
    ("request_url", "public_base", "expected"),
    [
        ("http://10.0.0.5:8000/cb?x=1", "https://hooks.example.com", "https://hooks.example.com/cb?x=1"),
        ("http://10.0.0.5:8000/cb", "https://hooks.example.com:8443/ignored", "https://hooks.example.com:8443/cb"),
        ("https://a.example.com/cb", None, "https://a.example.com/cb"),
        ("https://a.example.com/cb", "", "https://a.example.com/cb"),
    ],
)
def test_public_url_for(request_url, public_base, expected):
    assert public_url_for(request_url, public_base) == expected


def test_public_url_for_rejects_base_without_host():
    with pytest.raises(ValueError):
        public_url_for("http://x/cb", "hooks.example.com")


def test_send_then_signed_callback_round_trip(fake, provider):
    result = provider.send(delivery())
    cb = fake.status_callback_for(result.provider_message_id, "undelivered", error_code=30003)
    assert cb.url == CALLBACK
    provider.verify_signature(cb.url, cb.form, cb.signature)
    receipt = provider.parse_status_callback(cb.form)
    assert receipt.provider_message_id == result.provider_message_id
    assert receipt.status == AttemptStatus.UNDELIVERED
    assert error_for_receipt(receipt).error_class == ErrorClass.PERMANENT


def test_sms_carries_the_title_and_body_the_segments_were_counted_on(fake, provider):
    """Issue #11 defect 6: segments were counted on title + body while Twilio got the body only."""
    from providers.sms_text import sms_text

    provider.send(delivery(title="Acme", body=BODY))
    assert fake.requests[-1].form["Body"] == sms_text("Acme", BODY) == f"Acme\n{BODY}"
    provider.send(delivery(title="", body=BODY))
    assert fake.requests[-1].form["Body"] == BODY


@pytest.mark.parametrize(("title", "body"), [("", "x"), ("t", ""), ("Hi", "Your code is 1"), ("", ""),
                                             ("안녕", "코드 123"), ("a\n", "b")])
def test_provider_sms_text_matches_the_policy_rule(title, body):
    from policies.segments import sms_text as policy_sms_text
    from providers.sms_text import sms_text

    assert sms_text(title, body) == policy_sms_text(title, body)
