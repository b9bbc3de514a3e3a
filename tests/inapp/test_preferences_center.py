"""The preference center: the in-app client reads and changes its own user's preferences
with the user token; locked categories are shown locked and cannot be turned off."""

from __future__ import annotations

import pytest

PATH = "/v1/inbox/preferences"
ALLOWED = "https://app.example.com"


def by_category(body):
    return {c["category"]: c for c in body["categories"]}


def test_read_change_and_read_back_own_preferences(client, auth, user, user_token):
    user()
    headers, _ = user_token()
    body = client.get(PATH, headers=headers).get_json()
    cats = by_category(body)
    assert body["user_id"] == "u-1"
    assert cats["social"] == {"category": "social", "label": "Social activity",
                              "description": "Comments, mentions and follows", "locked": False,
                              "unsubscribable": False,
                              "channels": {"in_app": True, "push": True, "email": True, "sms": True,
                                           "whatsapp": True}}
    assert cats["security_alert"]["locked"] is True and cats["promotion"]["unsubscribable"] is True

    r = client.put(PATH, headers=headers, json={"preferences": {"social": {"email": False}}})
    assert r.status_code == 200
    assert by_category(r.get_json())["social"]["channels"]["email"] is False
    assert by_category(client.get(PATH, headers=headers).get_json())["social"]["channels"]["email"] is False
    # The same state the backend sees through its API key, and the policy uses it.
    assert client.get("/v1/recipients/u-1", headers=auth).get_json()["preferences"] == {"social": {"email": False}}
    plan = client.post("/v1/routing/explain", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": "social", "content": {"body": "Hi"}}).get_json()
    assert {e["channel"]: e["rule"] for e in plan["excluded"]}.get("email") == "engine:preference"

    r = client.put(PATH, headers=headers, json={"preferences": {"social": {"email": True}}})
    assert by_category(r.get_json())["social"]["channels"]["email"] is True


def test_a_user_without_a_profile_gets_defaults_and_can_set_preferences(client, user_token):
    headers, _ = user_token("u-new")
    assert all(all(c["channels"].values()) for c in client.get(PATH, headers=headers).get_json()["categories"])
    r = client.put(PATH, headers=headers, json={"preferences": {"survey": {"push": False}}})
    assert r.status_code == 200


def test_locked_categories_cannot_be_turned_off(client, user, user_token):
    user()
    headers, _ = user_token()
    r = client.put(PATH, headers=headers, json={"preferences": {"legal_notice": {"email": False}}})
    assert r.status_code == 422
    assert r.get_json()["error"] == {"code": "preference_locked", "field": "preferences.legal_notice.email",
                                     "message": r.get_json()["error"]["message"]}


@pytest.mark.parametrize("body, field", [
    ({"preferences": {"pigeon": {"email": False}}}, "preferences.pigeon"),
    ({"preferences": {"social": {"email": "off"}}}, "preferences.social.email"),
    ({"preferences": {"social": {"carrier_pigeon": False}}}, "preferences.social.carrier_pigeon"),
    ({"prefs": {}}, "preferences"),
    ({}, "preferences"),
])
def test_bad_bodies_are_422_naming_the_field(client, user, user_token, body, field):
    user()
    headers, _ = user_token()
    r = client.put(PATH, headers=headers, json=body)
    assert r.status_code == 422 and r.get_json()["error"]["field"] == field


def test_without_a_valid_user_token_nothing_is_read_or_changed(client, auth, user):
    user()
    assert client.get(PATH).status_code == 401
    assert client.put(PATH, json={"preferences": {"social": {"email": False}}}).status_code == 401
    # The API key is not a user token.
    assert client.get(PATH, headers=auth).status_code == 401
    assert client.get("/v1/recipients/u-1", headers=auth).get_json()["preferences"] == {}


def test_a_revoked_token_cannot_change_preferences(client, auth, user, user_token):
    user()
    headers, token_id = user_token()
    client.delete(f"/v1/inapp-tokens/{token_id}", headers=auth)
    assert client.put(PATH, headers=headers, json={"preferences": {"social": {"email": False}}}).status_code == 401


def test_cross_origin_preflight_allows_put_for_allowed_origins(make_app, user_token):
    app = make_app(INAPP_CORS_ORIGINS=ALLOWED)
    client = app.test_client()
    r = client.options(PATH, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 204
    assert "PUT" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    r = client.options(PATH, headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "PUT"})
    assert "Access-Control-Allow-Origin" not in r.headers
