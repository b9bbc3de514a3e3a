"""Bad and hostile input to templates and templated sends: every one a JSON 4xx naming the
field, never a 500, on SQLite and PostgreSQL. The limits of the template language itself
(what a source may contain, what one render may cost) are checked in the template engine,
before the refused source or message would be stored: those cases run on SQLite only
(`RENDERING_ONLY`); a batch, stored strings (NUL, lengths) and field checks keep both."""

from __future__ import annotations

import json

import pytest

from tests.templates.test_templates_api import ORDER, VARS, error, recipient, templated

SEND = "/v1/messages"
# A case refused by compiling or rendering a template, before what it refuses is stored: the
# database cannot change the answer, so it runs once.
RENDERING_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def writer(make_key):
    return make_key(("templates:write",), name="content-team")


def with_source(channel: str, field: str, source: str, **extra) -> dict:
    channels = json.loads(json.dumps(ORDER["channels"]))
    channels[channel][field] = source
    return {**ORDER, "channels": channels, **extra}


@RENDERING_ONLY
@pytest.mark.parametrize(("source", "needle"), [
    ("{{ ''.__class__.__mro__ }}", "__mro__"),
    ("{{ ''['__class__'] }}", "__class__"),
    ("{{ name.__init__.__globals__ }}", "__globals__"),
    ("{% for a in name %}{% for b in name %}x{% endfor %}{% endfor %}", "nested"),
    ("{% for a in name recursive %}{{ loop(a) }}{% endfor %}", "recursive"),
    ("{% set x = name ~ name %}{{ x }}", "{% set %}"),
    ("{% macro m() %}{% endmacro %}", "{% macro %}"),
    ("{% include 'secrets.txt' %}", "{% include %}"),
    ("{% extends 'base' %}", "{% extends %}"),
    ("{% import 'os' as os %}", "{% import %}"),
    ("{{ name|center(1000000000) }}", "center"),
    ("{{ name|format(1) }}", "format"),
    ("{{ name|safe }}", "safe"),
    ("{% autoescape false %}{{ name }}{% endautoescape %}", "{% autoescape %}"),
    ("{{ name ", "syntax error"),
    ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "nests too deeply"),
])
def test_unsafe_or_broken_sources_are_refused_at_save(client, writer, source, needle):
    err = error(client.post("/v1/templates", headers=writer, json=with_source("sms", "text", source)), 422)
    assert err["code"] == "invalid_template" and err["field"] == "channels.sms.text"
    assert needle in err["message"]


def test_a_broken_translation_is_named_by_locale_channel_and_field(client, writer):
    body = {**ORDER, "translations": {"ko": {"email": {"subject": "x", "text": "y", "html": "{% if %}"}}}}
    err = error(client.post("/v1/templates", headers=writer, json=body), 422)
    assert err["field"] == "translations.ko.email.html"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({**ORDER, "id": "../etc/passwd"}, 422, "id"),
    ({**ORDER, "id": "Upper"}, 422, "id"),
    ({**ORDER, "id": "x" * 65}, 422, "id"),
    ({**ORDER, "id": "a\u0000b"}, 422, "id"),
    ({**ORDER, "default_locale": "english please"}, 422, "default_locale"),
    ({**ORDER, "translations": {"k@": ORDER["channels"]}}, 422, "translations.k@.[key]"),
    ({**ORDER, "reply_to": "not an email"}, 422, "reply_to"),
    ({**ORDER, "reply_to": "a@example.com\r\nBcc: x@example.com"}, 422, "reply_to"),
    ({**ORDER, "channels": {}}, 422, "channels"),
    ({**ORDER, "channels": {"fax": {"text": "x"}}}, 422, "channels.fax"),
    ({**ORDER, "reason": "r" * 5000}, 422, "reason"),
    (with_source("sms", "text", "x" * 60_000), 422, "channels.sms.text"),
    (with_source("sms", "text", "nul \u0000 here"), 422, "channels.sms.text"),
    (with_source("email", "html", 7), 422, "channels.email.html"),
])
def test_bad_template_fields_are_named(client, writer, body, status, field):
    err = error(client.post("/v1/templates", headers=writer, json=body), status)
    assert err["field"] == field, err


