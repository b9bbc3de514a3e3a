"""Twilio status callbacks: signature verification and parsing into a `Receipt`.

Signatures. Twilio signs each webhook with HMAC-SHA1 keyed by the account's Auth Token over
the full URL it called followed by the POST parameters sorted by name (name+value
concatenated), and sends the base64 digest in `X-Twilio-Signature`. For JSON bodies it
instead adds a `bodySHA256=<hex sha256 of the body>` query parameter to the URL and signs
the URL alone. `twilio.request_validator.RequestValidator` implements both, and tries the
URL with and without the default port because Twilio is inconsistent about it.

The URL must be the one *Twilio* called, i.e. the public URL (https://hooks.example.com/...),
not what a reverse proxy hands to the app (http://10.0.0.5:8000/...). Behind a proxy,
configure TWILIO_WEBHOOK_PUBLIC_URL and pass the request URL through `public_url_for`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

from . import event_fields
from .base import EventFault, MalformedEvent, Receipt, SignatureError
from .twilio_statuses import map_status

PROVIDER_NAME = "twilio"
BODY_HASH_PARAM = "bodySHA256"
WEBHOOK_PUBLIC_URL_ENV = "TWILIO_WEBHOOK_PUBLIC_URL"

__all__ = [
    "BODY_HASH_PARAM",
    "SIGNATURE_HEADER",
    "WEBHOOK_PUBLIC_URL_ENV",
    "parse_status_callback",
    "public_url_for",
    "verify_twilio_signature",
]


def public_url_for(request_url: str, public_base: str | None) -> str:
    """The URL Twilio called, given the URL the app saw and the configured public base.

    Only scheme and host[:port] are swapped; path and query are kept as received (the
    proxy is assumed to forward paths unchanged). With no public base the URL is returned
    as is.
    """
    if not public_base:
        return request_url
    base = urlsplit(public_base)
    if not base.scheme or not base.netloc:
        raise ValueError(f"public base URL needs a scheme and host: {public_base!r}")
    seen = urlsplit(request_url)
    return urlunsplit((base.scheme, base.netloc, seen.path, seen.query, seen.fragment))


def verify_twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, Any] | None,
    signature_header: str | None,
    *,
    body: str | bytes | None = None,
) -> None:
    """Raise `SignatureError` unless `signature_header` is Twilio's signature of this request.

    Form callbacks: pass the POST form as `params` (a Flask/werkzeug MultiDict works; repeated
    keys are signed as Twilio signs them). JSON callbacks: pass the raw `body`; the URL
    must then carry `bodySHA256`, and both the URL signature and the body hash must match.
    """
    if not auth_token:
        raise SignatureError("no Twilio auth token configured")
    if not signature_header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    has_body_hash = BODY_HASH_PARAM in parse_qs(urlsplit(url).query)
    validator = RequestValidator(auth_token)
    if body is not None:
        if not has_body_hash:
            # Without bodySHA256 in the signed URL nothing would bind the body to the signature.
            raise SignatureError(f"JSON body without {BODY_HASH_PARAM} in the URL")
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SignatureError("body is not UTF-8") from exc
        ok = validator.validate(url, body, signature_header)
    else:
        if has_body_hash:
            # The signature then covers the URL only; accepting it without checking the body
            # hash would let anyone replay the URL with a different body.
            raise SignatureError(f"{BODY_HASH_PARAM} in URL but no body given to check it against")
        ok = validator.validate(url, params or {}, signature_header)
    if not ok:
        raise SignatureError("X-Twilio-Signature does not match")


# The form fields a status callback reads or stores, and the longest accepted. Twilio's SIDs
# are 34 characters, its statuses under 20 and its error codes 5 digits; the limits leave
# room and keep every stored value within the orchestrator's receipt columns (provider ids
# 255 characters, "<sid>:<status>" event ids 255, error codes 64).
STATUS_CALLBACK_LIMITS: dict[str, int] = {
    "MessageSid": 64,
    "SmsSid": 64,
    "MessageStatus": 32,
    "SmsStatus": 32,
    "ErrorCode": 64,
}


def _field(form: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = form.get(name)
        if value not in (None, ""):
            return str(value)
    return None


def parse_status_callback(form: Mapping[str, Any]) -> Receipt:
    """A verified Twilio status callback as a `Receipt`.

    Raises MalformedEvent (a ValueError) naming the field when the form names no message or
    a field cannot be stored (STATUS_CALLBACK_LIMITS). `occurred_at` is None: Twilio's
    callback has no event timestamp. (Delivered/undelivered SMS callbacks may carry
    `RawDlrDoneDate`, the carrier's YYMMDDhhmm with no time zone, which varies by carrier;
    it stays in `raw` rather than pose as a precise time.)
    """
    event_fields.check_values(dict(form), [])
    event_fields.check_texts(form, STATUS_CALLBACK_LIMITS)
    # Older accounts also send the Sms* names; MessageSid/MessageStatus win when both exist.
    sid = _field(form, "MessageSid", "SmsSid")
    if sid is None:
        raise MalformedEvent("MessageSid", EventFault.INVALID_VALUE, "missing: a status callback names its message")
    raw_status = _field(form, "MessageStatus", "SmsStatus") or ""
    status, engagement = map_status(raw_status)
    return Receipt(
        provider=PROVIDER_NAME,
        provider_message_id=sid,
        status=status,
        # Twilio sends one callback per status change and retries on failure; sid+status
        # names the event, so a retried or replayed callback dedups to the same id.
        event_id=f"{sid}:{raw_status.strip().lower()}",
        occurred_at=None,
        raw=dict(form),
        engagement=engagement,
        error_code=_field(form, "ErrorCode"),
    )
