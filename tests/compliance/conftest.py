"""Compliance fixtures: keys for distinct people, a recipient, and policy drafts made by
editing the shipped default document's text."""

from __future__ import annotations

import pytest

import policies

DEFAULT_TEXT = policies.CATEGORIES_DEFAULT_PATH.read_text(encoding="utf-8")
DEFAULT_VERSION = policies.load_default_policy().version
OTP_ROUTE = "      route: [sms, email]\n    reason: one-time codes go by SMS, email as fallback"


def draft_text(version: str = "2099-01-01.1", *, otp_without_sms: bool = True, text: str = DEFAULT_TEXT) -> str:
    """The default document under a new version; optionally OTP goes by email, never SMS."""
    assert f'version: "{DEFAULT_VERSION}"' in text
    out = text.replace(f'version: "{DEFAULT_VERSION}"', f'version: "{version}"', 1)
    if otp_without_sms:
        assert OTP_ROUTE in out
        out = out.replace(OTP_ROUTE, "      route: [email]\n      exclude: sms\n"
                                     "    reason: one-time codes go by email only", 1)
    return out


@pytest.fixture
def people(make_key):
    return {
        "alice": make_key(("policy:write", "compliance:read"), name="alice"),      # author
        "bob": make_key(("policy:approve", "compliance:read"), name="bob"),        # approver
        "alice_approver": make_key(("policy:approve",), name="alice"),             # alice's other key
        "carol": make_key(("compliance:read",), name="carol"),                     # auditor
        "backend": make_key(("send", "read", "recipients"), name="backend"),       # product backend
    }


@pytest.fixture
def recipient(client, people):
    r = client.put("/v1/recipients/u-1", headers=people["backend"], json={
        "email": "ada@example.com", "phone": "+44 7400 123456", "timezone": "Europe/London",
        "consents": {"sms": True, "email": True, "push": True},
        "devices": [{"token": "fcm-token-abc", "platform": "fcm"}],
    })
    assert r.status_code == 201, r.get_json()


def send(client, people, category="otp", body="Your code is 123456", urgency="critical"):
    r = client.post("/v1/messages", headers=people["backend"], json={
        "recipient": {"user_id": "u-1"}, "category": category, "urgency": urgency,
        "content": {"title": "Code", "body": body}})
    assert r.status_code == 202, r.get_json()
    return r.get_json()


def go_live(client, people, version: str, text: str) -> None:
    """Draft by alice, approved by bob, activated by bob."""
    r = client.post("/v1/policies", headers=people["alice"], json={"document": text, "reason": "test"})
    assert r.status_code == 201, r.get_json()
    r = client.post(f"/v1/policies/{version}/approve", headers=people["bob"], json={"reason": "reviewed"})
    assert r.status_code == 200, r.get_json()
    r = client.post(f"/v1/policies/{version}/activate", headers=people["bob"], json={"reason": "go"})
    assert r.status_code == 200, r.get_json()
