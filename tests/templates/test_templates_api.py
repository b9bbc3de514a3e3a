"""Templates through the API, on SQLite and PostgreSQL: create, version, read, list,
preview, send with one (locale fallback, pinned versions, variables), and bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchestrator.audit import log as audit
from orchestrator.storage.models import Message

SEND = "/v1/messages"

ORDER = {
    "id": "order_shipped",
    "default_locale": "en",
    "reply_to": "support@example.com",
    "reason": "launch",
    "channels": {
        "sms": {"text": "Order {{ order_id }} shipped, {{ name }}."},
        "push": {"title": "Shipped", "body": "Order {{ order_id }} is on its way",
                 "action_url": "https://shop.example/orders/{{ order_id }}"},
        "email": {"subject": "Your order {{ order_id }} shipped",
                  "text": "Hi {{ name }}, order {{ order_id }} shipped.",
                  "html": "<p>Hi {{ name }}, order <b>{{ order_id }}</b> shipped.</p>"},
        "in_app": {"title": "Shipped", "body": "Order {{ order_id }} is on its way"},
    },
    "translations": {
        "ko": {"sms": {"text": "{{ name }}님, 주문 {{ order_id }}이(가) 발송되었습니다."},
               "email": {"subject": "주문 {{ order_id }} 발송", "text": "{{ name }}님, 발송되었습니다.",
                         "html": "<p>{{ name }}님, 발송되었습니다.</p>"}},
    },
}
VARS = {"name": "Ada", "order_id": "A-17"}


@pytest.fixture
def writer(make_key):
    return make_key(("templates:write",), name="content-team")


@pytest.fixture
def created(client, writer):
    r = client.post("/v1/templates", headers=writer, json=ORDER)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def recipient(client, auth, user_id="u-1", **profile):
    data = {"email": "ada@example.com", "phone": "+44 7400 123456", "timezone": "UTC",
            "consents": {"sms": True, "email": True, "push": True}, **profile}
    r = client.put(f"/v1/recipients/{user_id}", headers=auth, json=data)
    assert r.status_code in (200, 201), r.get_json()


def templated(user_id="u-1", variables=VARS, **over):
    ref = {"id": "order_shipped", "variables": variables, **over.pop("template", {})}
    return {"recipient": {"user_id": user_id, **over.pop("recipient", {})}, "category": "transactional",
            "template": ref, **over}


def stored_content(state, message_id):
    with state.db.session() as s:
        return s.scalar(select(Message.content).where(Message.id == message_id))


def error(r, status):
    assert r.status_code == status, r.get_json()
    return r.get_json()["error"]


# -- management -----------------------------------------------------------------------------


def test_create_version_read_list_and_audit(client, writer, auth, created, state):
    assert created["version"] == 1 and created["variables"] == ["name", "order_id"]
    assert created["author"] == "content-team"
    r = client.post("/v1/templates/order_shipped/versions", headers=writer,
                    json={**{k: v for k, v in ORDER.items() if k != "id"}, "reason": "shorter SMS",
                          "channels": {**ORDER["channels"], "sms": {"text": "{{ order_id }} shipped"}}})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["version"] == 2
    got = client.get("/v1/templates/order_shipped", headers=auth).get_json()
    assert got["latest_version"] == 2 and got["latest"]["channels"]["sms"]["text"] == "{{ order_id }} shipped"
    v1 = client.get("/v1/templates/order_shipped/versions/1", headers=auth).get_json()
    assert v1["channels"]["sms"] == ORDER["channels"]["sms"]
    versions = client.get("/v1/templates/order_shipped/versions", headers=auth).get_json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    listed = client.get("/v1/templates", headers=auth).get_json()
    assert [t["id"] for t in listed["templates"]] == ["order_shipped"] and listed["next_cursor"] is None
    with state.db.session() as s:
        entries = audit.recent(s, subject="template:order_shipped")
        assert sorted(e.action for e in entries) == ["template.create", "template.version"]
        assert {e.reason for e in entries} == {"launch", "shorter SMS"}
        assert audit.verify(s).ok


def test_list_is_paginated_by_cursor(client, writer, auth):
    for n in range(3):
        body = {**ORDER, "id": f"t{n}"}
        assert client.post("/v1/templates", headers=writer, json=body).status_code == 201
    first = client.get("/v1/templates?limit=2", headers=auth).get_json()
    assert [t["id"] for t in first["templates"]] == ["t0", "t1"] and first["next_cursor"] == "t1"
    second = client.get(f"/v1/templates?limit=2&cursor={first['next_cursor']}", headers=auth).get_json()
    assert [t["id"] for t in second["templates"]] == ["t2"] and second["next_cursor"] is None
    assert error(client.get("/v1/templates?limit=0", headers=auth), 422)["field"] == "limit"
    # "²": str.isdigit() says yes, int() says no
    assert error(client.get("/v1/templates?limit=%C2%B2", headers=auth), 422)["field"] == "limit"


def test_writes_need_the_templates_write_scope(client, auth, make_key):
    assert error(client.post("/v1/templates", headers=auth, json=ORDER), 403)["code"] == "forbidden"
    admin = make_key(("admin",), name="ops")
    assert client.post("/v1/templates", headers=admin, json=ORDER).status_code == 201


def test_creating_an_existing_id_is_409_and_unknown_ids_404(client, writer, auth, created):
    assert error(client.post("/v1/templates", headers=writer, json=ORDER), 409)["field"] == "id"
    assert client.get("/v1/templates/nope", headers=auth).status_code == 404
    assert client.get("/v1/templates/order_shipped/versions/9", headers=auth).status_code == 404
    body = {k: v for k, v in ORDER.items() if k != "id"}
    assert client.post("/v1/templates/nope/versions", headers=writer, json=body).status_code == 404


def test_preview_renders_each_channel_without_sending(client, auth, created, state):
    r = client.post("/v1/templates/order_shipped/preview", headers=auth,
                    json={"locale": "ko-KR", "variables": VARS})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert out["locale"] == "ko" and out["version"] == 1
    assert out["channels"]["sms"]["text"] == "Ada님, 주문 A-17이(가) 발송되었습니다."
    assert out["channels"]["sms"]["encoding"] == "UCS-2" and out["channels"]["sms"]["segments"] == 1
    assert out["channels"]["push"]["body"] == "Order A-17 is on its way"   # no ko push: the default
    assert out["channels"]["email"]["reply_to"] == "support@example.com"
    with state.db.session() as s:
        assert s.scalar(select(Message.id)) is None
    missing = error(client.post("/v1/templates/order_shipped/preview", headers=auth,
                                json={"variables": {"name": "x"}}), 422)
    assert missing["field"] == "variables.order_id" and missing["code"] == "missing_variable"


# -- sending --------------------------------------------------------------------------------


def test_send_uses_the_profile_locale_with_fallback(client, auth, created, state):
    recipient(client, auth, locale="ko-KR")
    r = client.post(SEND, headers=auth, json=templated())
    assert r.status_code == 202, r.get_json()
    content = stored_content(state, r.get_json()["id"])
    assert content["template"] == {"id": "order_shipped", "version": 1, "locale": "ko"}
    assert content["channels"]["email"]["subject"] == "주문 A-17 발송"        # ko-KR -> ko
    assert content["channels"]["push"]["title"] == "Shipped"                   # ko has no push: en


def test_per_message_locale_overrides_the_profile(client, auth, created, state):
    recipient(client, auth, locale="ko")
    r = client.post(SEND, headers=auth, json=templated(recipient={"locale": "fr-CA"}))
    assert r.status_code == 202, r.get_json()
    content = stored_content(state, r.get_json()["id"])
    assert content["template"]["locale"] == "en"                               # fr-CA -> fr -> default
    assert content["channels"]["sms"]["text"] == "Order A-17 shipped, Ada."


def test_pinned_version_and_latest(client, auth, writer, created, state):
    recipient(client, auth)
    body = {k: v for k, v in ORDER.items() if k != "id"}
    body["channels"] = {**ORDER["channels"], "sms": {"text": "v2 {{ order_id }} {{ name }}"}}
    assert client.post("/v1/templates/order_shipped/versions", headers=writer, json=body).status_code == 201
    latest = client.post(SEND, headers=auth, json=templated()).get_json()["id"]
    pinned = client.post(SEND, headers=auth, json=templated(template={"version": 1})).get_json()["id"]
    assert stored_content(state, latest)["channels"]["sms"]["text"] == "v2 A-17 Ada"
    assert stored_content(state, pinned)["channels"]["sms"]["text"] == "Order A-17 shipped, Ada."
    assert error(client.post(SEND, headers=auth, json=templated(template={"version": 3})), 422)["field"] \
        == "template.version"


def test_missing_and_extra_variables_are_named(client, auth, created):
    recipient(client, auth)
    missing = error(client.post(SEND, headers=auth, json=templated(variables={"name": "Ada"})), 422)
    assert missing["field"] == "template.variables.order_id" and missing["code"] == "missing_variable"
    extra = error(client.post(SEND, headers=auth, json=templated(variables={**VARS, "coupon": "X"})), 422)
    assert extra["field"] == "template.variables.coupon" and extra["code"] == "unexpected_variable"


def test_exactly_one_of_content_and_template(client, auth, created):
    both = templated(content={"body": "hi"})
    assert error(client.post(SEND, headers=auth, json=both), 422)["field"] == "template"
    neither = {"recipient": {"user_id": "u-1"}, "category": "transactional"}
    assert error(client.post(SEND, headers=auth, json=neither), 422)["field"] == "content"
    unknown = error(client.post(SEND, headers=auth, json=templated(template={"id": "nope"})), 422)
    assert unknown["field"] == "template.id" and unknown["code"] == "unknown_template"


def test_routing_explain_renders_the_template_too(client, auth, created):
    recipient(client, auth)
    r = client.post("/v1/routing/explain", headers=auth, json=templated())
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["inputs"]["message"]["sms_text"] == "Order A-17 shipped, Ada."


def test_a_new_version_is_used_at_once_in_this_process(client, auth, writer, created, state):
    recipient(client, auth)
    client.post(SEND, headers=auth, json=templated())                     # caches "latest = 1"
    body = {k: v for k, v in ORDER.items() if k != "id"}
    body["channels"] = {"sms": {"text": "new {{ order_id }} {{ name }}"}}
    client.post("/v1/templates/order_shipped/versions", headers=writer, json=body)
    sent = client.post(SEND, headers=auth, json=templated()).get_json()["id"]
    assert stored_content(state, sent)["template"]["version"] == 2


def test_openapi_documents_the_template_routes_and_schemas(client):
    spec = client.get("/openapi.json").get_json()
    assert {"/v1/templates", "/v1/templates/{template_id}", "/v1/templates/{template_id}/versions",
            "/v1/templates/{template_id}/versions/{version}",
            "/v1/templates/{template_id}/preview"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"TemplateCreate", "TemplateVersionIn", "PreviewIn", "TemplateRef", "ChannelOverrides"} <= set(schemas)
    assert "template" in schemas["SendRequest"]["properties"]
    assert "locale" in schemas["RecipientRef"]["properties"]
