"""Provider webhooks under hostile input. Issue #12 §1: Twilio callbacks without a
MessageSid or with a JSON body, and parked receipts for unknown ids, bounded. Issue #19 §2:
genuinely signed events whose fields cannot be read or stored (huge or non-finite numbers,
out-of-range times, lone surrogates, NUL, over-long ids, wrong types) are answered 422
naming the field and kept as parked `rejected` receipts, on SQLite and PostgreSQL alike;
in a SendGrid batch the good events are recorded all the same."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from orchestrator.app_state import EXTENSION_KEY
from orchestrator.errors import ErrorCode
from orchestrator.sending.parked_receipts import age_out_parked
from orchestrator.storage.models import ReceiptEvent
from providers import sendgrid_events, ses_events, twilio_inbound, twilio_webhooks
from providers.base import EventFault
from providers.email_common import SENDGRID_ARG_MESSAGE_ID, SENDGRID_ARG_PROVIDER_MESSAGE_ID
from tests.dispatch.conftest import SID, TOKEN, Recorder
from tests.dispatch.test_email_webhooks import CERT_URL, TOPIC, sg_post, sns_signed
from tests.fakes.twilio_fake import SIGNATURE_HEADER, sign, signed_callback, signed_json_callback
from tests.logcapture import captured_logs

URL = "http://localhost/webhooks/twilio"
INBOUND_URL = "http://localhost/webhooks/twilio/inbound"


@pytest.fixture
def app(make_app, sendgrid_public_key, sns_signer):
    """Every provider webhook configured; nothing is sent, so Twilio's API is never called."""
    app = make_app(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                   TWILIO_API_BASE_URL="http://127.0.0.1:9", PUBLIC_BASE_URL="http://localhost",
                   SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_public_key, SES_SNS_TOPIC_ARNS=TOPIC)
    app.config["SNS_CERT_FETCHER"] = Recorder({CERT_URL: sns_signer[1]})
    return app


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


# -- signed but malformed (issue #19 §2) ------------------------------------------------------


def receipt_rows(state) -> list[ReceiptEvent]:
    with state.db.session() as s:
        rows = list(s.scalars(select(ReceiptEvent).order_by(ReceiptEvent.id)))
        s.expunge_all()
        return rows


def refusal_problems(r, field: str, code: str, state, source: str, kept_before: int) -> list[str]:
    """What is wrong with the answer to a refused event: it must be 422 naming `field` with
    `code`, and the event kept as one more parked `rejected` receipt that nothing can apply
    (no provider id), its refusal recorded beside a storable copy."""
    if r.status_code != 422:
        return [f"{field}: answered {r.status_code} {r.get_data(as_text=True)[:200]}"]
    error = r.get_json()["error"]
    if (error["field"], error["code"]) != (field, code) or not error["message"].startswith(f"{field}: "):
        return [f"{field}: answered {error}"]
    kept = [x for x in receipt_rows(state) if x.outcome == "rejected"]
    if len(kept) != kept_before + 1:
        return [f"{field}: {len(kept) - kept_before} rows kept"]
    row = kept[-1]
    if (row.source, row.applied, row.provider_message_id, row.status) != (source, False, None, None):
        return [f"{field}: kept as {(row.source, row.applied, row.provider_message_id, row.status)}"]
    if row.raw["rejected"] != {"field": field, "code": code, "reason": error["message"][len(field) + 2:]}:
        return [f"{field}: kept with {row.raw['rejected']}"]
    return []


def rejected_count(state) -> int:
    return [x.outcome for x in receipt_rows(state)].count("rejected")


SG_EVENT = {"event": "delivered", "email": "ada@example.com", "timestamp": 1767225600, "sg_event_id": "evt-1",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0"}


def sg_body(**fields) -> bytes:
    """One SendGrid event with `fields` replaced; a str value is JSON text put in as is
    (NaN, 1e400 and 10,000-digit numbers have no Python value json.dumps would write)."""
    parts = {k: json.dumps(v) for k, v in SG_EVENT.items()}
    for key, value in fields.items():
        parts[key] = value if isinstance(value, str) else json.dumps(value)
    return ("[{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in parts.items()) + "}]").encode()


