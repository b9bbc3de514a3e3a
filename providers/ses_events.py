"""Amazon SES events delivered by SNS over HTTP(S): SNS signature check and event parsing.
Pure functions, no web framework; the certificate fetch is injected.

Verification follows AWS's documented procedure: rebuild the canonical string from the
signed keys in their fixed order, fetch the signing certificate from `SigningCertURL` —
only after the URL passed an https + host allow-list check, so a forged message cannot make
us fetch from a host it chooses — and verify RSA PKCS#1 v1.5 with SHA-1 (SignatureVersion 1)
or SHA-256 (SignatureVersion 2). Trust in the certificate comes from fetching it over
verified HTTPS from an allow-listed AWS host: the injected fetcher must verify TLS.

A genuine signature only proves the message came from *some* SNS topic; anyone can create a
topic and point it at us. Pass `allowed_topic_arns` to accept only our own topics.
Raw message delivery must be off on the subscription: raw bodies carry no signature.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import event_fields, safe_json
from .base import AttemptStatus, Channel, Engagement, EventFault, MalformedEvent, Receipt, SignatureError
from .email_common import ORCHESTRATOR_MESSAGE_ID_HEADER, email_address_signal, parse_message_id
from .smtp_email import message_id_domain
from .spec import ProviderSpec

PROVIDER_NAME = "ses"
DEFAULT_MAX_AGE_SECONDS = 3600
# "*" stands for exactly one DNS label (the region): see `cert_url_allowed`.
DEFAULT_ALLOWED_CERT_HOSTS: tuple[str, ...] = ("sns.*.amazonaws.com", "sns.*.amazonaws.com.cn")

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

# The keys covered by the signature, in the documented order. Only Subject is optional.
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: _CONFIRMATION_KEYS,
    UNSUBSCRIBE_CONFIRMATION: _CONFIRMATION_KEYS,
}
OPTIONAL_SIGNED_KEYS = frozenset({"Subject"})

SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,     # SignatureVersion 1: SHA1withRSA (the SNS default)
    "2": hashes.SHA256,   # SignatureVersion 2: SHA256withRSA
}

FetchCertificate = Callable[[str], bytes]


@dataclass(frozen=True)
class SubscriptionConfirmation:
    """SNS asks us to confirm a subscription: the orchestrator GETs `subscribe_url` (after
    checking `topic_arn` is one of ours)."""

    topic_arn: str
    subscribe_url: str
    token: str
    message_id: str
    raw: dict[str, Any]


# -- verification ---------------------------------------------------------------------------


# SNS names its certificates /SimpleNotificationService-<hex>.pem; nothing else is fetched.
_CERT_PATH = re.compile(r"^/SimpleNotificationService-[0-9a-f]{1,64}\.pem$")
# RSA signatures are as long as the key: SNS signs with 2048-bit keys (4096 allowed for later).
_SIGNATURE_BYTES = frozenset({256, 512})


def _host_pattern(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in pattern.lower().split("*")]
    return re.compile("^" + "[a-z0-9-]+".join(parts) + "$")


def cert_url_allowed(url: str, allowed_cert_hosts: Collection[str] = DEFAULT_ALLOWED_CERT_HOSTS) -> bool:
    """True for https URLs on an allow-listed host, default port, no credentials, ending in
    .pem. In host patterns "*" matches one label, so "sns.*.amazonaws.com" accepts
    sns.eu-west-1.amazonaws.com but not sns.x.evil.amazonaws.com or sns.x.amazonaws.com.evil."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or parts.username or parts.password or port not in (None, 443):
        return False
    host = (parts.hostname or "").lower()
    if not host or not _CERT_PATH.match(parts.path) or parts.query or parts.fragment:
        return False
    return any(_host_pattern(pattern).match(host) for pattern in allowed_cert_hosts)


