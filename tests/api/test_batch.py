"""POST /v1/messages/batch: a result per item, each item on its own, idempotent as a whole."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from orchestrator.storage.models import Attempt, Message

BATCH = "/v1/messages/batch"


def batch(n=3, **over):
    body = {"category": "otp", "urgency": "high", "content": {"title": "Code", "body": "Your code is 123456"},
            "recipients": [{"recipient": {"user_id": f"u-{i}"}} for i in range(n)]}
    body.update(over)
    return body


@pytest.fixture
def users(client, auth):
    for i in range(5):
        r = client.put(f"/v1/recipients/u-{i}", headers=auth, json={
            "phone": f"+44 7400 12345{i}", "email": f"u{i}@example.com", "consents": {"sms": True, "email": True}})
        assert r.status_code in (200, 201)


def count(state, model) -> int:
    with state.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_each_recipient_gets_its_own_message(client, auth, users, state):
    body = batch(3, metadata={"campaign": "c1"})
    body["recipients"][1]["metadata"] = {"order": "42"}
    r = client.post(BATCH, headers=auth, json=body)
    assert r.status_code == 202, r.get_json()
    out = r.get_json()
    assert out["accepted"] == 3 and out["refused"] == 0
    assert [x["index"] for x in out["results"]] == [0, 1, 2]
    assert all(x["status"] == "accepted" for x in out["results"])
    ids = [x["id"] for x in out["results"]]
    assert len(set(ids)) == 3
    shown = client.get(f"/v1/messages/{ids[1]}", headers=auth).get_json()
    assert shown["user_id"] == "u-1" and shown["metadata"] == {"campaign": "c1", "order": "42"}
    assert [a["channel"] for a in shown["attempts"]] == ["sms", "email"]
    assert "123451" not in shown["attempts"][0]["to"]
    assert count(state, Attempt) == 6


def test_items_are_refused_on_their_own(client, auth, users, state):
    body = batch(5)
    body["recipients"][1] = {"recipient": {"user_id": "u-1", "phone": "not a phone"}}
    body["recipients"][3] = {"recipient": {"user_id": "has space"}}
    body["recipients"][4] = {"recipient": {"user_id": "u-4"}, "colour": "red"}
    r = client.post(BATCH, headers=auth, json=body)
    assert r.status_code == 202
    out = r.get_json()
    assert out["accepted"] == 2 and out["refused"] == 3
    errors = {x["index"]: x["error"] for x in out["results"] if "error" in x}
    assert errors[1]["field"] == "recipients[1].recipient.phone"
    assert errors[1]["message"].startswith("recipients[1].recipient.phone: ")
    assert errors[3]["field"] == "recipients[3].recipient.user_id"
    assert errors[4]["field"] == "recipients[4].colour"
    assert "id" in out["results"][0] and "id" in out["results"][2]
    assert count(state, Message) == 2


def test_a_bad_shared_field_fails_the_whole_batch(client, auth, users, state):
    for over, field in ((dict(category="nope"), "category"), (dict(content={"body": ""}), "content.body"),
                        (dict(urgency="extreme"), "urgency"), (dict(template={"id": "t"}), "template"),
                        (dict(send_at="2026-03-10T12:00:00"), "send_at")):
        r = client.post(BATCH, headers=auth, json=batch(2, **over))
        assert r.status_code == 422, (over, r.get_json())
        assert r.get_json()["error"]["field"] == field
    assert count(state, Message) == 0


def test_variables_need_a_template(client, auth, users):
    body = batch(1)
    body["recipients"][0]["variables"] = {"name": "Ada"}
    r = client.post(BATCH, headers=auth, json=body)
    err = r.get_json()["results"][0]["error"]
    assert err["field"] == "recipients[0].variables"


def test_batch_item_request_puts_variables_into_the_template():
    from orchestrator.sending.batch import item_request

    body = {"category": "otp", "template": {"id": "welcome", "variables": {"app": "X"}}, "metadata": {"a": 1}}
    item = {"recipient": {"user_id": "u"}, "variables": {"name": "Ada"}, "metadata": {"b": 2}}
    assert item_request(body, item, 0) == {
        "category": "otp", "recipient": {"user_id": "u"}, "metadata": {"a": 1, "b": 2},
        "template": {"id": "welcome", "variables": {"app": "X", "name": "Ada"}}}


def test_idempotent_as_a_whole(client, auth, users, state):
    headers = {**auth, "Idempotency-Key": "campaign-7"}
    a = client.post(BATCH, headers=headers, json=batch(3))
    b = client.post(BATCH, headers=headers, json=batch(3))
    assert a.status_code == b.status_code == 202
    assert a.get_json() == b.get_json() and b.headers.get("Idempotent-Replayed") == "true"
    assert count(state, Message) == 3
    c = client.post(BATCH, headers=headers, json=batch(2))
    assert c.status_code == 409 and c.get_json()["error"]["field"] == "Idempotency-Key"


def test_a_scheduled_batch(client, auth, users, state, clock, drain):
    r = client.post(BATCH, headers=auth, json=batch(3, send_at=(clock.now + timedelta(hours=1)).isoformat()))
    assert {x["status"] for x in r.get_json()["results"]} == {"scheduled"}
    assert count(state, Attempt) == 0
    clock.advance(hours=1)
    assert state.dispatcher.sweep_once()["scheduled"] == 3
    assert count(state, Attempt) == 6


def test_due_attempts_are_announced(client, auth, users, state):
    announced: list[str] = []
    state.db.announcer = announced.extend
    r = client.post(BATCH, headers=auth, json=batch(3))
    assert r.status_code == 202
    assert len(announced) == 3  # the SMS of each; the email fallbacks wait


def test_a_thousand_recipients(client, auth, state):
    r = client.post(BATCH, headers=auth, json=batch(1000))
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["accepted"] == 1000  # unknown users: each decided (and suppressed) on its own
    assert count(state, Message) == 1000


@pytest.mark.parametrize("body, field", [
    ({"category": "otp", "content": {"body": "x"}}, "recipients"),
    (batch(0), "recipients"),
    (batch(1001), "recipients"),
    (batch(1, recipients={"a": 1}), "recipients"),
    (batch(1, recipients="u-1"), "recipients"),
    (batch(1, extra=True), "extra"),
])
def test_bad_batch_shapes(client, auth, body, field):
    r = client.post(BATCH, headers=auth, json=body)
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["field"] == field


@pytest.mark.parametrize("item, field", [
    ("u-1", "recipients[0]"),
    ({}, "recipients[0].recipient"),
    ({"recipient": None}, "recipients[0].recipient"),
    ({"recipient": {"user_id": "u-1", "email": "nope"}}, "recipients[0].recipient.email"),
    ({"recipient": {"user_id": "u" * 201}}, "recipients[0].recipient.user_id"),
    ({"recipient": {"user_id": "u-1", "timezone": "Mars/Olympus"}}, "recipients[0].recipient.timezone"),
    ({"recipient": {"user_id": "u-1"}, "metadata": [1]}, "recipients[0].metadata"),
    ({"recipient": {"user_id": "u-1"}, "metadata": {str(i): i for i in range(51)}}, "recipients[0].metadata"),
    ({"recipient": {"user_id": "u-1"}, "variables": "x"}, "recipients[0].variables"),
])
def test_bad_items_name_the_item_and_field(client, auth, item, field):
    r = client.post(BATCH, headers=auth, json=batch(1, recipients=[item, {"recipient": {"user_id": "u-2"}}]))
    assert r.status_code == 202, r.get_json()
    out = r.get_json()
    assert out["results"][0]["error"]["field"] == field
    assert out["results"][1]["status"] in ("accepted", "suppressed")


def test_batch_body_edge_cases(client, auth):
    # NUL is refused by the JSON reader itself, before any item is looked at: the whole request.
    r = client.post(BATCH, headers=auth, json=batch(1, recipients=[{"recipient": {"user_id": "u\u0000"}}]))
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "recipients.0.recipient.user_id"
    r = client.post(BATCH, headers={**auth, "Content-Type": "application/json"}, data='{"recipients": [NaN]}')
    assert r.status_code == 422
    r = client.post(BATCH, headers={**auth, "Content-Type": "application/json"},
                    data='{"recipients": ' + "[" * 300 + "]" * 300 + "}")
    assert r.status_code == 422
    r = client.post(BATCH, headers={**auth, "Content-Type": "text/plain"}, data="{}")
    assert r.status_code == 415
    r = client.post(BATCH, headers={"Authorization": "Bearer nope"}, json=batch(1))
    assert r.status_code == 401


def test_batch_needs_the_send_scope(client, make_key):
    r = client.post(BATCH, headers=make_key(scopes=("read",), name="reader"), json=batch(1))
    assert r.status_code == 403


def test_a_batch_body_may_exceed_the_single_send_limit(client, auth):
    body = batch(1000, metadata={"note": "x" * 100})
    for i, item in enumerate(body["recipients"]):
        item["metadata"] = {"ref": f"{i:0300d}"}  # ~320 KB in all, over MAX_BODY_BYTES (256 KiB)
    r = client.post(BATCH, headers=auth, json=body)
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["accepted"] == 1000
    big = {"recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "1"},
           "metadata": {"pad": "x" * 300_000}}
    assert client.post("/v1/messages", headers=auth, json=big).status_code == 413
