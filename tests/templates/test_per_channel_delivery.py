"""Each channel sends its own content, end to end through the API, the task body and the
wire fakes: Twilio gets the SMS text, the SMTP server gets subject, HTML and Reply-To;
routing facts are computed on the SMS text as rendered."""

from __future__ import annotations

import pytest

from policies.segments import count_segments
from tests.templates.test_templates_api import ORDER, VARS, recipient

SEND = "/v1/messages"


@pytest.fixture
def app(wired_app):
    return wired_app


@pytest.fixture
def writer(make_key):
    return make_key(("templates:write",), name="content-team")


def attempts(client, auth, message_id):
    return {a["channel"]: a for a in client.get(f"{SEND}/{message_id}", headers=auth).get_json()["attempts"]}


def alert(**over):
    return {"recipient": {"user_id": "u-1"}, "category": "security_alert", "urgency": "critical", **over}


def test_template_channels_each_get_their_own_rendered_content(client, auth, writer, drain, twilio, smtp):
    assert client.post("/v1/templates", headers=writer, json=ORDER).status_code == 201
    recipient(client, auth, locale="ko-KR")
    r = client.post(SEND, headers=auth, json=alert(template={"id": "order_shipped", "variables": VARS,
                                                             "reply_to": "orders@example.com"}))
    assert r.status_code == 202, r.get_json()
    channels = {s["channel"] for s in r.get_json()["route"]["steps"]}
    assert {"sms", "email"} <= channels, channels
    drain()
    sent = attempts(client, auth, r.get_json()["id"])
    assert sent["sms"]["status"] == "sent" and sent["email"]["status"] == "sent"
    assert twilio.requests[-1].form["Body"] == "Ada님, 주문 A-17이(가) 발송되었습니다."
    mail = smtp.received[-1].message
    assert mail["Subject"] == "주문 A-17 발송"
    assert mail["Reply-To"] == "orders@example.com"                  # the message's, over the template's
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert "<p>Ada님, 발송되었습니다.</p>" in html and text.strip() == "Ada님, 발송되었습니다."


def test_template_reply_to_and_html_autoescape(client, auth, writer, drain, smtp):
    assert client.post("/v1/templates", headers=writer, json=ORDER).status_code == 201
    recipient(client, auth)
    evil = {"name": "<script>alert(1)</script>", "order_id": "A&B"}
    r = client.post(SEND, headers=auth, json=alert(template={"id": "order_shipped", "variables": evil}))
    assert r.status_code == 202, r.get_json()
    drain()
    mail = smtp.received[-1].message
    assert mail["Reply-To"] == "support@example.com"                 # the template's
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html and "A&amp;B" in html
    # Only the HTML part is escaped: the text part and subject carry the text as written.
    assert mail.get_body(("plain",)).get_content().startswith("Hi <script>alert(1)</script>, order A&B")
    assert mail["Subject"] == "Your order A&B shipped"


def test_inline_per_channel_overrides(client, auth, drain, twilio, smtp):
    recipient(client, auth)
    content = {"title": "Security", "body": "A new device signed in.",
               "channels": {"sms": {"text": "New sign-in. Not you? Call us."},
                            "email": {"subject": "New sign-in to your account", "html": "<p>New sign-in</p>",
                                      "reply_to": "security@example.com"}}}
    r = client.post(SEND, headers=auth, json=alert(content=content))
    assert r.status_code == 202, r.get_json()
    drain()
    assert twilio.requests[-1].form["Body"] == "New sign-in. Not you? Call us."
    mail = smtp.received[-1].message
    assert mail["Subject"] == "New sign-in to your account" and mail["Reply-To"] == "security@example.com"
    assert mail.get_body(("plain",)).get_content().strip() == "A new device signed in."   # base body
    assert "<p>New sign-in</p>" in mail.get_body(("html",)).get_content()


def test_plain_content_is_sent_as_before(client, auth, drain, twilio, smtp):
    recipient(client, auth)
    r = client.post(SEND, headers=auth, json=alert(content={"title": "Hi", "body": "Same everywhere"}))
    assert r.status_code == 202
    drain()
    assert twilio.requests[-1].form["Body"] == "Hi\nSame everywhere"
    assert smtp.received[-1].message["Subject"] == "Hi" and smtp.received[-1].message["Reply-To"] is None


def test_segment_facts_are_counted_on_the_rendered_sms_text(client, auth, writer, drain, twilio):
    template = {"id": "code", "channels": {
        "sms": {"text": "{{ code }} is your code. {{ note }}"},
        "email": {"subject": "Your code", "text": "Code: {{ code }}"}}}
    assert client.post("/v1/templates", headers=writer, json=template).status_code == 201
    recipient(client, auth)
    # The source is short and GSM-7, and so is the email (the base content); the rendered SMS
    # text is long and UCS-2 (Korean): 3 segments.
    note = "확인" * 70
    r = client.post(SEND, headers=auth, json=alert(template={"id": "code", "variables":
                                                             {"code": "123456", "note": note}}))
    assert r.status_code == 202, r.get_json()
    drain()
    message = client.get(f"{SEND}/{r.get_json()['id']}", headers=auth).get_json()
    facts = message["decision"]["derived_facts"]
    wire = next(req.form["Body"] for req in twilio.requests if "Body" in req.form)
    assert wire == f"123456 is your code. {note}"
    info = count_segments(wire)
    assert (facts["sms_encoding"], facts["sms_segments"]) == (info.encoding, info.segments) == ("UCS-2", 3)


