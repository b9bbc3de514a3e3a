"""Fixtures for the in-app client tests: a user with a push device, messages sent through
the API, the worker's task body run for whatever is due, and user tokens."""

from __future__ import annotations

import pytest


@pytest.fixture
def user(client, auth):
    def make(user_id="u-1", **profile):
        data = {"email": "ada@example.com", "timezone": "UTC",
                "consents": {"email": True, "push": True},
                "devices": [{"token": "fcm-device-token-1", "platform": "fcm"}]}
        data.update(profile)
        r = client.put(f"/v1/recipients/{user_id}", headers=auth, json=data)
        assert r.status_code in (200, 201), r.get_json()
        return user_id

    return make


@pytest.fixture
def send(client, auth):
    def post(category="onboarding", body="Take the tour", user_id="u-1", **extra):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": user_id}, "category": category, "urgency": "normal",
            "content": {"title": "Hi", "body": body}, **extra})
        assert r.status_code == 202, r.get_json()
        return r.get_json()

    return post


@pytest.fixture
def user_token(client, auth):
    """Mints a token for a user; returns (headers for the in-app routes, token id)."""

    def mint(user_id="u-1"):
        r = client.post(f"/v1/recipients/{user_id}/inapp-token", headers=auth)
        assert r.status_code == 201, r.get_json()
        body = r.get_json()
        return {"Authorization": f"Bearer {body['token']}"}, body["token_id"]

    return mint


@pytest.fixture
def attempts(client, auth):
    def of(message_id, channel=None):
        body = client.get(f"/v1/messages/{message_id}", headers=auth).get_json()
        return [a for a in body["attempts"] if channel is None or a["channel"] == channel]

    return of


def key_for(app, scopes=("send", "read", "recipients", "inapp:tokens")) -> dict[str, str]:
    """An API key on any app instance (several apps in one test)."""
    from orchestrator.access.auth import create_api_key
    from orchestrator.app_state import EXTENSION_KEY

    with app.extensions[EXTENSION_KEY].db.session() as s:
        _, key = create_api_key(s, "inapp-test", scopes)
    return {"Authorization": f"Bearer {key}"}