# Each class of malformed field, with the field the answer must name and its code.
SENDGRID_CASES: dict[str, list[tuple[bytes, str, str]]] = {
    # the audit's case and its neighbours: numbers that are no time, or no number at all
    "numbers": [
        (sg_body(timestamp="1e300"), "0.timestamp", "date_out_of_range"),
        (sg_body(timestamp="-1e300"), "0.timestamp", "date_out_of_range"),
        (sg_body(timestamp=str(2**62)), "0.timestamp", "date_out_of_range"),
        (sg_body(timestamp="1e400"), "0.timestamp", "invalid_number"),
        (sg_body(timestamp="NaN"), "0.timestamp", "invalid_number"),
        (sg_body(timestamp="-Infinity"), "0.timestamp", "invalid_number"),
        (sg_body(timestamp=str(10**30)), "0.timestamp", "invalid_number"),
        (sg_body(timestamp="1" * 10_000), "0.timestamp", "invalid_number"),
        (sg_body(asm_group_id="1e999"), "0.asm_group_id", "invalid_number"),
    ],
    # characters no database stores, in any string or key
    "characters": [
        (sg_body(sg_event_id='"\\ud800"'), "0.sg_event_id", "invalid_character"),
        (sg_body(email='"ada\\udfff@example.com"'), "0.email", "invalid_character"),
        (sg_body(category='["ok", "\\ud800"]'), "0.category.1", "invalid_character"),
        (sg_body(**{"\ud800": '"x"'}), "0", "invalid_character"),
        (sg_body(sg_message_id='"a\\u0000b"'), "0.sg_message_id", "invalid_character"),
    ],
    # ids longer than their columns (receipt_events: 255 and 26)
    "lengths": [
        (sg_body(sg_event_id=json.dumps("e" * 256)), "0.sg_event_id", "validation_error"),
        (sg_body(sg_message_id=json.dumps("m" * 300)), "0.sg_message_id", "validation_error"),
        (sg_body(**{"smtp-id": json.dumps(f"<{'a' * 26}.{'b' * 26}@{'d' * 250}.example>")}), "0.smtp-id",
         "validation_error"),
        (sg_body(**{SENDGRID_ARG_MESSAGE_ID: json.dumps("m" * 27)}), f"0.{SENDGRID_ARG_MESSAGE_ID}",
         "validation_error"),
        (sg_body(**{SENDGRID_ARG_PROVIDER_MESSAGE_ID: json.dumps("p" * 256)}),
         f"0.{SENDGRID_ARG_PROVIDER_MESSAGE_ID}", "validation_error"),
        (sg_body(event=json.dumps("x" * 65)), "0.event", "validation_error"),
    ],
    "types": [
        (sg_body(timestamp='"1767225600"'), "0.timestamp", "validation_error"),
        (sg_body(timestamp="true"), "0.timestamp", "validation_error"),
        (sg_body(sg_event_id="5"), "0.sg_event_id", "validation_error"),
        (sg_body(sg_message_id='{"a": 1}'), "0.sg_message_id", "validation_error"),
        (sg_body(event='["delivered"]'), "0.event", "validation_error"),
        (b'[{"event": "delivered", "sg_event_id": "ok"}, 7]', "1", "validation_error"),
    ],
}


@pytest.mark.parametrize("kind", SENDGRID_CASES)
def test_signed_sendgrid_event_with_a_malformed_field_is_422_and_kept(client, state, clock, sendgrid_key, kind):
    problems: list[str] = []
    for body, field, code in SENDGRID_CASES[kind]:
        kept = rejected_count(state)
        r = sg_post(client, sendgrid_key, body, signed_at=clock.now)
        problems += refusal_problems(r, field, code, state, "sendgrid", kept)
    assert not problems, problems
    # SendGrid retries a non-2xx for up to 24 hours: a redelivery is refused alike, not kept twice.
    kept = rejected_count(state)
    for body, _, _ in SENDGRID_CASES[kind]:
        assert sg_post(client, sendgrid_key, body, signed_at=clock.now).status_code == 422
    assert rejected_count(state) == kept


def test_sendgrid_events_at_the_limits_are_taken(client, state, clock, sendgrid_key):
    """The limits refuse only what cannot be stored: a null time, ids exactly as long as the
    columns and the years 1 and 9999 pass."""
    events = [dict(SG_EVENT, sg_event_id="e" * 255, sg_message_id="m" * 255, timestamp=None),
              dict(SG_EVENT, sg_event_id="e2", **{SENDGRID_ARG_MESSAGE_ID: "m" * 26}, timestamp=253402300799),
              dict(SG_EVENT, sg_event_id="e3", timestamp=-62135596800, email="\U0001f600@example.com")]
    r = sg_post(client, sendgrid_key, events, signed_at=clock.now)
    assert r.status_code == 204, r.get_json()
    rows = receipt_rows(state)
    assert [x.outcome for x in rows] == ["parked"] * 3
    assert rows[1].occurred_at == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert rows[2].occurred_at == dt.datetime(1, 1, 1, tzinfo=dt.UTC)


