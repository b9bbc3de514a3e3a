"""The HTTP contract of sending and reading messages, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

SEND = "/v1/messages"


def body(**over):
    base = {
        "recipient": {"user_id": "u-1"},
        "category": "security_alert",
        "urgency": "critical",
        "content": {"title": "New sign-in", "body": "A new device signed in to your account."},
    }
    base.update(over)
    return base


@pytest.fixture
def recipient(client, auth):
    r = client.put("/v1/recipients/u-1", headers=auth, json={
        "email": "ada@example.com", "phone": "+44 7400 123456", "timezone": "Europe/London",
        "consents": {"sms": True, "email": True, "push": True},
        "devices": [{"token": "fcm-token-abc", "platform": "fcm"}],
    })
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_send_returns_202_with_route_and_reads_back(client, auth, recipient):
    r = client.post(SEND, headers=auth, json=body())
    assert r.status_code == 202, r.get_json()
    sent = r.get_json()
    assert sent["status"] == "accepted"
    route = sent["route"]
    channels = [s["channel"] for s in route["steps"]]
    assert channels and channels != ["in_app"], "a critical message never relies on in-app alone"
    assert {"sms", "email"} & set(channels)
    for ex in route["excluded"]:
        assert ex["rule"] and ex["reason"]
    assert route["policy_version"]

    got = client.get(f"{SEND}/{sent['id']}", headers=auth)
    assert got.status_code == 200
    message = got.get_json()
    assert message["id"] == sent["id"]
    assert message["route"]["steps"] == route["steps"]
    assert len(message["attempts"]) >= len(channels)
    # Addresses are masked on the way out.
    shown = [a["to"] for a in message["attempts"] if a["channel"] == "sms"]
    assert shown and "123456" not in shown[0]


def test_idempotency_key_replays_and_conflicts(client, auth, recipient, state):
    from sqlalchemy import func, select

    from orchestrator.storage.models import Message

    headers = {**auth, "Idempotency-Key": "order-42"}
    first = client.post(SEND, headers=headers, json=body())
    again = client.post(SEND, headers=headers, json=body())
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    with state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1
    other = client.post(SEND, headers=headers, json=body(category="otp"))
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"


def test_key_order_and_whitespace_do_not_make_a_different_body(client, auth, recipient):
    headers = {**auth, "Idempotency-Key": "k", "Content-Type": "application/json"}
    a = client.post(SEND, headers=headers, data='{"category":"otp","urgency":"high","recipient":{"user_id":"u-1"},'
                                                  '"content":{"body":"123456"}}')
    b = client.post(SEND, headers=headers, data='{ "recipient": {"user_id": "u-1"}, "content": {"body": "123456"},'
                                                  ' "urgency": "high", "category": "otp" }')
    assert a.status_code == 202 and b.get_json()["id"] == a.get_json()["id"]


@pytest.mark.parametrize("payload, status, code, field", [
    (body(category="carrier_pigeon"), 422, "unknown_category", "category"),
    (body(recipient={"user_id": "u-1", "phone": "12"}), 422, "invalid_phone", "recipient.phone"),
    (body(recipient={"user_id": "u-1", "phone": "+44 20 1"}), 422, "invalid_phone", "recipient.phone"),
    (body(expires_at="2020-01-01T00:00:00Z"), 422, "already_expired", "expires_at"),
    (body(expires_at="2030-01-01T00:00:00"), 422, "validation_error", "expires_at"),
    (body(urgency="whenever"), 422, "validation_error", "urgency"),
    (body(content={"title": "x"}), 422, "validation_error", "content.body"),
    (body(content={"body": 42}), 422, "validation_error", "content.body"),
    (body(recipient={"user_id": ""}), 422, "validation_error", "recipient.user_id"),
    (body(surprise=True), 422, "validation_error", "surprise"),
    (body(recipient={"user_id": "u-1", "timezone": "Mars/Olympus"}), 422, "invalid_timezone",
     "recipient.timezone"),
    (body(content={"body": "x" * 20_001}), 422, "content_too_large", "content.body"),
])
def test_bad_input_names_the_field(client, auth, payload, status, code, field):
    r = client.post(SEND, headers=auth, json=payload)
    assert r.status_code == status, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == code
    assert err["field"] == field
    assert field.split(".")[-1] in err["message"]


@pytest.mark.parametrize("raw, code", [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b"[1, 2]", "validation_error"),
    (b"\xff\xfe", "invalid_json"),
])
def test_malformed_bodies(client, auth, raw, code):
    r = client.post(SEND, headers={**auth, "Content-Type": "application/json"}, data=raw)
    assert 400 <= r.status_code < 500
    assert r.get_json()["error"]["code"] == code


def test_oversized_body_is_413_json(client, auth):
    r = client.post(SEND, headers={**auth, "Content-Type": "application/json"}, data=b"{" + b" " * 300_000 + b"}")
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "payload_too_large"


def test_auth_missing_unknown_and_out_of_scope(client, make_key):
    assert client.post(SEND, json=body()).get_json()["error"]["code"] == "unauthorized"
    r = client.post(SEND, json=body(), headers={"Authorization": "Bearer ok_nothere_secret"})
    assert r.status_code == 401
    reader = make_key(scopes=("read",))
    r = client.post(SEND, json=body(), headers=reader)
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "forbidden"
    assert "send" in r.get_json()["error"]["message"]


def test_keys_are_stored_hashed(state, make_key):
    from sqlalchemy import select

    from orchestrator.storage.models import ApiKey

    header = make_key()
    plaintext = header["Authorization"].removeprefix("Bearer ")
    with state.db.session() as s:
        rows = s.scalars(select(ApiKey)).all()
    assert rows and all(plaintext not in (r.key_hash, r.prefix) for r in rows)


def test_a_key_only_reads_its_own_messages(client, auth, make_key, recipient):
    sent = client.post(SEND, headers=auth, json=body()).get_json()
    stranger = make_key(name="other-team")
    assert client.get(f"{SEND}/{sent['id']}", headers=stranger).status_code == 404
    compliance = make_key(scopes=("compliance:read",), name="compliance")
    assert client.get(f"{SEND}/{sent['id']}", headers=compliance).status_code == 200


def test_unknown_recipient_without_addresses_is_suppressed_with_reasons(client, auth):
    r = client.post(SEND, headers=auth, json=body(recipient={"user_id": "nobody"}))
    assert r.status_code == 202
    out = r.get_json()
    assert out["status"] == "suppressed"
    assert out["route"]["suppressed"] is True
    assert out["route"]["suppressed_reasons"]


def test_explain_sends_nothing_and_shows_sms_segments(client, auth, recipient, state):
    from sqlalchemy import func, select

    from orchestrator.storage.models import Message

    korean = "가" * 71
    r = client.post("/v1/routing/explain", headers=auth,
                    json=body(category="otp", urgency="high", content={"body": korean}))
    assert r.status_code == 200, r.get_json()
    plan = r.get_json()
    assert plan["facts"]["sms_encoding"] == "UCS-2"
    assert plan["facts"]["sms_segments"] == 2
    assert "123456" not in str(plan["inputs"]["recipient"]["phone"])
    with state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0


def test_openapi_lists_the_routes_and_schemas(client):
    spec = client.get("/openapi.json").get_json()
    assert {"/v1/messages", "/v1/routing/explain", "/v1/recipients/{user_id}"} <= set(spec["paths"])
    send = spec["components"]["schemas"]["SendRequest"]
    assert {"recipient", "category"} <= set(send["required"])
    assert {"content", "template"} <= set(send["properties"])  # exactly one of them (422 naming it otherwise)


def test_health_and_readiness_report_sandboxed_providers(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    providers = ready.get_json()["checks"]["providers"]
    assert providers["sandbox-sms"]["mode"] == "sandbox"
    assert providers["inapp"]["mode"] == "live"


def test_unknown_route_and_method_are_json(client, auth):
    assert client.get("/nope").get_json()["error"]["code"] == "not_found"
    assert client.delete(SEND, headers=auth).get_json()["error"]["code"] == "method_not_allowed"
