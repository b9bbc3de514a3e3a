"""Email delivery receipts: SendGrid's Event Webhook and Amazon SES events via SNS.

Same shape as the Twilio webhook: verify the signature, parse, record every receipt in one
short transaction (what the receipts release is announced on commit), answer fast. Receipts
that say something about the address or the person are applied to the recipient in the
same transaction (by `lifecycle.receipts.ingest`, through `lifecycle.address_signals`): a hard
bounce marks the address invalid; a spam report, unsubscribe or complaint withdraws marketing
consent and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from flask import Blueprint, current_app, request

from providers import event_fields
from providers.base import MalformedEvent, Receipt, RejectedEvent, SignatureError

from ..app_state import state
from ..errors import ApiError, ErrorCode
from ..lifecycle.receipts import find, ingest
from ..sending import parked_receipts
from .declare import Auth, declare
from .models import SendGridEvents, SnsMessage
from .requests import load_json
from .sns_certificates import CertificateUnavailable, fetch_certificate
from .webhook_refusals import refusal

bp = Blueprint("email_webhooks", __name__, url_prefix="/webhooks")

SENDGRID_SOURCE = "sendgrid"
SES_SOURCE = "ses"

# Receipt signals about the address (it is dead) and about the person (they said no).

HTTP_TIMEOUT_SECONDS = 10.0
# SubscribeURL hosts we will GET: the SNS endpoints ("sns.<region>.amazonaws.com[.cn]").
_SNS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")

def confirm_subscription(url: str) -> None:
    """The default confirmer: GET the SubscribeURL SNS sent us."""
    response = httpx.get(url, timeout=HTTP_TIMEOUT_SECONDS, verify=True, follow_redirects=False)
    response.raise_for_status()


def _cert_fetcher() -> Callable[[str], bytes]:
    """The configured fetcher (tests inject one); whatever it raises short of a verdict on
    the signature is a fetch failure."""
    fetch = current_app.config.get("SNS_CERT_FETCHER") or fetch_certificate

    def guarded(url: str) -> bytes:
        try:
            return fetch(url)
        except (CertificateUnavailable, SignatureError):
            raise
        except (httpx.HTTPError, OSError, ValueError) as exc:
            raise CertificateUnavailable(f"certificate fetch failed: {type(exc).__name__}") from None

    return guarded


def _confirmer() -> Callable[[str], Any]:
    return current_app.config.get("SNS_SUBSCRIBE_CONFIRMER") or confirm_subscription


# -- recording ------------------------------------------------------------------------------


def _record(source: str, receipts: list[Receipt], refused: Sequence[RejectedEvent] = ()) -> list[str]:
    """One transaction for a body's receipts and its refused events (kept as parked
    `rejected` receipts): the good events of a batch are recorded whatever else it holds."""
    st = state()
    outcomes: list[str] = []
    with st.db.session() as session:
        for receipt in receipts:
            found = find(session, receipt)  # read once, for admission and ingestion both
            if not parked_receipts.admit(session, source, found, st.settings.parked_receipts_max):
                outcomes.append(parked_receipts.DROPPED)
                continue
            outcome, _ = ingest(session, source, receipt, st.clock(), found=found)  # applies recipient signals too
            outcomes.append(str(outcome))
        for event in refused:
            outcomes.append(parked_receipts.park_rejected(session, source, event, st.clock(),
                                                          st.settings.parked_receipts_max))
    return outcomes


# -- SendGrid -------------------------------------------------------------------------------


@bp.post("/sendgrid")
@declare("SendGrid Event Webhook (ECDSA signature, timestamp window); 404 until configured",
         body=SendGridEvents, headers={"X-Twilio-Email-Event-Webhook-Signature": "ECDSA signature",
                                       "X-Twilio-Email-Event-Webhook-Timestamp": "signed timestamp"},
         responses={204: None}, errors=[400, 403, 404, 413, 422], auth=Auth.SIGNATURE, tags=("provider webhooks",))
def sendgrid_events():
    """A batch with malformed events: the others are recorded, the malformed ones kept as
    parked `rejected` receipts, and the answer is 422 naming each (webhook_refusals)."""
    from providers.sendgrid_events import (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        parse_sendgrid_batch,
        verify_sendgrid_signature,
    )

    st = state()
    sendgrid = st.settings.provider_settings(SENDGRID_SOURCE)  # providers.sendgrid_events.SendGridSettings
    if sendgrid is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "SendGrid events are not configured on this service")
    key = sendgrid.webhook_public_key
    body = request.get_data(cache=True)
    try:
        verify_sendgrid_signature(
            key, body, request.headers.get(SIGNATURE_HEADER, ""), request.headers.get(TIMESTAMP_HEADER, ""),
            now=st.clock().timestamp(),
        )
    except SignatureError as exc:
        field = TIMESTAMP_HEADER if "timestamp" in str(exc).lower() else SIGNATURE_HEADER
        raise ApiError(403, ErrorCode.BAD_SIGNATURE, f"{field}: {exc}", field=field) from None
    try:
        receipts, refused = parse_sendgrid_batch(body)
    except ValueError as exc:
        raise ApiError(400, ErrorCode.INVALID_JSON, f"body: {exc}", field="body") from None
    _record(SENDGRID_SOURCE, receipts, refused)
    if refused:
        raise refusal(SENDGRID_SOURCE, [event.error for event in refused])
    return "", 204


# -- Amazon SES via SNS ---------------------------------------------------------------------


def _subscribe_url_allowed(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return (parts.scheme == "https" and port in (None, 443) and not parts.username
            and host.startswith("sns.") and host.endswith(_SNS_HOST_SUFFIXES))


@bp.post("/ses")
@declare("Amazon SES events via SNS (signature v1/v2, topic allow-list); 404 until configured",
         body=SnsMessage, body_media="text/plain",
         responses={204: None}, errors=[400, 403, 404, 413, 422, 503], auth=Auth.SIGNATURE,
         tags=("provider webhooks",))
def ses_events():
    from providers.ses_events import SubscriptionConfirmation, parse_ses_notification, verify_sns_message

    st = state()
    ses = st.settings.provider_settings(SES_SOURCE)  # providers.ses_events.SesSettings
    if ses is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "SES events are not configured on this service")
    topics = list(ses.topic_arns)
    # SNS posts JSON as text/plain, so the body is read as bytes whatever the content type.
    message = load_json(request.get_data(cache=True), status=400)
    if not isinstance(message, dict):
        raise ApiError(400, ErrorCode.INVALID_JSON, "body: SNS message must be a JSON object", field="body")
    try:
        verify_sns_message(message, fetch_certificate=_cert_fetcher(), now=st.clock().timestamp(),
                           allowed_topic_arns=topics)
    except SignatureError as exc:
        raise ApiError(403, ErrorCode.BAD_SIGNATURE, f"Signature: {exc}", field="Signature") from None
    except CertificateUnavailable as exc:
        # Our side (or AWS) failing, not the sender's: 503, so SNS retries later.
        raise ApiError(503, ErrorCode.UNAVAILABLE, f"SigningCertURL: {exc}", field="SigningCertURL") from None
    try:
        parsed = parse_ses_notification(message, message_id_domain=ses.message_id_domain)
    except MalformedEvent as exc:
        _record(SES_SOURCE, [], [event_fields.rejected(SES_SOURCE, message, exc)])
        raise refusal(SES_SOURCE, [exc]) from None
    except ValueError as exc:
        raise ApiError(400, ErrorCode.VALIDATION_ERROR, f"Type: {exc}", field="Type") from None
    if isinstance(parsed, SubscriptionConfirmation):
        # Verified and topic-checked above; checked again here so the GET can never go elsewhere.
        if parsed.topic_arn not in topics:
            raise ApiError(403, ErrorCode.BAD_SIGNATURE, "TopicArn: not one of ours", field="TopicArn")
        if not _subscribe_url_allowed(parsed.subscribe_url):
            raise ApiError(403, ErrorCode.BAD_SIGNATURE, "SubscribeURL: not an SNS https URL",
                           field="SubscribeURL")
        try:
            _confirmer()(parsed.subscribe_url)
        except (httpx.HTTPError, OSError) as exc:
            raise ApiError(503, ErrorCode.UNAVAILABLE, f"SubscribeURL: confirmation failed: {type(exc).__name__}",
                           field="SubscribeURL") from None
        return "", 204
    _record(SES_SOURCE, parsed)
    return "", 204