def test_the_inbox_shows_the_in_app_variant(client, auth, writer, drain, clock):
    template = {"id": "tour", "channels": {
        "in_app": {"title": "Welcome, {{ name }}", "body": "Take the tour", "action_url": "https://app.example/tour"},
        "email": {"subject": "Welcome aboard", "text": "Hello {{ name }}, here is how to start."}}}
    assert client.post("/v1/templates", headers=writer, json=template).status_code == 201
    recipient(client, auth, last_active_at=clock.now.isoformat())
    assert client.post("/v1/recipients/u-1/presence", headers=auth).status_code == 200
    r = client.post(SEND, headers=auth, json={"recipient": {"user_id": "u-1"}, "category": "onboarding",
                                               "template": {"id": "tour", "variables": {"name": "Ada"}}})
    assert r.status_code == 202, r.get_json()
    assert "in_app" in {s["channel"] for s in r.get_json()["route"]["steps"]}
    drain()
    token = client.post("/v1/recipients/u-1/inapp-token", headers=auth).get_json()["token"]
    [item] = client.get("/v1/inbox", headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert (item["title"], item["body"], item["action_url"]) == (
        "Welcome, Ada", "Take the tour", "https://app.example/tour")


def test_rows_stored_before_per_channel_content_read_as_before():
    from orchestrator.content.channels import for_channel

    old = {"title": "Hi", "body": "Body", "html": "<p>x</p>", "image_url": "https://i.example/a.png",
           "action_url": "https://a.example", "data": {"k": "v"}}
    for channel in ("sms", "push", "email", "in_app"):
        c = for_channel(old, channel)
        assert (c["title"], c["body"], c["html"], c["image_url"], c["action_url"], c["data"], c["reply_to"]) == (
            "Hi", "Body", "<p>x</p>", "https://i.example/a.png", "https://a.example", {"k": "v"}, None)


def test_a_scheduled_template_send_keeps_its_rendered_channels(client, auth, writer, drain, twilio, smtp, clock,
                                                                state):
    """Rendered at accept (the translation of that moment), decided and sent when send_at
    comes: the SMS carries the template's SMS text, the email its subject and Reply-To."""
    from datetime import timedelta

    assert client.post("/v1/templates", headers=writer, json=ORDER).status_code == 201
    recipient(client, auth, locale="ko-KR")
    send_at = (clock.now + timedelta(hours=1)).isoformat()
    r = client.post(SEND, headers=auth, json=alert(send_at=send_at,
                                                   template={"id": "order_shipped", "variables": VARS}))
    assert r.status_code == 202 and r.get_json()["status"] == "scheduled", r.get_json()
    drain()
    assert twilio.requests == []
    clock.advance(hours=1)
    state.dispatcher.sweep_once()
    drain()
    sent = attempts(client, auth, r.get_json()["id"])
    assert sent["sms"]["status"] == "sent" and sent["email"]["status"] == "sent", sent
    assert twilio.requests[-1].form["Body"] == "Ada님, 주문 A-17이(가) 발송되었습니다."
    mail = smtp.received[-1].message
    assert mail["Subject"] == "주문 A-17 발송" and mail["Reply-To"] == "support@example.com"


def test_a_batch_renders_the_shared_template_per_recipient(client, auth, writer, drain, twilio):
    assert client.post("/v1/templates", headers=writer, json=ORDER).status_code == 201
    recipient(client, auth, user_id="u-1", locale="ko-KR")
    recipient(client, auth, user_id="u-2", phone="+44 7400 123457")
    r = client.post(f"{SEND}/batch", headers=auth, json={
        "category": "security_alert", "urgency": "critical", "template": {"id": "order_shipped"},
        "recipients": [{"recipient": {"user_id": "u-1"}, "variables": {"name": "지민", "order_id": "A-1"}},
                       {"recipient": {"user_id": "u-2"}, "variables": {"name": "Ada", "order_id": "A-2"}},
                       {"recipient": {"user_id": "u-2"}, "variables": {"name": "Ada"}}]})
    assert r.status_code == 202, r.get_json()
    results = r.get_json()["results"]
    assert [bool(x.get("id")) for x in results] == [True, True, False]
    assert results[2]["error"]["field"] == "recipients[2].template.variables.order_id"
    drain()
    bodies = sorted(req.form["Body"] for req in twilio.requests)
    assert bodies == ["Order A-2 shipped, Ada.", "지민님, 주문 A-1이(가) 발송되었습니다."]