TW_FORM = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"}


TWILIO_CASES: list[tuple[dict[str, str], str, str]] = [
    ({"MessageSid": "SM" + "1" * 298}, "MessageSid", "validation_error"),    # the audit's case: over varchar(255)
    ({"MessageSid": "SM" + "1" * 63}, "MessageSid", "validation_error"),
    ({"SmsSid": "SM" + "1" * 300}, "SmsSid", "validation_error"),
    ({"ErrorCode": "3" * 300}, "ErrorCode", "validation_error"),             # the audit's other case
    ({"ErrorCode": "3" * 65}, "ErrorCode", "validation_error"),              # over error_code's varchar(64)
    ({"MessageStatus": "d" * 300}, "MessageStatus", "validation_error"),     # a 300-character event id
    ({"MessageSid": ""}, "MessageSid", "validation_error"),
    ({"ErrorCode": "300\x0003"}, "ErrorCode", "invalid_character"),
    ({"To": "+1555\x00"}, "To", "invalid_character"),
    ({"X\x00": "y"}, "body", "invalid_character"),
]


def test_signed_twilio_callback_with_a_malformed_field_is_422_and_kept(client, state):
    problems: list[str] = []
    forms = [{k: v for k, v in {**TW_FORM, **fields}.items() if v} for fields, _, _ in TWILIO_CASES]
    for form, (_, field, code) in zip(forms, TWILIO_CASES, strict=True):
        kept = rejected_count(state)
        r = client.post("/webhooks/twilio", data=form, headers={SIGNATURE_HEADER: sign(TOKEN, URL, form)})
        problems += refusal_problems(r, field, code, state, "twilio", kept)
    assert not problems, problems
    # Twilio retries no 4xx by default; one configured to (#rp=4xx) finds each event kept once.
    for form in forms:
        client.post("/webhooks/twilio", data=form, headers={SIGNATURE_HEADER: sign(TOKEN, URL, form)})
    assert rejected_count(state) == len(TWILIO_CASES)


def test_twilio_fields_that_are_not_stored_have_no_limit(client, state):
    form = {**TW_FORM, "Body": "x" * 5000, "ErrorMessage": "\U0001f600" * 300}
    r = client.post("/webhooks/twilio", data=form, headers={SIGNATURE_HEADER: sign(TOKEN, URL, form)})
    assert r.status_code == 204, r.get_json()
    assert [x.outcome for x in receipt_rows(state)] == ["parked"]


def test_signed_inbound_message_with_a_malformed_field_is_422_logged_and_changes_nothing(client, state, auth):
    phone = "+447400123456"
    client.put("/v1/recipients/u-1", headers=auth, json={"phone": phone, "consents": {"sms": True}})
    cases = [({"From": phone + "0" * 60}, "From", "validation_error"),
             ({"From": phone, "Body": "STOP\x00"}, "Body", "invalid_character"),
             ({"From": phone, "OptOutType": "S" * 33}, "OptOutType", "validation_error")]
    for fields, field, code in cases:
        form = {"MessageSid": "SM" + "2" * 32, "Body": "STOP", **fields}
        with captured_logs() as logs:
            r = client.post("/webhooks/twilio/inbound", data=form,
                            headers={SIGNATURE_HEADER: sign(TOKEN, INBOUND_URL, form)})
        assert r.status_code == 422, r.get_data(as_text=True)
        assert (r.get_json()["error"]["field"], r.get_json()["error"]["code"]) == (field, code)
        assert f"refused: {field}: {code}" in logs.text and "7400123456" not in logs.text
    assert client.get("/v1/recipients/u-1", headers=auth).get_json()["consents"]["sms"] is True


def ses_message(event: dict | str, **envelope) -> dict:
    """An SNS notification carrying `event` (a dict, or the Message text as is)."""
    return {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "TopicArn": TOPIC,
            "Message": event if isinstance(event, str) else json.dumps(event),
            "Timestamp": "2026-03-01T09:00:00.000Z", **envelope}


def ses_event(**mail) -> dict:
    return {"eventType": "Delivery", "delivery": {"timestamp": "2026-03-01T09:00:00.000Z"},
            "mail": {"messageId": "0100018c-ses-own-id", "destination": ["ada@example.com"], **mail}}


OUR_HEADER = "X-Orchestrator-Message-Id"


