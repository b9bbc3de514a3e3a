"""The in-app client registers and removes its own push device (a browser: its push
subscription) with the user's token, on both databases: platforms from the provider catalog,
hostile tokens refused with a 422 naming the field, CORS for DELETE, the device cap."""

from __future__ import annotations

import pytest

from orchestrator.recipients.recipients import MAX_DEVICES
from providers.catalog import PUSH_PLATFORMS

PATH = "/v1/inbox/devices"


@pytest.fixture
def browser(user, user_token):
    """The user's token headers, for a user known to the backend with one fcm device."""
    user("u-1")
    headers, _ = user_token("u-1")
    return headers


def devices(client, auth, user_id="u-1"):
    return client.get(f"/v1/recipients/{user_id}", headers=auth).get_json()["devices"]


def test_a_client_registers_and_removes_its_device(client, auth, browser):
    r = client.post(PATH, headers=browser, json={"platform": "apns", "token": "a" * 64})
    assert r.status_code == 201, r.get_json()
    assert r.get_json() == {"platform": "apns", "token": "aaaaaa…", "active": True, "created": True}
    assert sorted(d["platform"] for d in devices(client, auth)) == ["apns", "fcm"]
    again = client.post(PATH, headers=browser, json={"platform": "apns", "token": "a" * 64})
    assert again.status_code == 200 and again.get_json()["created"] is False
    assert len(devices(client, auth)) == 2

    r = client.delete(PATH, headers=browser, json={"token": "a" * 64})
    assert r.status_code == 200 and r.get_json() == {"removed": True}
    assert [d["platform"] for d in devices(client, auth)] == ["fcm"]
    assert client.delete(PATH, headers=browser, json={"token": "a" * 64}).get_json() == {"removed": False}


def test_registering_again_reactivates_a_dead_device(app, client, auth, browser):
    from sqlalchemy import select

    from orchestrator.app_state import EXTENSION_KEY
    from orchestrator.storage.models import Device

    db = app.extensions[EXTENSION_KEY].db
    with db.session() as s:
        device = s.scalars(select(Device).where(Device.token == "fcm-device-token-1")).one()
        device.active = False
    r = client.post(PATH, headers=browser, json={"platform": "fcm", "token": "fcm-device-token-1"})
    assert r.status_code == 200 and r.get_json()["created"] is False
    assert devices(client, auth) == [{"platform": "fcm", "token": "fcm-de…", "active": True}]


def test_a_user_unknown_to_the_backend_gets_a_profile(client, auth, user_token):
    headers, _ = user_token("u-new")
    assert client.post(PATH, headers=headers, json={"platform": "fcm", "token": "t-1"}).status_code == 201
    assert devices(client, auth, "u-new") == [{"platform": "fcm", "token": "t-1…", "active": True}]


def test_the_api_key_is_not_a_user_token(client, auth, browser):
    r = client.post(PATH, headers=auth, json={"platform": "fcm", "token": "t-1"})
    assert r.status_code == 401
    assert client.post(PATH, json={"platform": "fcm", "token": "t-1"}).status_code == 401
    assert client.delete(PATH, headers=auth, json={"token": "t-1"}).status_code == 401


def test_a_client_only_touches_its_own_users_devices(client, auth, user, user_token, browser):
    user("u-2", devices=[])
    other, _ = user_token("u-2")
    assert client.delete(PATH, headers=other, json={"token": "fcm-device-token-1"}).get_json() == {"removed": False}
    assert len(devices(client, auth, "u-1")) == 1


def test_the_oldest_device_gives_way_past_the_cap(client, auth, browser):
    for i in range(MAX_DEVICES + 3):
        assert client.post(PATH, headers=browser, json={"platform": "fcm", "token": f"tok-{i:03d}"}).status_code == 201
    stored = devices(client, auth)
    assert len(stored) == MAX_DEVICES
    assert stored[-1]["token"] == "tok-02…"  # the newest is kept


LONG = "x" * 4097


@pytest.mark.parametrize(("body", "field"), [
    ({"platform": "sms", "token": "t"}, "platform"),
    ({"platform": "FCM", "token": "t"}, "platform"),
    ({"platform": "x" * 5000, "token": "t"}, "platform"),
    ({"platform": ["fcm"], "token": "t"}, "platform"),
    ({"platform": None, "token": "t"}, "platform"),
    ({"token": "t"}, "platform"),
    ({"platform": "fcm"}, "token"),
    ({"platform": "fcm", "token": ""}, "token"),
    ({"platform": "fcm", "token": "   "}, "token"),
    ({"platform": "fcm", "token": LONG}, "token"),
    ({"platform": "fcm", "token": "a\nb"}, "token"),
    ({"platform": "fcm", "token": "a\tb"}, "token"),
    ({"platform": "fcm", "token": "a\u200bb\u202e"}, "token"),
    ({"platform": "fcm", "token": "a\x7fb"}, "token"),
    ({"platform": "fcm", "token": 12345}, "token"),
    ({"platform": "fcm", "token": {"endpoint": "https://push.example"}}, "token"),
    ({"platform": "fcm", "token": "t", "user_id": "u-2"}, "user_id"),
])
def test_hostile_registrations_are_refused_naming_the_field(client, browser, body, field):
    r = client.post(PATH, headers=browser, json=body)
    assert r.status_code == 422, (r.status_code, r.get_json())
    assert r.get_json()["error"]["field"] == field
    assert LONG not in r.get_data(as_text=True)


@pytest.mark.parametrize("raw", [
    b'{"platform": "fcm", "token": "a\\u0000b"}',
    b'{"platform": "fcm", "token": "\\ud800"}',
    b'{"platform": "fc\\u0000m", "token": "t"}',
])
def test_unstorable_characters_are_a_422_not_a_500(client, browser, raw):
    r = client.post(PATH, headers={**browser, "Content-Type": "application/json"}, data=raw)
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["field"] in ("token", "platform")
    r = client.delete(PATH, headers={**browser, "Content-Type": "application/json"},
                      data=raw.replace(b'"platform": "fcm", ', b""))
    assert r.status_code == 422


@pytest.mark.parametrize(("data", "status"), [(b"", 400), (b"[]", 422), (b"not json", 400), (b'"t"', 422)])
def test_bodies_that_are_not_an_object(client, browser, data, status):
    r = client.post(PATH, headers={**browser, "Content-Type": "application/json"}, data=data)
    assert r.status_code == status


def test_every_catalog_platform_is_accepted(client, auth, browser):
    from providers.catalog import BY_PLATFORM

    for platform in PUSH_PLATFORMS:
        # A token its provider accepts: each provider's check has an example in its tests; here
        # only those that accept an opaque token are sent.
        if BY_PLATFORM[platform].check_token("opaque-token") is None:
            r = client.post(PATH, headers=browser, json={"platform": platform, "token": f"{platform}-opaque"})
            assert r.status_code == 201, (platform, r.get_json())


def test_devices_route_answers_cors_preflight_with_delete(make_app):
    app = make_app(INAPP_CORS_ORIGINS="https://app.example.com")
    client = app.test_client()
    r = client.options(PATH, headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "DELETE" in r.headers["Access-Control-Allow-Methods"]
