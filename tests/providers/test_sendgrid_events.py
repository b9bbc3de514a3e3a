"""SendGrid Event Webhook: real ECDSA signatures (keys generated here) and the event table."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers.base import AttemptStatus, Engagement, SignatureError
from providers.sendgrid_events import (
    EVENT_RULES,
    load_sendgrid_public_key,
    parse_sendgrid_events,
    verify_sendgrid_signature,
)
from tests.fakes.event_signers import sendgrid_public_key_b64
from tests.fakes.event_signers import sendgrid_sign as sign

NOW = 1_760_000_000


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def public_key_b64(signing_key) -> str:
    return sendgrid_public_key_b64(signing_key)



PAYLOAD = json.dumps(
    [{"email": "jane@example.com", "event": "delivered", "timestamp": NOW, "sg_event_id": "ev1"}]
).encode()


# -- signatures -----------------------------------------------------------------------------


def test_genuine_signature_is_accepted(signing_key, public_key_b64):
    ts = str(NOW)
    verify_sendgrid_signature(public_key_b64, PAYLOAD, sign(signing_key, PAYLOAD, ts), ts, now=NOW + 10)


def test_pem_and_preloaded_keys_work(signing_key, public_key_b64):
    ts = str(NOW)
    signature = sign(signing_key, PAYLOAD, ts)
    pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    verify_sendgrid_signature(pem, PAYLOAD, signature, ts, now=NOW)
    verify_sendgrid_signature(load_sendgrid_public_key(public_key_b64), PAYLOAD, signature, ts, now=NOW)


def test_tampered_payload_is_rejected(signing_key, public_key_b64):
    ts = str(NOW)
    signature = sign(signing_key, PAYLOAD, ts)
    tampered = PAYLOAD.replace(b"delivered", b"bounce")
    with pytest.raises(SignatureError):
        verify_sendgrid_signature(public_key_b64, tampered, signature, ts, now=NOW)


def test_tampered_timestamp_is_rejected(signing_key, public_key_b64):
    signature = sign(signing_key, PAYLOAD, str(NOW))
    with pytest.raises(SignatureError):
        verify_sendgrid_signature(public_key_b64, PAYLOAD, signature, str(NOW + 1), now=NOW)


def test_signature_from_another_key_is_rejected(public_key_b64):
    other = ec.generate_private_key(ec.SECP256R1())
    ts = str(NOW)
    with pytest.raises(SignatureError):
        verify_sendgrid_signature(public_key_b64, PAYLOAD, sign(other, PAYLOAD, ts), ts, now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_stale_or_future_timestamp_is_rejected(signing_key, public_key_b64, skew):
    ts = str(NOW)
    signature = sign(signing_key, PAYLOAD, ts)   # genuine, but replayed outside the window
    with pytest.raises(SignatureError, match="window"):
        verify_sendgrid_signature(public_key_b64, PAYLOAD, signature, ts, now=NOW - skew)


def test_tolerance_is_configurable(signing_key, public_key_b64):
    ts = str(NOW)
    signature = sign(signing_key, PAYLOAD, ts)
    verify_sendgrid_signature(public_key_b64, PAYLOAD, signature, ts, now=NOW + 900, tolerance_seconds=1000)


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [("", str(NOW)), ("not base64!!", str(NOW)), ("c2lnbmF0dXJl", str(NOW)), ("c2lnbmF0dXJl", "yesterday"),
     ("c2lnbmF0dXJl", "")],
)
def test_malformed_headers_are_signature_errors(public_key_b64, signature, timestamp):
    with pytest.raises(SignatureError):
        verify_sendgrid_signature(public_key_b64, PAYLOAD, signature, timestamp, now=NOW)


@pytest.mark.parametrize(
    "bad_key", ["", "bm90IGEga2V5", "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"]
)
def test_bad_verification_key_is_a_configuration_error(bad_key):
    with pytest.raises(ValueError):
        load_sendgrid_public_key(bad_key)


def test_non_p256_key_is_refused():
    rsa_der = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="P-256"):
        load_sendgrid_public_key(base64.b64encode(rsa_der).decode())


# -- parsing --------------------------------------------------------------------------------


def event(kind: str, **extra) -> dict:
    base = {
        "email": "jane@example.com",
        "timestamp": NOW,
        "event": kind,
        "sg_event_id": f"evt-{kind}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
    }
    base.update(extra)
    return base


@pytest.mark.parametrize(
    ("raw", "status", "engagement", "error_code"),
    [
        (event("processed"), AttemptStatus.SENT, None, None),
        (event("delivered", response="250 OK"), AttemptStatus.DELIVERED, None, None),
        (event("deferred", attempt="2"), None, None, "deferred"),
        (event("bounce", type="bounce", status="5.1.1"), AttemptStatus.BOUNCED, None, "bounce"),
        (event("bounce"), AttemptStatus.BOUNCED, None, "bounce"),   # legacy: no "type"
        (event("bounce", type="blocked", status="5.7.1"), AttemptStatus.UNDELIVERED, None, "blocked"),
        (event("dropped", reason="Bounced Address"), AttemptStatus.FAILED, None, "dropped"),
        (event("open", useragent="Mozilla"), None, Engagement.READ, None),
        (event("open", sg_machine_open=True), None, None, "machine_open"),
        (event("click", url="https://example.org"), None, Engagement.CLICKED, None),
        (event("spamreport"), None, None, "spamreport"),
        (event("unsubscribe"), None, None, "unsubscribe"),
        (event("group_unsubscribe", asm_group_id=7), None, None, "unsubscribe"),
        (event("group_resubscribe", asm_group_id=7), None, None, "resubscribe"),
        (event("some_future_event"), None, None, None),
    ],
)
def test_event_table(raw, status, engagement, error_code):
    [receipt] = parse_sendgrid_events(json.dumps([raw]).encode())
    assert (receipt.status, receipt.engagement, receipt.error_code) == (status, engagement, error_code)
    assert receipt.raw == raw


def test_every_table_entry_is_exercised():
    # The table and the parametrised cases above must not drift apart silently.
    kinds = {"processed", "delivered", "deferred", "bounce:bounce", "bounce:blocked", "dropped", "open",
             "open:machine", "click", "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"}
    assert set(EVENT_RULES) == kinds


OUR_ID = "01JATT0000000000000000000B.01JMSG0000000000000000000A@mail.example.org"


@pytest.mark.parametrize(
    ("extra", "provider_message_id", "message_id"),
    [
        # Custom args from the X-SMTPAPI header: present on every event, opens included.
        ({"orchestrator_provider_message_id": OUR_ID, "orchestrator_message_id": "01JX"}, OUR_ID, "01JX"),
        ({"smtp-id": f"<{OUR_ID}>"}, OUR_ID, "01JMSG0000000000000000000A"),
        ({"orchestrator_message_id": "01JMSGCUSTOM"}, "14c5d75ce93.dfd.64b469", "01JMSGCUSTOM"),
        ({"smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>"}, "14c5d75ce93.dfd.64b469", None),  # not ours
        ({}, "14c5d75ce93.dfd.64b469", None),
    ],
)
def test_id_recovery(extra, provider_message_id, message_id):
    [receipt] = parse_sendgrid_events(json.dumps([event("open", **extra)]).encode())
    assert (receipt.provider_message_id, receipt.message_id) == (provider_message_id, message_id)


def test_receipt_fields():
    raw = [
        event("delivered", orchestrator_message_id="01JMSG0000000000000000000A"),
        event(
            "open",
            sg_event_id="evt-2",
            **{"smtp-id": "<01JATT0000000000000000000B.01JMSG0000000000000000000Z@mail.example.org>"},
        ),
    ]
    first, second = parse_sendgrid_events(json.dumps(raw).encode())
    assert first.provider == "sendgrid"
    assert first.provider_message_id == "14c5d75ce93.dfd.64b469"   # ".filter..." suffix dropped
    assert first.event_id == "evt-delivered"
    assert first.occurred_at == datetime.fromtimestamp(NOW, UTC)
    assert first.message_id == "01JMSG0000000000000000000A"       # custom arg
    assert second.message_id == "01JMSG0000000000000000000Z"      # recovered from our Message-ID


def test_missing_event_id_gets_a_stable_digest():
    raw = event("delivered")
    del raw["sg_event_id"]
    a = parse_sendgrid_events(json.dumps([raw]).encode())[0]
    b = parse_sendgrid_events(json.dumps([raw]).encode())[0]
    assert a.event_id == b.event_id and a.event_id.startswith("sha256:")


@pytest.mark.parametrize("body", [b"", b"{", b'{"event": "open"}', b"[1, 2]", b"\xff\xfe"])
def test_malformed_body_is_value_error(body):
    with pytest.raises(ValueError):
        parse_sendgrid_events(body)


def test_signed_body_round_trip(signing_key, public_key_b64):
    body = json.dumps([event("delivered"), event("open")]).encode()
    ts = str(NOW)
    verify_sendgrid_signature(public_key_b64, body, sign(signing_key, body, ts), ts, now=NOW)
    assert [r.status for r in parse_sendgrid_events(body)] == [AttemptStatus.DELIVERED, None]