SES_CASES: list[tuple[dict, str, str]] = [
    (ses_message(ses_event(timestamp="0001-01-01T00:00:00+01:00")), "Message.mail.timestamp", "date_out_of_range"),
    (ses_message(ses_event(timestamp="yesterday")), "Message.mail.timestamp", "validation_error"),
    (ses_message(ses_event(timestamp=1e300)), "Message.mail.timestamp", "validation_error"),
    (ses_message({**ses_event(), "delivery": {"timestamp": 12345}}), "Message.delivery.timestamp", "validation_error"),
    (ses_message({**ses_event(), "delivery": "soon"}), "Message.delivery", "validation_error"),
    (ses_message({**ses_event(), "mail": ["x"]}), "Message.mail", "validation_error"),
    (ses_message(ses_event(headers="Message-ID: x")), "Message.mail.headers", "validation_error"),
    (ses_message(ses_event(headers=[7])), "Message.mail.headers.0", "validation_error"),
    (ses_message(ses_event(headers=[{"name": "Message-ID", "value": "<" + "a" * 300 + ">"}])),
     "Message.mail.headers.0.value", "validation_error"),
    (ses_message(ses_event(headers=[{"name": OUR_HEADER, "value": "m" * 27}])), "Message.mail.headers.0.value",
     "validation_error"),
    (ses_message(ses_event(messageId="s" * 256)), "Message.mail.messageId", "validation_error"),
    (ses_message(ses_event(commonHeaders={"messageId": ["x"]})), "Message.mail.commonHeaders.messageId",
     "validation_error"),
    (ses_message(ses_event(source="\ud800@example.com")), "Message.mail.source", "invalid_character"),
    (ses_message('{"eventType": "Delivery", "mail": {"messageId": NaN}}'), "Message.mail.messageId",
     "invalid_number"),
    (ses_message('{"eventType": "Delivery", "n": ' + "9" * 5000 + "}"), "Message.n", "invalid_number"),
    (ses_message('{"eventType": "Delivery", "x": ' + "[" * 40 + "]" * 40 + "}"), "Message.x.0", "nesting_too_deep"),
    (ses_message(ses_event(), MessageId="i" * 256), "MessageId", "validation_error"),
]


