"""Provider webhooks: verify the signature, record the receipt, answer fast. Recording is
one short transaction (append the event, move the attempt forward); anything the receipt
releases is enqueued after commit."""

from __future__ import annotations

from flask import Blueprint, request

from providers.base import SignatureError

from ..app_state import state
from ..dispatch.receipts import ingest
from ..errors import ApiError, ErrorCode

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

TWILIO_SOURCE = "twilio"


def _record(source: str, receipts: list) -> None:
    """One short transaction; whatever the receipts release is announced on commit."""
    st = state()
    with st.db.session() as session:
        for receipt in receipts:
            ingest(session, source, receipt, st.clock())


@bp.post("/twilio")
def twilio_status():
    from providers.twilio_sms import parse_status_callback, public_url_for, verify_twilio_signature

    st = state()
    token = st.settings.env.get("TWILIO_AUTH_TOKEN")
    if not token:
        raise ApiError(404, ErrorCode.NOT_FOUND, "Twilio is not configured on this service")
    url = public_url_for(request.url, st.settings.env.get("TWILIO_WEBHOOK_PUBLIC_URL") or None)
    form = request.form.to_dict()
    try:
        verify_twilio_signature(token, url, form, request.headers.get("X-Twilio-Signature"))
    except SignatureError as exc:
        raise ApiError(403, ErrorCode.BAD_SIGNATURE, f"X-Twilio-Signature: {exc}",
                       field="X-Twilio-Signature") from None
    _record(TWILIO_SOURCE, [parse_status_callback(form)])
    return "", 204
