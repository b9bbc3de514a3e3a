"""Provider webhooks: verify the signature, record the receipt, answer fast. Recording is
one short transaction (append the event, move the attempt forward); anything the receipt
releases is enqueued after commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import Blueprint, request

from providers import event_fields
from providers.base import MalformedEvent, RejectedEvent, SignatureError

from ..app_state import state
from ..errors import ApiError, ErrorCode
from ..lifecycle.receipts import find, ingest
from ..recipients import sms_keywords
from ..sending import parked_receipts
from .declare import Auth, Media, declare
from .models import TwilioInboundMessage, TwilioStatusCallback
from .webhook_refusals import refusal

log = logging.getLogger("orchestrator.webhooks")

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

TWILIO_SOURCE = "twilio"


FORM_TYPE = "application/x-www-form-urlencoded"


def _record(source: str, receipts: list, refused: Sequence[RejectedEvent] = ()) -> None:
    """One short transaction; whatever the receipts release is announced on commit. Refused
    events are kept as parked `rejected` receipts (webhook_refusals)."""
    st = state()
    with st.db.session() as session:
        for receipt in receipts:
            found = find(session, receipt)  # read once, for admission and ingestion both
            if parked_receipts.admit(session, source, found, st.settings.parked_receipts_max):
                ingest(session, source, receipt, st.clock(), found=found)
        for event in refused:
            parked_receipts.park_rejected(session, source, event, st.clock(), st.settings.parked_receipts_max)


def _verified_twilio_form(what: str) -> dict[str, str]:
    """The form of a Twilio webhook whose X-Twilio-Signature verifies; nothing else is read
    or done before that. 404 when Twilio is not configured, 415 for a non-form body, 403
    for a bad signature."""
    from providers.twilio_sms import public_url_for, verify_twilio_signature

    st = state()
    twilio = st.settings.provider_settings(TWILIO_SOURCE)  # providers.twilio_sms.TwilioSettings
    if twilio is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "Twilio is not configured on this service")
    if request.mimetype != FORM_TYPE:
        # Twilio webhooks are form-encoded; a JSON body would verify as an empty form.
        raise ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                       f"Content-Type: Twilio {what} are {FORM_TYPE}", field="Content-Type")
    url = public_url_for(request.url, twilio.webhook_public_url)
    form = request.form.to_dict()
    try:
        verify_twilio_signature(twilio.auth_token, url, form, request.headers.get("X-Twilio-Signature"))
    except SignatureError as exc:
        raise ApiError(403, ErrorCode.BAD_SIGNATURE, f"X-Twilio-Signature: {exc}",
                       field="X-Twilio-Signature") from None
    # NUL and other unstorable values are refused by the parsers, naming the field.
    return form


@bp.post("/twilio")
@declare("Twilio status callback (form body, X-Twilio-Signature); 404 until Twilio is configured",
         body=TwilioStatusCallback, body_media=FORM_TYPE, headers={"X-Twilio-Signature": "Twilio's signature"},
         responses={204: None}, errors=[403, 404, 413, 415, 422], auth=Auth.SIGNATURE, tags=("provider webhooks",))
def twilio_status():
    from providers.twilio_sms import parse_status_callback

    form = _verified_twilio_form("status callbacks")
    try:
        receipt = parse_status_callback(form)
    except MalformedEvent as exc:
        _record(TWILIO_SOURCE, [], [event_fields.rejected(TWILIO_SOURCE, form, exc)])
        raise refusal(TWILIO_SOURCE, [exc]) from None
    _record(TWILIO_SOURCE, [receipt])
    return "", 204


@bp.post("/twilio/inbound")
@declare("Twilio inbound message (form body, X-Twilio-Signature): STOP/START/HELP and synonyms update SMS "
         "consent of every recipient with the sender's number; answers an empty TwiML <Response/>",
         body=TwilioInboundMessage, body_media=FORM_TYPE, headers={"X-Twilio-Signature": "Twilio's signature"},
         responses={200: Media("text/xml", "empty TwiML")}, errors=[403, 404, 413, 415, 422],
         auth=Auth.SIGNATURE, tags=("provider webhooks",))
def twilio_inbound():
    """Twilio's "a message comes in" webhook: STOP / START keywords (and synonyms) update SMS
    consent of every recipient with the sender's number. Answers an empty TwiML response:
    Twilio's Advanced Opt-Out sends the standard keyword replies itself."""
    form = _verified_twilio_form("inbound-message webhooks")
    from providers.twilio_inbound import empty_twiml, parse_inbound

    try:
        inbound = parse_inbound(form)
    except MalformedEvent as exc:
        # Nothing of an inbound message is stored: the refusal is logged (field, no value).
        log.warning("twilio inbound message refused: %s: %s", exc.field, exc.fault.value,
                    extra={"provider": "twilio", "status": "rejected", "error_code": exc.fault.value})
        raise refusal(TWILIO_SOURCE, [exc]) from None
    changed = sms_keywords.apply(state().db, inbound)
    # No phone number in the log, masked or not: the keyword and how many profiles changed.
    log.info("twilio inbound message", extra={"provider": "twilio", "event": inbound.kind.value, "count": changed})
    return empty_twiml(), 200, {"Content-Type": "text/xml; charset=utf-8"}
