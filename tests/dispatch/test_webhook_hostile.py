"""Provider webhooks under hostile input (issue #12 §1): Twilio callbacks without a
MessageSid or with a JSON body, and parked receipts for unknown ids, bounded."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select

from orchestrator.services.parked_receipts import age_out_parked
from orchestrator.storage.models import ReceiptEvent
from tests.dispatch.conftest import TOKEN
from tests.fakes.twilio_fake import SIGNATURE_HEADER, sign, signed_callback, signed_json_callback

URL = "http://localhost/webhooks/twilio"


def parked(state) -> int:
    with state.db.session() as s:
        return s.scalar(select(func.count()).select_from(ReceiptEvent).where(ReceiptEvent.applied.is_(False)))


def test_signed_callback_without_message_sid_is_422(client):
    form = {"MessageStatus": "delivered", "AccountSid": "AC" + "1" * 32}
    r = client.post("/webhooks/twilio", data=form, headers={SIGNATURE_HEADER: sign(TOKEN, URL, form)})
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.get_json()["error"]["field"] == "MessageSid"


def test_signed_callback_with_a_json_body_is_415(client):
    body = json.dumps({"MessageSid": "SM1", "MessageStatus": "delivered"})
    signed_url, signature = signed_json_callback(TOKEN, URL, body)
    r = client.post(signed_url.removeprefix("http://localhost"), data=body, content_type="application/json",
                    headers={SIGNATURE_HEADER: signature})
    assert r.status_code == 415, r.get_data(as_text=True)
    assert r.get_json()["error"] == {
        "code": "unsupported_media_type", "field": "Content-Type",
        "message": "Content-Type: Twilio status callbacks are application/x-www-form-urlencoded"}


def test_parked_receipts_for_unknown_sids_are_capped(make_app, twilio):
    from tests.dispatch.conftest import SID

    app = make_app(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                   TWILIO_API_BASE_URL=twilio.base_url, PUBLIC_BASE_URL="http://localhost",
                   PARKED_RECEIPTS_MAX=3)
    client = app.test_client()
    for n in range(6):
        cb = signed_callback(TOKEN, URL, message_sid=f"SM{n:032d}", status="delivered")
        assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204
    from orchestrator.app_state import EXTENSION_KEY

    assert parked(app.extensions[EXTENSION_KEY]) == 3


def test_age_out_parked_deletes_old_rows_then_the_oldest_beyond_the_cap(client, state, clock):
    for n in range(5):
        cb = signed_callback(TOKEN, URL, message_sid=f"SM{n:032d}", status="delivered")
        assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204
        clock.advance(hours=1)
    assert parked(state) == 5
    with state.db.session() as s:
        # Two rows are older than 3.5 hours at now; of the three left, the cap keeps two.
        assert age_out_parked(s, clock.now, dt.timedelta(hours=3, minutes=30), max_rows=2) == 3
    with state.db.session() as s:
        left = list(s.scalars(select(ReceiptEvent.provider_message_id).where(ReceiptEvent.applied.is_(False))))
    assert left == [f"SM{3:032d}", f"SM{4:032d}"]