def test_deep_nesting_huge_bodies_and_non_json(client, writer):
    deep = {**ORDER, "translations": {"ko": json.loads("[" * 40 + "]" * 40)}}
    assert error(client.post("/v1/templates", headers=writer, json=deep), 422)["code"] == "nesting_too_deep"
    huge = with_source("email", "html", "x" * 300_000)
    assert error(client.post("/v1/templates", headers=writer, json=huge), 413)["code"] == "payload_too_large"
    r = client.post("/v1/templates", headers={**writer, "Content-Type": "application/json"}, data="{nope")
    assert error(r, 400)["code"] == "invalid_json"
    nan = client.post("/v1/templates/order_shipped/preview", headers={**writer, "Content-Type": "application/json"},
                      data='{"version": NaN}')
    assert error(nan, 422)["code"] == "invalid_number"


@pytest.fixture
def ready(client, writer, auth):
    assert client.post("/v1/templates", headers=writer, json=ORDER).status_code == 201
    recipient(client, auth)


@pytest.mark.parametrize(("over", "field"), [
    ({"template": {"version": 0}}, "template.version"),
    ({"template": {"version": 10**30}}, "template.version"),
    ({"template": {"version": "latest"}}, "template.version"),
    ({"template": {"id": "../x"}}, "template.id"),
    ({"template": {"reply_to": "nope"}}, "template.reply_to"),
    ({"template": {"extra": 1}}, "template.extra"),
    ({"recipient": {"locale": "ko KR"}}, "recipient.locale"),
    ({"recipient": {"locale": "x" * 40}}, "recipient.locale"),
])
def test_bad_template_references_are_named(client, auth, ready, over, field):
    assert error(client.post(SEND, headers=auth, json=templated(**over)), 422)["field"] == field


@pytest.mark.parametrize(("variables", "code", "field"), [
    ({**VARS, "bad-name": 1}, "validation_error", "template.variables.bad-name.[key]"),
    ({**VARS, "__class__": 1}, "unexpected_variable", "template.variables.__class__"),
    ({"name": VARS["name"]}, "missing_variable", "template.variables.order_id"),
    ({**VARS, **{f"v{i}": 1 for i in range(101)}}, "validation_error", "template.variables"),
])
def test_bad_variables_are_named(client, auth, ready, variables, code, field):
    err = error(client.post(SEND, headers=auth, json=templated(variables=variables)), 422)
    assert (err["code"], err["field"]) == (code, field)


def test_deeply_nested_variables_are_refused(client, auth, ready):
    deep = {"name": json.loads("[" * 40 + "]" * 40), "order_id": "1"}
    assert error(client.post(SEND, headers=auth, json=templated(variables=deep)), 422)["code"] == "nesting_too_deep"


RUNTIME = {
    "repeat": ("{{ 'x' * n }}", {"n": 10**9}),
    "power": ("{{ n ** n }}", {"n": 10**6}),
    "percent": ("{{ s % n }}", {"s": "%999999999d", "n": 1}),
    "method": ("{{ s.ljust(n) }}", {"s": "x", "n": 10**9}),
    "format": ("{{ s.format(n) }}", {"s": "{:>999999999}", "n": 1}),
    "dynamic_dunder": ("{{ s[n] }}", {"s": "x", "n": "__class__"}),
    "range": ("{% for i in range(n) %}.{% endfor %}", {"n": 10**7}),
    "concat": ("{{ s ~ s ~ s ~ s ~ s }}", {"s": "y" * 30_000}),
    "power_chain": ("{{ ((n ** 60) ** 60) ** 60 }}", {"n": 10**18}),
    "big_product": ("{{ (n ** 60) * (n ** 60) * (n ** 60) * (n ** 60) }}", {"n": 10**18}),
    "undefined_attribute": ("{{ s.missing }}", {"s": {"a": 1}}),
}


@RENDERING_ONLY
@pytest.mark.parametrize("case", sorted(RUNTIME))
def test_work_and_memory_bombs_are_refused_at_render(client, writer, auth, case):
    source, variables = RUNTIME[case]
    body = {"id": "bomb", "channels": {"sms": {"text": source}}}
    assert client.post("/v1/templates", headers=writer, json=body).status_code == 201, case
    recipient(client, auth)
    r = client.post(SEND, headers=auth, json=templated(template={"id": "bomb"}, variables=variables))
    err = error(r, 422)
    assert err["code"] == "render_failed" and err["field"].startswith("template.variables"), err


