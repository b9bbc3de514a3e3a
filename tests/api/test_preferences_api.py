"""Preferences per category and channel (PUT /v1/recipients/{id}) and the cross-channel
frequency cap, through the HTTP API on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest


def _send(client, auth, category="social", user="u-p", **extra):
    body = {"recipient": {"user_id": user}, "category": category, "content": {"body": "Hello"}, **extra}
    r = client.post("/v1/messages", headers=auth, json=body)
    assert r.status_code == 202, r.get_json()
    return r.get_json()


def test_a_category_turned_off_by_email_keeps_push_and_the_trace_names_the_preference(client, auth):
    client.put("/v1/recipients/u-p", headers=auth, json={
        "email": "p@example.com", "devices": [{"token": "tok-1", "platform": "fcm"}]})
    r = client.put("/v1/recipients/u-p", headers=auth, json={"preferences": {"social": {"email": False}}})
    assert r.status_code == 200
    assert r.get_json()["preferences"] == {"social": {"email": False}}
    assert client.get("/v1/recipients/u-p", headers=auth).get_json()["preferences"] == {"social": {"email": False}}

    route = _send(client, auth)["route"]
    assert [s["channel"] for s in route["steps"]] == ["push"]
    email = next(e for e in route["excluded"] if e["channel"] == "email")
    assert email["rule"] == "engine:preference"
    assert "preferences.social.email" in email["reason"]
    assert any(t["rule_id"] == "engine:preference" and "preferences.social.email" in t["effect"]
               for t in route["trace"])
    # Another category is untouched.
    route = _send(client, auth, category="reminder")["route"]
    assert [s["channel"] for s in route["steps"]] == ["push", "email"]


def test_true_or_null_turns_a_channel_back_on_and_other_categories_are_kept(client, auth):
    client.put("/v1/recipients/u-p", headers=auth, json={"preferences": {
        "social": {"email": False, "push": False}, "survey": {"sms": False}}})
    r = client.put("/v1/recipients/u-p", headers=auth, json={"preferences": {
        "social": {"email": True, "push": None}}})
    assert r.get_json()["preferences"] == {"survey": {"sms": False}}


def test_a_locked_category_cannot_be_turned_off(client, auth):
    r = client.put("/v1/recipients/u-p", headers=auth, json={"preferences": {"security_alert": {"email": False}}})
    assert r.status_code == 422
    error = r.get_json()["error"]
    assert error["code"] == "preference_locked"
    assert error["field"] == "preferences.security_alert.email"
    # Turning a locked category "on" is harmless, and nothing was written by the refused PUT.
    assert client.put("/v1/recipients/u-p", headers=auth,
                      json={"preferences": {"otp": {"sms": True}}}).status_code in (200, 201)
    assert client.get("/v1/recipients/u-p", headers=auth).get_json()["preferences"] == {}


@pytest.mark.parametrize("prefs, field", [
    ({"nope": {"email": False}}, "preferences.nope"),
    ({"social": {"email": "no"}}, "preferences.social.email"),
    ({"social": {"email": 0}}, "preferences.social.email"),
    ({"social": {"fax": False}}, "preferences.social.fax"),
    ({"social": ["email"]}, "preferences.social"),
    ({"so\u0000cial": {"email": False}}, None),
    ({"x" * 65: {"email": False}}, None),
    ({f"c{i}": {} for i in range(101)}, "preferences"),
    ({"social": {"email": {"a": {"b": {"c": {}}}}}}, "preferences.social.email"),
])
def test_bad_preferences_are_4xx_naming_the_field(client, auth, prefs, field):
    r = client.put("/v1/recipients/u-p", headers=auth, json={"preferences": prefs})
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)
    error = r.get_json()["error"]
    if field is not None:
        assert error["field"] == field
    else:
        assert error["field"].startswith("preferences") or error["field"] == "body"


def test_nan_in_preferences_is_refused(client, auth):
    r = client.put("/v1/recipients/u-p", headers={**auth, "Content-Type": "application/json"},
                   data='{"preferences": {"social": {"email": NaN}}}')
    assert r.status_code == 422


# -- cross-channel frequency cap -------------------------------------------------------------------
def test_over_the_daily_cap_messages_are_deferred_to_the_next_local_day_and_marketing_dropped(client, auth, clock):
    client.put("/v1/recipients/u-c", headers=auth, json={
        "email": "c@example.com", "timezone": "UTC", "consents": {"marketing": True}})
    for _ in range(6):
        steps = _send(client, auth, category="reminder", user="u-c")["route"]["steps"]
        assert steps[0]["not_before"] is None
    # A critical message neither counts nor is capped.
    critical = _send(client, auth, category="security_alert", user="u-c")
    assert critical["route"]["steps"][0]["not_before"] is None

    body = _send(client, auth, category="reminder", user="u-c")
    assert body["status"] == "accepted"
    assert {s["not_before"] for s in body["route"]["steps"]} == {"2026-03-11T00:00:00+00:00"}
    trace = [t for t in body["route"]["trace"] if t["rule_id"] == "frequency-cap-deferral"]
    assert any("defer every channel to 2026-03-11T00:00:00Z" in t["effect"] and "6 messages today" in t["effect"]
               for t in trace)

    promo = _send(client, auth, category="promotion", user="u-c")
    assert promo["status"] == "suppressed"
    assert any("frequency-cap-marketing" in r for r in promo["route"]["suppressed_reasons"])

    # The next local day is a new window (the deferred message counts in the day it was accepted).
    clock.advance(hours=13)
    assert _send(client, auth, category="reminder", user="u-c")["route"]["steps"][0]["not_before"] is None


def test_suppressed_messages_do_not_count_against_the_cap(client, auth):
    client.put("/v1/recipients/u-s", headers=auth, json={"email": "s@example.com", "timezone": "UTC"})
    for _ in range(8):  # promotions without marketing consent: suppressed, not counted
        assert _send(client, auth, category="promotion", user="u-s")["status"] == "suppressed"
    assert _send(client, auth, category="reminder", user="u-s")["route"]["steps"][0]["not_before"] is None


def test_openapi_documents_preferences_unsubscribe_and_inbound_sms(client):
    spec = client.get("/openapi.json").get_json()
    assert {"/v1/inbox/preferences", "/u/{token}", "/webhooks/twilio/inbound"} <= set(spec["paths"])
    assert "preferences" in spec["components"]["schemas"]["RecipientUpsert"]["properties"]
    assert "preference_locked" in spec["info"]["description"]
