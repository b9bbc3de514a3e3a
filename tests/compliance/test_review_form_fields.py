"""Hostile values in the review pages' form fields and query values (issue #19, round two):
NUL and over-long text get the page's own error display with a 4xx, never a 500 and never a
silently stored value, on SQLite and PostgreSQL. A lone surrogate cannot travel in a form: its
bytes are not UTF-8, and Werkzeug keeps them as the literal escapes (checked below)."""

from __future__ import annotations

import pytest

from orchestrator.audit.log import AuditAction
from orchestrator.storage.models import AuditEntry, PolicyVersion

from .conftest import draft_text
from .test_review_pages import NEW, _token, login, text

HOSTILE = {
    "nul": "ok\x00then",
    "nul_only": "\x00",
    "too_long": "x then" * 20_000,
}


def _raw(value: str | bytes) -> bytes:
    from urllib.parse import quote_from_bytes

    return quote_from_bytes(value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")).encode()


def _post(client, path: str, fields: dict[str, str | bytes]):
    body = b"&".join(name.encode() + b"=" + _raw(value) for name, value in fields.items())
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("action", ["approve", "activate"])
def test_a_hostile_reason_is_shown_as_the_page_error(app, client, people, state, action, case):
    r = client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(), "reason": "r"})
    assert r.status_code == 201, r.get_json()
    reviewer = login(app, people["bob"])
    token = _token(reviewer.get(f"/review/policies/{NEW}"))
    r = _post(reviewer, f"/review/policies/{NEW}/{action}", {"csrf_token": token, "reason": HOSTILE[case]})
    assert r.status_code == 422, (r.status_code, r.get_data(as_text=True)[:300])
    page = text(r)
    assert 'role="alert"' in page and "reason:" in page, page[:2000]
    assert len(r.get_data()) < 200_000
    with state.db.session() as s:
        assert s.query(PolicyVersion).filter_by(version=NEW).one().status == "draft"
        assert not [a for a in s.query(AuditEntry).all() if "then" in a.reason]


def test_bytes_that_are_not_utf8_are_kept_as_their_escapes(app, client, people, state):
    r = client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(), "reason": "r"})
    assert r.status_code == 201, r.get_json()
    reviewer = login(app, people["bob"])
    token = _token(reviewer.get(f"/review/policies/{NEW}"))
    r = _post(reviewer, f"/review/policies/{NEW}/approve", {"csrf_token": token, "reason": b"ok \xed\xa0\x80 \xff"})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    with state.db.session() as s:
        assert s.query(AuditEntry).filter_by(action=AuditAction.POLICY_APPROVE).one().reason == "ok %ED%A0%80 %FF"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_login_fields_are_refused_on_the_login_page(app, case):
    client = app.test_client()
    token = _token(client.get("/review/login"))
    for fields in ({"api_key": HOSTILE[case]}, {"api_key": "ok_nope_nope", "next": HOSTILE[case]}):
        r = _post(client, "/review/login", {"csrf_token": token, **fields})
        assert r.status_code in (400, 401, 422), (fields.keys(), r.status_code, r.get_data(as_text=True)[:300])
        assert 'role="alert"' in r.get_data(as_text=True)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_csrf_token_is_the_form_expired_page(app, people, case):
    reviewer = login(app, people["bob"])
    r = _post(reviewer, f"/review/policies/{NEW}/approve", {"csrf_token": HOSTILE[case], "reason": "ok"})
    assert r.status_code == 400 and "Form expired" in text(r)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_query_values_are_refused_on_the_page(app, people, case):
    reviewer = login(app, people["carol"])
    value = _raw(HOSTILE[case]).decode()
    for path in (f"/review/diff?from={value}&to=x", f"/review/diff?from=x&to={value}",
                 f"/review/messages?id={value}", f"/review/decisions.csv?from={value}",
                 f"/review/legal?stage={value}", f"/review/login?next={value}"):
        r = reviewer.get(path)
        assert r.status_code < 500, (path, r.status_code, r.get_data(as_text=True)[:300])
