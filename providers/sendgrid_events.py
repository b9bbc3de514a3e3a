"""SendGrid Event Webhook: signature check and event parsing. Pure functions, no web framework.

SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 and sends the base64 DER
signature and the timestamp in these headers; the verification key shown in SendGrid's
settings is a base64 DER SubjectPublicKeyInfo (PEM is accepted too).

Events map to our vocabulary through `EVENT_RULES`. Email "open" is our `read` signal: it is
the only read indication email has, with known noise (image blocking hides opens; Apple Mail
Privacy Protection pre-fetches them — those are flagged `sg_machine_open` and not counted).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import event_fields, safe_json
from .base import AttemptStatus, Channel, Engagement, EventFault, MalformedEvent, Receipt, RejectedEvent, SignatureError
from .email_common import (
    SENDGRID_ARG_MESSAGE_ID,
    SENDGRID_ARG_PROVIDER_MESSAGE_ID,
    email_address_signal,
    parse_message_id,
)
from .spec import ProviderSpec

PROVIDER_NAME = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DEFAULT_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class EventRule:
    status: AttemptStatus | None = None
    engagement: Engagement | None = None
    error_code: str | None = None


# event (or "bounce:<type>") -> what it means for the attempt. No status = record only.
EVENT_RULES: dict[str, EventRule] = {
    # Accepted by SendGrid for delivery: the same step as an SMTP 250 from our relay.
    "processed": EventRule(AttemptStatus.SENT),
    "delivered": EventRule(AttemptStatus.DELIVERED),
    # Receiving server said "try later"; SendGrid retries for up to 72 h. Not terminal.
    "deferred": EventRule(error_code="deferred"),
    "bounce:bounce": EventRule(AttemptStatus.BOUNCED, error_code="bounce"),
    # Blocked = rejected for reasons other than the address (reputation, content): the
    # address may be fine, so undelivered rather than bounced.
    "bounce:blocked": EventRule(AttemptStatus.UNDELIVERED, error_code="blocked"),
    # Dropped before sending (suppressed address, invalid, spam content).
    "dropped": EventRule(AttemptStatus.FAILED, error_code="dropped"),
    "open": EventRule(engagement=Engagement.READ),
    "open:machine": EventRule(error_code="machine_open"),   # privacy pre-fetch, not a person
    "click": EventRule(engagement=Engagement.CLICKED),
    # Consent signals: the orchestrator withdraws (marketing) consent on these.
    "spamreport": EventRule(error_code="spamreport"),
    "unsubscribe": EventRule(error_code="unsubscribe"),
    "group_unsubscribe": EventRule(error_code="unsubscribe"),
    "group_resubscribe": EventRule(error_code="resubscribe"),
}
UNKNOWN_EVENT = EventRule()   # newer event types are recorded, never dropped

# The string fields of an event that are read or stored, and the longest accepted. The ids
# fit the orchestrator's receipt columns (provider ids 255 characters, its message ids 26);
# SendGrid's own ids are shorter (sg_event_id at most 100), names of events far shorter.
FIELD_LIMITS: dict[str, int] = {
    "event": 64,
    "type": 64,
    "sg_event_id": 255,
    "sg_message_id": 255,
    "smtp-id": 255,
    SENDGRID_ARG_PROVIDER_MESSAGE_ID: 255,
    SENDGRID_ARG_MESSAGE_ID: 26,
}


def _rule_key(event: dict[str, Any]) -> str:
    kind = str(event.get("event", ""))
    if kind == "bounce":
        # Older payloads have no "type"; a bounce without one is a real bounce.
        return f"bounce:{event.get('type') or 'bounce'}"
    if kind == "open" and event.get("sg_machine_open") is True:
        return "open:machine"
    return kind


def rule_for(event: dict[str, Any]) -> EventRule:
    return EVENT_RULES.get(_rule_key(event), UNKNOWN_EVENT)


# -- signature ------------------------------------------------------------------------------


def load_sendgrid_public_key(key: str) -> ec.EllipticCurvePublicKey:
    """Load the verification key (base64 DER as SendGrid shows it, or PEM). A bad key is our
    configuration, so this raises ValueError, not SignatureError: call it at start-up."""
    text = key.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode())
        else:
            loaded = serialization.load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError("SendGrid verification key is not a base64 DER or PEM public key") from exc
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(loaded.curve, ec.SECP256R1):
        raise ValueError("SendGrid verification key must be an ECDSA P-256 public key")
    return loaded


def verify_sendgrid_signature(
    public_key_b64_or_pem: str | ec.EllipticCurvePublicKey,
    payload: bytes,
    signature_b64: str,
    timestamp: str,
    *,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless `signature_b64` signs `timestamp + payload` and the timestamp
    is within `tolerance_seconds` of `now` (replay protection). `payload` must be the raw body
    bytes exactly as received: re-serialised JSON will not verify."""
    key = (
        public_key_b64_or_pem
        if isinstance(public_key_b64_or_pem, ec.EllipticCurvePublicKey)
        else load_sendgrid_public_key(public_key_b64_or_pem)
    )
    if not signature_b64 or not timestamp:
        raise SignatureError("missing SendGrid signature or timestamp header")
    try:
        signed_at = int(timestamp.strip())
    except ValueError:
        raise SignatureError("SendGrid timestamp is not an integer") from None
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("SendGrid signature is not base64") from None
    try:
        key.verify(signature, timestamp.strip().encode() + payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError("SendGrid signature does not match the payload") from None
    # Checked after the signature so a forged timestamp cannot probe the clock window.
    if abs(now - signed_at) > tolerance_seconds:
        raise SignatureError("SendGrid timestamp is outside the accepted window")


# -- parsing --------------------------------------------------------------------------------


def _ids(event: dict[str, Any]) -> tuple[str, str | None]:
    """(provider_message_id, our message id) for one event.

    provider_message_id is our Message-ID (bare) whenever the event lets us recover it — that
    is what `SMTPEmailProvider` returned as `SendResult.provider_message_id`, so the
    orchestrator's lookup by provider id finds the attempt. Sources, best first: the custom
    arg we set through X-SMTPAPI (on every event), then "smtp-id" (the Message-ID header; on
    delivery events, not on opens/clicks). Otherwise SendGrid's own id: sg_message_id up to
    ".filter..." (the X-Message-Id its API returned), stable across one message's events."""
    ours = None
    for candidate in (event.get(SENDGRID_ARG_PROVIDER_MESSAGE_ID), event.get("smtp-id")):
        ours = parse_message_id(candidate if isinstance(candidate, str) else None)
        if ours:
            break
    custom = event.get(SENDGRID_ARG_MESSAGE_ID)
    message_id = custom if isinstance(custom, str) and custom else (ours.message_id if ours else None)
    if ours:
        return ours.bare, message_id
    sg_id = str(event.get("sg_message_id") or "")
    return sg_id.split(".filter", 1)[0], message_id


def _event_id(event: dict[str, Any]) -> str:
    value = event.get("sg_event_id")
    if isinstance(value, str) and value:
        return value
    # Without SendGrid's id, a digest of the event still deduplicates exact redeliveries.
    digest = hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()
    return f"sha256:{digest[:32]}"


def parse_sendgrid_event(event: dict[str, Any], index: int | None = None) -> Receipt:
    """One event as a Receipt; MalformedEvent names a field (prefixed by the event's `index`
    in its batch) whose value cannot be read or stored."""
    path: list[str | int] = [] if index is None else [index]
    prefix = "".join(f"{p}." for p in path)
    event_fields.check_values(event, path)
    event_fields.check_texts(event, FIELD_LIMITS, prefix)
    occurred_at = event_fields.epoch_seconds(event.get("timestamp"), f"{prefix}timestamp")
    rule = rule_for(event)
    provider_message_id, message_id = _ids(event)
    return Receipt(
        provider=PROVIDER_NAME,
        provider_message_id=provider_message_id,
        status=rule.status,
        event_id=_event_id(event),
        occurred_at=occurred_at,
        raw=event,
        engagement=rule.engagement,
        error_code=rule.error_code,
        message_id=message_id,
    )


def parse_sendgrid_batch(payload: bytes) -> tuple[list[Receipt], list[RejectedEvent]]:
    """Parse a (verified) Event Webhook body, a JSON array of events, event by event: the
    receipts of the events that can be taken and the events refused for a malformed field,
    so one bad event does not cost the others. Raises ValueError for a body that is not a
    JSON array (or nests too deep to read), so the webhook can answer 400."""
    try:
        events = safe_json.loads_unchecked(payload)
    except safe_json.UnsafeJson as exc:
        raise ValueError(f"SendGrid event body: {exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("SendGrid event body is not JSON") from exc
    if not isinstance(events, list):
        raise ValueError("SendGrid event body must be a JSON array of objects")
    receipts: list[Receipt] = []
    refused: list[RejectedEvent] = []
    for index, event in enumerate(events):
        try:
            if not isinstance(event, dict):
                raise MalformedEvent(str(index), EventFault.INVALID_VALUE, "must be a JSON object")
            receipts.append(parse_sendgrid_event(event, index))
        except MalformedEvent as exc:
            refused.append(event_fields.rejected(PROVIDER_NAME, event, exc))
    return receipts, refused


def parse_sendgrid_events(payload: bytes) -> list[Receipt]:
    """`parse_sendgrid_batch` for callers that take all or nothing: raises ValueError (the
    first MalformedEvent) when any event is refused."""
    receipts, refused = parse_sendgrid_batch(payload)
    if refused:
        raise refused[0].error
    return receipts


class Env(StrEnum):
    WEBHOOK_PUBLIC_KEY = "SENDGRID_WEBHOOK_PUBLIC_KEY"  # the Event Webhook's verification key


@dataclass(frozen=True)
class SendGridSettings:
    """SendGrid's Event Webhook: receipts for email sent through SendGrid's SMTP relay."""

    webhook_public_key: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SendGridSettings | None:
        """None when no verification key is set (the webhook answers 404)."""
        key = (env.get(Env.WEBHOOK_PUBLIC_KEY) or "").strip()
        return cls(key) if key else None


# Receipts only: the email itself goes by SMTP (smtp_email.py).
SPEC = ProviderSpec(name=PROVIDER_NAME, channel=Channel.EMAIL, rank=21, settings=SendGridSettings.from_env,
                    signals=email_address_signal)