def test_rendered_urls_are_checked(client, writer, auth):
    body = {"id": "link", "channels": {"push": {"body": "Open", "action_url": "{{ url }}"}}}
    assert client.post("/v1/templates", headers=writer, json=body).status_code == 201
    recipient(client, auth)
    for url in ("javascript:alert(1)", "https://ok.example/ x", "http://plain.example"):
        err = error(client.post(SEND, headers=auth, json=templated(template={"id": "link"},
                                                                   variables={"url": url})), 422)
        assert (err["code"], err["field"]) == ("invalid_url", "template.channels.push.action_url")
    ok = client.post(SEND, headers=auth, json=templated(template={"id": "link"},
                                                        variables={"url": "https://ok.example/a"}))
    assert ok.status_code == 202, ok.get_json()


def test_rendered_text_over_the_content_limit_is_refused(make_app, make_key):
    app = make_app(MAX_CONTENT_CHARS=50)
    client = app.test_client()
    writer, auth = make_key(("templates:write",)), make_key()
    assert client.post("/v1/templates", headers=writer, json={
        "id": "long", "channels": {"sms": {"text": "{{ t }}"}}}).status_code == 201
    recipient(client, auth)
    err = error(client.post(SEND, headers=auth, json=templated(template={"id": "long"},
                                                               variables={"t": "x" * 60})), 422)
    assert (err["code"], err["field"]) == ("content_too_large", "template")
    inline = {"recipient": {"user_id": "u-1"}, "category": "transactional",
              "content": {"body": "short", "channels": {"email": {"text": "x" * 60}}}}
    err = error(client.post(SEND, headers=auth, json=inline), 422)
    assert (err["code"], err["field"]) == ("content_too_large", "content.channels.email")


@pytest.mark.parametrize(("channels", "field"), [
    ({"sms": {"text": ""}}, "content.channels.sms.text"),
    ({"push": {"image_url": "http://x.example/a.png"}}, "content.channels.push.image_url"),
    ({"in_app": {"action_url": "javascript:alert(1)"}}, "content.channels.in_app.action_url"),
    ({"email": {"reply_to": "a@b.example\nBcc: c@d.example"}}, "content.channels.email.reply_to"),
    ({"email": {"subject": "s" * 501}}, "content.channels.email.subject"),
    ({"fax": {"text": "x"}}, "content.channels.fax"),
    ({"sms": {"text": "nul\u0000"}}, "content.channels.sms.text"),
])
def test_bad_inline_overrides_are_named(client, auth, channels, field):
    body = {"recipient": {"user_id": "u-1"}, "category": "transactional",
            "content": {"body": "base", "channels": channels}}
    assert error(client.post(SEND, headers=auth, json=body), 422)["field"] == field


def test_a_junk_stored_locale_falls_back_to_the_default(client, writer, auth, state):
    from orchestrator.storage.models import Recipient

    assert client.post("/v1/templates", headers=writer, json=ORDER).status_code == 201
    recipient(client, auth)
    with state.db.session() as s:
        s.get(Recipient, "u-1").locale = "@@ not a locale"
    r = client.post(SEND, headers=auth, json=templated())
    assert r.status_code == 202, r.get_json()


def test_a_rendered_subject_over_its_limit_names_the_channel_field(client, writer, auth):
    body = {"id": "subj", "channels": {"email": {"subject": "{{ s }}", "text": "x"}}}
    assert client.post("/v1/templates", headers=writer, json=body).status_code == 201
    recipient(client, auth)
    err = error(client.post(SEND, headers=auth, json=templated(template={"id": "subj"},
                                                               variables={"s": "s" * 600})), 422)
    assert err["code"] == "render_failed" and "email.subject" in err["message"]


# -- what a render may cost (issue #19 §1) ----------------------------------------------------

