"""Recipient profiles and presence."""

from __future__ import annotations

import pytest


def test_put_creates_then_updates_and_normalises_phone(client, auth):
    r = client.put("/v1/recipients/u-9", headers=auth, json={"phone": "+44 7400 123456", "timezone": "Asia/Seoul"})
    assert r.status_code == 201
    r = client.put("/v1/recipients/u-9", headers=auth, json={"consents": {"marketing": True}})
    assert r.status_code == 200
    profile = client.get("/v1/recipients/u-9", headers=auth).get_json()
    assert profile["timezone"] == "Asia/Seoul"
    assert profile["consents"] == {"marketing": True}
    assert profile["phone"].startswith("+44") and "123456" not in profile["phone"]


def test_phone_is_stored_as_e164(client, auth, state):
    from orchestrator.storage.models import Recipient

    client.put("/v1/recipients/u-9", headers=auth, json={"phone": "+1 (415) 555-2671"})
    with state.db.session() as s:
        assert s.get(Recipient, "u-9").phone == "+14155552671"


@pytest.mark.parametrize("payload, field", [
    ({"phone": "555-2671"}, "phone"),
    ({"email": "not-an-email"}, "email"),
    ({"devices": [{"token": "t", "platform": "blackberry"}]}, "devices.0.platform"),
    ({"quiet_hours": ["25:00", "07:00"]}, "quiet_hours.0"),
    ({"consents": {"sms": "maybe"}}, "consents.sms"),
    ({"last_active_at": "yesterday"}, "last_active_at"),
])
def test_bad_profile_fields_are_named(client, auth, payload, field):
    r = client.put("/v1/recipients/u-9", headers=auth, json=payload)
    assert r.status_code == 422
    assert r.get_json()["error"]["field"] == field


def test_presence_heartbeat_makes_the_user_online_for_the_policy(client, auth):
    client.put("/v1/recipients/u-9", headers=auth, json={"email": "u9@example.com"})
    assert client.post("/v1/recipients/u-9/presence", headers=auth).status_code == 200
    plan = client.post("/v1/routing/explain", headers=auth, json={
        "recipient": {"user_id": "u-9"}, "category": "onboarding", "content": {"body": "Welcome tour"},
    }).get_json()
    assert plan["facts"]["presence"] == "online"
    assert "in_app" in [s["channel"] for s in plan["steps"]]