def canonical_string(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed: "Key\\nvalue\\n" for each signed key present, in order."""
    keys = SIGNED_KEYS.get(str(message.get("Type")))
    if keys is None:
        raise SignatureError(f"unknown SNS message type {message.get('Type')!r}")
    out: list[str] = []
    for key in keys:
        value = message.get(key)
        if value is None:
            if key in OPTIONAL_SIGNED_KEYS:
                continue
            raise SignatureError(f"SNS message lacks the signed key {key}")
        out.append(f"{key}\n{value}\n")
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\ud800" in the JSON) has no UTF-8 form: SNS cannot have signed it.
        raise SignatureError("SNS message holds a lone UTF-16 surrogate in a signed key") from None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def verify_sns_message(
    message: Mapping[str, Any],
    *,
    fetch_certificate: FetchCertificate,
    allowed_cert_hosts: Collection[str] = DEFAULT_ALLOWED_CERT_HOSTS,
    now: float | None = None,
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    allowed_topic_arns: Collection[str] | None = None,
) -> None:
    """Raise SignatureError unless `message` (the parsed JSON body SNS POSTed) is genuinely
    signed by SNS, recent, and (if `allowed_topic_arns` is given) from one of our topics.

    Every check that needs no network runs before `fetch_certificate` is called. Errors the
    fetcher raises (network trouble) propagate unchanged: that is our side failing, and the
    webhook should answer 5xx so SNS retries.
    """
    if not isinstance(message, Mapping):
        raise SignatureError("SNS message must be a JSON object")
    hash_cls = SIGNATURE_HASHES.get(str(message.get("SignatureVersion")))
    if hash_cls is None:
        raise SignatureError(f"unsupported SNS SignatureVersion {message.get('SignatureVersion')!r}")
    signed = canonical_string(message)
    cert_url = message.get("SigningCertURL")
    if not isinstance(cert_url, str) or not cert_url_allowed(cert_url, allowed_cert_hosts):
        raise SignatureError("SNS SigningCertURL is not an allowed https URL")
    if allowed_topic_arns is not None and message.get("TopicArn") not in allowed_topic_arns:
        raise SignatureError("SNS TopicArn is not one of ours")
    sent_at = _parse_time(message.get("Timestamp"))
    if sent_at is None:
        raise SignatureError("SNS Timestamp is missing or malformed")
    current = time.time() if now is None else now
    age = current - sent_at.timestamp()
    if age > max_age_seconds or age < -300:   # 5 min of clock skew into the future
        raise SignatureError("SNS message is too old (or from the future)")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("SNS Signature is not base64") from None
    if not signature:
        raise SignatureError("SNS Signature is missing")
    if len(signature) not in _SIGNATURE_BYTES:
        raise SignatureError("SNS Signature has the wrong length for an RSA signature")

    cert_bytes = fetch_certificate(cert_url)
    try:
        cert = x509.load_pem_x509_certificate(cert_bytes)
    except ValueError:
        raise SignatureError("SNS signing certificate is not a PEM certificate") from None
    checked_at = datetime.fromtimestamp(current, UTC)
    if not cert.not_valid_before_utc <= checked_at <= cert.not_valid_after_utc:
        raise SignatureError("SNS signing certificate is not valid at this time")
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("SNS signing certificate does not hold an RSA key")
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), hash_cls())
    except InvalidSignature:
        raise SignatureError("SNS signature does not match the message") from None


# -- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SesEventRule:
    status: AttemptStatus | None = None
    engagement: Engagement | None = None
    error_code: str | None = None


# eventType (event publishing) or notificationType (identity notifications); bounces are keyed
# "Bounce:<bounceType>". No status = record only, the attempt's status does not move.
SES_EVENT_RULES: dict[str, SesEventRule] = {
    "Send": SesEventRule(AttemptStatus.SENT),
    "Delivery": SesEventRule(AttemptStatus.DELIVERED),
    "Bounce:Permanent": SesEventRule(AttemptStatus.BOUNCED, error_code="hard_bounce"),
    # SES already retried; a soft bounce says "not now", not "never": keep the address.
    "Bounce:Transient": SesEventRule(error_code="soft_bounce"),
    "Bounce:Undetermined": SesEventRule(error_code="soft_bounce"),
    "Complaint": SesEventRule(error_code="complaint"),           # withdraw consent
    "Reject": SesEventRule(AttemptStatus.FAILED, error_code="rejected"),   # virus scan
    "Rendering Failure": SesEventRule(AttemptStatus.FAILED, error_code="rendering_failure"),
    "DeliveryDelay": SesEventRule(error_code="delivery_delay"),
    "Open": SesEventRule(engagement=Engagement.READ),            # email's only read signal
    "Click": SesEventRule(engagement=Engagement.CLICKED),
    "Subscription": SesEventRule(error_code="subscription"),     # contact-list preference change
}
UNKNOWN_SES_EVENT = SesEventRule()

# The string fields read or stored, and the longest accepted: ids fit the orchestrator's
# receipt columns (provider ids 255 characters, its message ids 26). SNS MessageIds and SES
# messageIds are under 70 characters; our Message-ID headers under 100.
ENVELOPE_LIMITS: dict[str, int] = {"MessageId": 255}
MAIL_LIMITS: dict[str, int] = {"messageId": 255}
HEADER_LIMITS: dict[str, int] = {"message-id": 255, ORCHESTRATOR_MESSAGE_ID_HEADER.lower(): 26}

# Which object of the event carries its own timestamp.
_EVENT_DETAIL_KEY = {
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Delivery": "delivery",
    "Open": "open",
    "Click": "click",
    "DeliveryDelay": "deliveryDelay",
    "Reject": "reject",
    "Rendering Failure": "failure",
    "Send": "send",
    "Subscription": "subscription",
}


def _event_type(event: Mapping[str, Any]) -> str:
    return str(event.get("eventType") or event.get("notificationType") or "")


def ses_rule_for(event: Mapping[str, Any]) -> SesEventRule:
    kind = _event_type(event)
    if kind == "Bounce":
        bounce = event.get("bounce")
        bounce_type = bounce.get("bounceType") if isinstance(bounce, Mapping) else None
        kind = f"Bounce:{bounce_type or 'Undetermined'}"
    return SES_EVENT_RULES.get(kind, UNKNOWN_SES_EVENT)


def _header(mail: Mapping[str, Any], name: str) -> str | None:
    for header in mail.get("headers") or ():
        if isinstance(header, Mapping) and str(header.get("name", "")).lower() == name.lower():
            return str(header.get("value", ""))
    return None


def _check_event(message: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """MalformedEvent for a field of the SNS envelope or of the SES event in its `Message`
    that cannot be read or stored."""
    event_fields.check_texts(message, ENVELOPE_LIMITS)
    event_fields.check_values(event, ["Message"])
    mail = event_fields.mapping(event, "mail", field="Message.mail")
    event_fields.check_texts(mail, MAIL_LIMITS, "Message.mail.")
    event_fields.mapping(mail, "commonHeaders", field="Message.mail.commonHeaders")
    headers = mail.get("headers") or []
    if not isinstance(headers, list):
        raise MalformedEvent("Message.mail.headers", EventFault.INVALID_VALUE, "must be a list")
    for index, header in enumerate(headers):
        if not isinstance(header, Mapping):
            raise MalformedEvent(f"Message.mail.headers.{index}", EventFault.INVALID_VALUE, "must be an object")
        limit = HEADER_LIMITS.get(str(header.get("name", "")).lower())
        if limit is not None:
            event_fields.text(header, "value", field=f"Message.mail.headers.{index}.value", max_len=limit)
    common = mail.get("commonHeaders") or {}
    event_fields.text(common, "messageId", field="Message.mail.commonHeaders.messageId",
                      max_len=HEADER_LIMITS["message-id"])
    for key in sorted(set(_EVENT_DETAIL_KEY.values())):
        event_fields.mapping(event, key, field=f"Message.{key}")


def _ids(mail: Mapping[str, Any], domain: str | None) -> tuple[str, str | None]:
    """(provider_message_id, our message id). SES replaces the Message-ID of the mail it
    delivers, but with "include original headers" on, `mail.headers` still holds the one we
    sent: then provider_message_id is our Message-ID (bare), equal to what
    `SMTPEmailProvider` returned, so the orchestrator's lookup by provider id finds the
    attempt. Otherwise SES's own `mail.messageId`."""
    common = mail.get("commonHeaders") or {}
    ours = parse_message_id(_header(mail, "Message-ID"), domain=domain) or parse_message_id(
        common.get("messageId") if isinstance(common, Mapping) else None, domain=domain
    )
    explicit = (_header(mail, ORCHESTRATOR_MESSAGE_ID_HEADER) or "").strip()
    message_id = explicit or (ours.message_id if ours else None)
    if ours:
        return ours.bare, message_id
    return str(mail.get("messageId") or ""), message_id


def _occurred_at(event: Mapping[str, Any], fallback: Any) -> datetime | None:
    """The event's own time, else the mail's, else SNS's; each one present must be a time
    (MalformedEvent otherwise), even when an earlier one wins."""
    key = _EVENT_DETAIL_KEY.get(_event_type(event), "")
    detail = event.get(key) or {}
    mail = event.get("mail") or {}
    times = [event_fields.iso_time(detail.get("timestamp"), f"Message.{key}.timestamp"),
             event_fields.iso_time(mail.get("timestamp"), "Message.mail.timestamp"),
             _parse_time(fallback)]
    return next((t for t in times if t is not None), None)


def parse_ses_notification(
    message: Mapping[str, Any], *, message_id_domain: str | None = None
) -> list[Receipt] | SubscriptionConfirmation:
    """Turn a verified SNS message into receipts (or a subscription to confirm).

    `Receipt.raw` is the SNS message verbatim — the signed form, re-verifiable in an audit.
    Returns [] for UnsubscribeConfirmation and for notifications whose Message is not an SES
    event (SES posts a plain-text "Successfully validated SNS topic..." when set up).
    Raises ValueError for a message of unknown Type, and MalformedEvent (a ValueError) naming
    a field of the envelope or of the event that cannot be read or stored."""
    kind = message.get("Type")
    if kind == SUBSCRIPTION_CONFIRMATION:
        return SubscriptionConfirmation(
            topic_arn=str(message.get("TopicArn", "")),
            subscribe_url=str(message.get("SubscribeURL", "")),
            token=str(message.get("Token", "")),
            message_id=str(message.get("MessageId", "")),
            raw=dict(message),
        )
    if kind == UNSUBSCRIBE_CONFIRMATION:
        return []
    if kind != NOTIFICATION:
        raise ValueError(f"unknown SNS message type {kind!r}")
    # The envelope is stored as the receipt's raw: its unsigned keys are checked too.
    event_fields.check_values(dict(message), [])
    try:
        event = safe_json.loads(message.get("Message") or "")
    except safe_json.UnsafeJson as exc:
        raise event_fields.from_unsafe_json(exc, "Message") from None
    except (ValueError, TypeError):
        return []
    if not isinstance(event, dict) or not _event_type(event):
        return []
    _check_event(message, event)
    mail = event.get("mail") or {}
    rule = ses_rule_for(event)
    provider_message_id, message_id = _ids(mail, message_id_domain)
    return [
        Receipt(
            provider=PROVIDER_NAME,
            provider_message_id=provider_message_id,
            status=rule.status,
            event_id=str(message.get("MessageId", "")),
            occurred_at=_occurred_at(event, message.get("Timestamp")),
            raw=dict(message),
            engagement=rule.engagement,
            error_code=rule.error_code,
            message_id=message_id,
        )
    ]


class Env(StrEnum):
    SNS_TOPIC_ARNS = "SES_SNS_TOPIC_ARNS"  # comma-separated: the only topics whose messages are taken


@dataclass(frozen=True)
class SesSettings:
    """Amazon SES events by SNS: the allowed topics, and the domain of our Message-IDs (as the
    SMTP provider stamps them) so a foreign Message-ID of the same shape is not taken for ours."""

    topic_arns: tuple[str, ...]
    message_id_domain: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SesSettings | None:
        """None when no topic is allowed (the webhook answers 404)."""
        topics = tuple(arn.strip() for arn in (env.get(Env.SNS_TOPIC_ARNS) or "").split(",") if arn.strip())
        return cls(topics, message_id_domain(env)) if topics else None


# Receipts only: the email itself goes by SMTP (smtp_email.py).
SPEC = ProviderSpec(name=PROVIDER_NAME, channel=Channel.EMAIL, rank=22, settings=SesSettings.from_env,
                    signals=email_address_signal)