PLANTED = {  # bombs that need no variables: refused when saved, so no send ever pays for them
    "sort_in_loop": "{% for i in range(50) %}{% if ((range(1000)|list)*100)|sort|first %}{% endif %}{% endfor %}",
    "cpu_in_loop": "{% for i in range(1000) %}{% if ((range(1000)|list)*10)|sort|first %}{% endif %}{% endfor %}",
    "join_separator": "{{ range(1000)|join('x' * 100000) }}",
}
# Bombs whose cost comes from the variables of one send: that send alone is refused.
COSTLY_VARIABLES = ("{% for i in range(1000) %}{{ (items * 10)|sort|first }}{% endfor %}{{ items|join(sep) }}",
                    {"items": list(range(1000)), "sep": "x" * 100_000})


@RENDERING_ONLY
@pytest.mark.parametrize("case", sorted(PLANTED))
def test_a_source_whose_own_work_is_over_the_limits_is_refused_when_saved(client, writer, case):
    for path, body in (("/v1/templates", with_source("sms", "text", PLANTED[case])),
                       ("/v1/templates", {**with_source("email", "html", "<p>ok</p>"), "id": "ko",
                                          "translations": {"ko": {"push": {"body": PLANTED[case]}}}})):
        err = error(client.post(path, headers=writer, json=body), 422)
        assert err["code"] == "invalid_template", err
        assert err["field"] in ("channels.sms.text", "translations.ko.push.body"), err
        assert "refused" in err["message"], err
    assert client.get("/v1/templates/order_shipped", headers=writer).status_code == 404
    ok = client.post("/v1/templates", headers=writer, json=ORDER)
    assert ok.status_code == 201
    err = error(client.post("/v1/templates/order_shipped/versions", headers=writer,
                            json={k: v for k, v in with_source("sms", "text", PLANTED[case]).items()
                                  if k != "id"}), 422)
    assert err["field"] == "channels.sms.text", err


@RENDERING_ONLY
def test_variables_that_make_a_send_too_costly_fail_that_send_alone(client, writer, auth):
    source, variables = COSTLY_VARIABLES
    assert client.post("/v1/templates", headers=writer, json={
        "id": "costly", "channels": {"sms": {"text": source}}}).status_code == 201
    recipient(client, auth)
    err = error(client.post(SEND, headers=auth, json=templated(template={"id": "costly"}, variables=variables)),
                422)
    assert err["code"] == "render_failed" and err["field"] == "template.variables", err
    assert "sms.text: refused" in err["message"], err
    preview = client.post("/v1/templates/costly/preview", headers=auth, json={"variables": variables})
    assert error(preview, 422)["code"] == "render_failed"
    # The same template with small variables, and other sends, go through.
    small = client.post(SEND, headers=auth, json=templated(template={"id": "costly"},
                                                           variables={"items": [3, 1], "sep": ","}))
    assert small.status_code == 202, small.get_json()


def test_a_batch_item_whose_render_is_too_costly_fails_alone(client, writer, auth):
    source, variables = COSTLY_VARIABLES
    assert client.post("/v1/templates", headers=writer, json={
        "id": "costly", "channels": {"sms": {"text": source}}}).status_code == 201
    for user in ("u-1", "u-2"):
        recipient(client, auth, user_id=user)
    r = client.post(f"{SEND}/batch", headers=auth, json={
        "category": "transactional", "template": {"id": "costly", "variables": {"sep": ","}},
        "recipients": [{"recipient": {"user_id": "u-1"}, "variables": {"items": [1]}},
                       {"recipient": {"user_id": "u-2"}, "variables": {"items": variables["items"],
                                                                       "sep": variables["sep"]}}]})
    out = r.get_json()
    assert r.status_code == 202 and (out["accepted"], out["refused"]) == (1, 1), out
    assert out["results"][1]["error"]["code"] == "render_failed", out


@pytest.mark.parametrize("source", ["{% if false %}x{% endif %}", "{{ ' ' if true }}"])
def test_a_channel_that_renders_empty_is_named_not_a_500(client, writer, auth, source):
    assert client.post("/v1/templates", headers=writer, json=with_source("sms", "text", source)).status_code == 201
    err = error(client.post("/v1/templates/order_shipped/preview", headers=auth, json={"variables": VARS}), 422)
    assert (err["code"], err["field"]) == ("render_failed", "channels.sms.text"), err
    recipient(client, auth)
    err = error(client.post(SEND, headers=auth, json=templated()), 422)
    assert (err["code"], err["field"]) == ("render_failed", "template.channels.sms.text"), err
