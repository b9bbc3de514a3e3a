"""Issue #19 §6: a `send`-only key creates recipients and overrides an address for its own
message, but changing an existing recipient's addresses, devices, consents or preferences
takes the `recipients` scope, on every path a send key reaches (PUT, single and batch sends)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchestrator.storage.models import Attempt, Recipient

STORED_PHONE, STORED_EMAIL = "+447400123456", "owner@example.com"
ATTACKER_PHONE, ATTACKER_EMAIL = "+447400999999", "attacker@example.com"
PROFILE = {"phone": STORED_PHONE, "email": STORED_EMAIL, "timezone": "Europe/London",
           "consents": {"sms": True, "email": True},
           "devices": [{"token": "fcm-owner-device", "platform": "fcm"}],
           "preferences": {"social": {"email": False}}}


@pytest.fixture
def owner(client, make_key):
    """A profile registered by a `recipients` key."""
    r = client.put("/v1/recipients/u-1", headers=make_key(["recipients"], name="profiles"), json=PROFILE)
    assert r.status_code == 201, r.get_json()


@pytest.fixture
def send_key(make_key):
    return make_key(["send"], name="sender")


def stored(state, user_id="u-1") -> Recipient:
    with state.db.session() as s:
        row = s.get(Recipient, user_id)
        s.expunge(row)
        return row


def devices_of(state, user_id="u-1") -> set[tuple[str, str, bool]]:
    from orchestrator.storage.models import Device

    with state.db.session() as s:
        return {(d.token, d.platform, d.active) for d in s.scalars(select(Device).where(Device.user_id == user_id))}


@pytest.mark.parametrize("change, field", [
    ({"phone": ATTACKER_PHONE}, "phone"),
    ({"email": ATTACKER_EMAIL}, "email"),
    ({"email": None}, "email"),                                           # removing is a change too
    ({"devices": [{"token": "fcm-attacker-device", "platform": "fcm"}]}, "devices"),
    ({"devices": []}, "devices"),
    ({"devices": [{"token": "fcm-owner-device", "platform": "apns"}]}, "devices"),
    ({"consents": {"sms": False}}, "consents.sms"),
    ({"consents": {"marketing": True}}, "consents.marketing"),
    ({"preferences": {"social": {"email": True}}}, "preferences.social.email"),
    ({"preferences": {"onboarding": {"sms": False}}}, "preferences.onboarding.sms"),
    ({"timezone": "Asia/Seoul", "phone": ATTACKER_PHONE}, "phone"),    # nothing half-applied
])
def test_a_send_key_cannot_change_an_existing_recipients_contact(client, state, owner, send_key, change, field):
    before = stored(state)
    r = client.put("/v1/recipients/u-1", headers=send_key, json=change)
    assert r.status_code == 403, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "forbidden" and error["field"] == field
    assert "'recipients' scope" in error["message"] and error["message"].startswith(field)
    after = stored(state)
    for column in ("phone", "email", "timezone", "consents", "preferences", "email_valid", "phone_valid"):
        assert getattr(after, column) == getattr(before, column), column
    assert devices_of(state) == {("fcm-owner-device", "fcm", True)}


def test_a_send_key_creates_recipients_and_may_repeat_or_touch_other_fields(client, state, owner, send_key):
    r = client.put("/v1/recipients/u-2", headers=send_key, json=PROFILE)   # a new recipient, every field
    assert r.status_code == 201, r.get_json()
    assert stored(state, "u-2").phone == STORED_PHONE
    # What is stored, said again (as a backend re-registering its user does), is no change.
    again = client.put("/v1/recipients/u-1", headers=send_key, json={**PROFILE, "phone": "+44 7400 123456"})
    assert again.status_code == 200, again.get_json()
    # Fields that do not redirect or silence messages stay open to `send`.
    r = client.put("/v1/recipients/u-1", headers=send_key, json={"timezone": "Asia/Seoul", "locale": "ko-KR",
                                                                "quiet_hours": ["22:00", "07:00"]})
    assert r.status_code == 200, r.get_json()
    row = stored(state)
    assert (row.timezone, row.locale, row.phone, row.email) == ("Asia/Seoul", "ko-KR", STORED_PHONE, STORED_EMAIL)


def test_a_deactivated_device_is_not_reactivated_by_a_send_key(client, state, owner, send_key, make_key):
    from orchestrator.storage.models import Device

    with state.db.session() as s:
        s.scalar(select(Device).where(Device.token == "fcm-owner-device")).active = False
    r = client.put("/v1/recipients/u-1", headers=send_key, json={"devices": PROFILE["devices"]})
    assert r.status_code == 403 and r.get_json()["error"]["field"] == "devices"
    assert devices_of(state) == {("fcm-owner-device", "fcm", False)}


@pytest.mark.parametrize("scopes", [["recipients"], ["send", "recipients"], ["admin"]])
def test_recipients_and_admin_keys_change_contact(client, state, owner, make_key, scopes):
    r = client.put("/v1/recipients/u-1", headers=make_key(scopes), json={
        "phone": ATTACKER_PHONE, "consents": {"sms": False}, "devices": [],
        "preferences": {"social": {"email": True}}})
    assert r.status_code == 200, r.get_json()
    row = stored(state)
    assert row.phone == ATTACKER_PHONE and row.consents["sms"] is False and not row.preferences
    assert devices_of(state) == set()


def sms_addresses(state, message_ids) -> list[str]:
    with state.db.session() as s:
        return [s.scalar(select(Attempt.address).where(Attempt.message_id == m, Attempt.channel == "sms"))
                for m in message_ids]


def test_a_send_override_reaches_its_message_only(client, state, owner, send_key, make_key):
    """POST /v1/messages: the override is used for that message and never written to the
    profile; the next message (another key's, or the same key's) goes to the stored phone."""
    otp = {"category": "otp", "urgency": "high", "content": {"body": "Your code is 123456"}}
    r = client.post("/v1/messages", headers=send_key, json={
        **otp, "recipient": {"user_id": "u-1", "phone": ATTACKER_PHONE, "email": ATTACKER_EMAIL,
                             "timezone": "Asia/Seoul"}})
    assert r.status_code == 202, r.get_json()
    overridden = r.get_json()["id"]
    row = stored(state)
    assert (row.phone, row.email, row.timezone) == (STORED_PHONE, STORED_EMAIL, "Europe/London")
    later = [client.post("/v1/messages", headers=key, json={**otp, "recipient": {"user_id": "u-1"}})
             for key in (make_key(["send"], name="other-backend"), send_key)]
    assert [x.status_code for x in later] == [202, 202]
    assert sms_addresses(state, [overridden, *(x.get_json()["id"] for x in later)]) == [
        ATTACKER_PHONE, STORED_PHONE, STORED_PHONE]


def test_batch_overrides_reach_their_items_only(client, state, owner, send_key, make_key):
    """POST /v1/messages/batch with inline recipient fields, for an existing recipient and a
    new one: neither profile is written (the new user gets no profile from a send)."""
    r = client.post("/v1/messages/batch", headers=send_key, json={
        "category": "otp", "urgency": "high", "content": {"body": "Your code is 123456"},
        "recipients": [{"recipient": {"user_id": "u-1", "phone": ATTACKER_PHONE, "email": ATTACKER_EMAIL}},
                       {"recipient": {"user_id": "u-new", "phone": ATTACKER_PHONE}}]})
    assert r.status_code == 202, r.get_json()
    ids = [item["id"] for item in r.get_json()["results"]]
    assert sms_addresses(state, ids) == [ATTACKER_PHONE, ATTACKER_PHONE]
    row = stored(state)
    assert (row.phone, row.email) == (STORED_PHONE, STORED_EMAIL)
    with state.db.session() as s:
        assert s.get(Recipient, "u-new") is None
    after = client.post("/v1/messages", headers=make_key(["send"], name="other-backend"), json={
        "category": "otp", "urgency": "high", "content": {"body": "x"}, "recipient": {"user_id": "u-1"}})
    assert sms_addresses(state, [after.get_json()["id"]]) == [STORED_PHONE]


def test_a_send_key_losing_a_create_race_gets_the_rule_too(state, owner):
    """Two creates at once: the loser's retry runs as an update of the row the winner wrote,
    so the rule is checked there as well (the service, not the route, enforces it)."""
    from orchestrator.domain.errors import Forbidden
    from orchestrator.errors import http_status
    from orchestrator.recipients import recipients
    from orchestrator.schemas import RecipientUpsert

    with state.db.session() as s, pytest.raises(Forbidden) as refused:
        recipients.upsert(s, "u-1", RecipientUpsert(phone=ATTACKER_PHONE), contact_changes_allowed=False)
    assert http_status(refused.value) == 403 and refused.value.field == "phone"
    assert stored(state).phone == STORED_PHONE