def test_signed_ses_event_with_a_malformed_field_is_422_and_kept(client, state, clock, sns_signer):
    problems: list[str] = []
    for msg, field, code in SES_CASES:
        signed = sns_signed(sns_signer[0], {**msg, "Timestamp": clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
        kept = rejected_count(state)
        r = client.post("/webhooks/ses", data=json.dumps(signed), content_type="text/plain")
        problems += refusal_problems(r, field, code, state, "ses", kept)
    assert not problems, problems


@pytest.mark.parametrize("field", ["Subject", "UnsubscribeURL"])
def test_sns_message_with_a_lone_surrogate_in_a_signed_key_is_400_before_anything(client, state, clock, field):
    """No signer can sign it (SNS signs UTF-8 bytes, which cannot hold a lone surrogate): the
    envelope is refused as it is parsed, naming the field; nothing is verified, kept or stored."""
    msg = {**ses_message(ses_event()), field: "https://sns.example/\ud800",
           "Timestamp": clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
           "SignatureVersion": "2", "SigningCertURL": CERT_URL, "Signature": "A" * 344}
    r = client.post("/webhooks/ses", data=json.dumps(msg), content_type="text/plain")
    assert r.status_code == 400, r.get_data(as_text=True)
    assert (r.get_json()["error"]["code"], r.get_json()["error"]["field"]) == ("invalid_character", field)
    assert receipt_rows(state) == []


def test_refused_events_count_against_the_parked_cap_and_age_out_with_them(make_app, sendgrid_key,
                                                                           sendgrid_public_key, clock):
    app = make_app(SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_public_key, PARKED_RECEIPTS_MAX=1)
    client, state = app.test_client(), app.extensions[EXTENSION_KEY]
    first, second = sg_body(timestamp="1e300"), sg_body(timestamp="1e300", sg_event_id='"evt-2"')
    assert sg_post(client, sendgrid_key, first, signed_at=clock.now).status_code == 422
    with captured_logs() as logs:
        assert sg_post(client, sendgrid_key, second, signed_at=clock.now).status_code == 422
    assert [x.outcome for x in receipt_rows(state)] == ["rejected"]          # the table was full
    assert '"status": "dropped"' in logs.text and "ada@example.com" not in logs.text
    clock.advance(days=8)
    with state.db.session() as s:
        assert age_out_parked(s, clock.now, dt.timedelta(days=7), max_rows=10) == 1


def test_every_event_fault_is_an_api_error_code():
    assert {fault.value for fault in EventFault} <= {code.value for code in ErrorCode}


def test_receipt_limits_fit_the_columns():
    """Every limit the parsers enforce keeps what is stored within its column (the 255, 64
    and 26 of receipt_events), so a longer column never needs a parser change to match."""
    columns = ReceiptEvent.__table__.c
    provider_id, event_id = columns.provider_message_id.type.length, columns.provider_event_id.type.length
    tw = twilio_webhooks.STATUS_CALLBACK_LIMITS
    assert max(tw["MessageSid"], tw["SmsSid"]) <= provider_id
    assert max(tw["MessageSid"], tw["SmsSid"]) + 1 + max(tw["MessageStatus"], tw["SmsStatus"]) <= event_id
    assert tw["ErrorCode"] <= columns.error_code.type.length
    sg = sendgrid_events.FIELD_LIMITS
    assert max(sg["sg_message_id"], sg["smtp-id"], sg[SENDGRID_ARG_PROVIDER_MESSAGE_ID]) <= provider_id
    assert sg["sg_event_id"] <= event_id
    assert sg[SENDGRID_ARG_MESSAGE_ID] <= columns.message_id.type.length
    assert ses_events.MAIL_LIMITS["messageId"] <= provider_id
    assert ses_events.ENVELOPE_LIMITS["MessageId"] <= event_id
    assert ses_events.HEADER_LIMITS["message-id"] <= provider_id
    assert ses_events.HEADER_LIMITS[OUR_HEADER.lower()] <= columns.message_id.type.length
    assert twilio_inbound.INBOUND_LIMITS["From"] <= 64


# -- every field, every hostile value ---------------------------------------------------------

HOSTILE_VALUES: list = ["\ud800", "a\x00b", "x" * 300, "", 1e300, -1e300, 2**70, True, None, [], {"a": [1]},
                        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "\U0001f600" * 100]
SG_FIELDS = [*SG_EVENT, "smtp-id", "type", "sg_machine_open", SENDGRID_ARG_MESSAGE_ID,
             SENDGRID_ARG_PROVIDER_MESSAGE_ID, "category", "url"]


def test_no_hostile_value_in_any_sendgrid_field_is_a_5xx(client, clock, sendgrid_key):
    """Whatever one field of a signed event holds, the answer is 204 or a 422 naming it."""
    wrong = []
    for key in SG_FIELDS:
        for value in HOSTILE_VALUES:
            r = sg_post(client, sendgrid_key, [{**SG_EVENT, key: value}], signed_at=clock.now)
            if r.status_code not in (204, 422) or (r.status_code == 422
                                                   and not r.get_json()["error"]["field"].startswith("0")):
                wrong.append((key, repr(value)[:20], r.status_code))
    assert not wrong, wrong


def test_no_hostile_value_in_any_twilio_field_is_a_5xx(client):
    wrong = []
    for key in ["MessageSid", "SmsSid", "MessageStatus", "ErrorCode", "To", "From", "AccountSid", "RawDlrDoneDate"]:
        for value in [v for v in HOSTILE_VALUES if isinstance(v, str) and "\ud800" not in v]:
            form = {**TW_FORM, key: value}
            for path, url in (("/webhooks/twilio", URL), ("/webhooks/twilio/inbound", INBOUND_URL)):
                r = client.post(path, data=form, headers={SIGNATURE_HEADER: sign(TOKEN, url, form)})
                if r.status_code not in (200, 204, 422):
                    wrong.append((path, key, repr(value)[:20], r.status_code))
    assert not wrong, wrong


def test_no_hostile_value_in_any_ses_field_is_a_5xx(client, clock, sns_signer):
    base = ses_event(headers=[{"name": "Message-ID", "value": "<a.b@example.org>"}],
                     commonHeaders={"messageId": "<a.b@example.org>"})
    base["bounce"] = {"bounceType": "Permanent", "timestamp": "2026-03-01T09:00:00.000Z"}
    places = [("mail", k) for k in base["mail"]] + [("delivery", "timestamp"), ("bounce", "bounceType"),
                                                    ("bounce", "timestamp"), (None, "eventType"), (None, "mail"),
                                                    (None, "delivery")]
    wrong = []
    for n, (outer, key) in enumerate(places):
        for m, value in enumerate(HOSTILE_VALUES):
            event = json.loads(json.dumps(base))
            (event[outer] if outer else event)[key] = value
            msg = ses_message(event, MessageId=f"sns-{n}-{m}",
                              Timestamp=clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
            r = client.post("/webhooks/ses", data=json.dumps(sns_signed(sns_signer[0], msg)), content_type="text/plain")
            if r.status_code not in (204, 422):
                wrong.append((outer, key, repr(value)[:20], r.status_code))
    assert not wrong, wrong
