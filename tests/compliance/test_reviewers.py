"""Reviewers by one-time invitation: invite (CLI and API) → open the link → sign in → pages
by scopes → revoke (reviewer or one session) → refused at the next click; links used once,
expired or unknown get a clear page. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from click.testing import CliRunner

from orchestrator.access.auth import hash_secret
from orchestrator.cli.main import main
from orchestrator.storage.models import ApiKey, Reviewer, ReviewInvitation

from .conftest import DEFAULT_VERSION
from .test_review_pages import CSRF, text

LINK = re.compile(r"/review/invite/([A-Za-z0-9_-]+)$")


def _invite(client, admin, **body):
    body = {"name": "Jane Roe", "scopes": ["compliance:read"], **body}
    r = client.post("/v1/reviewers/invitations", headers=admin, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _accept(app, link: str):
    """A fresh browser opening the link and accepting it; returns (client, answer to the POST)."""
    browser = app.test_client()
    path = "/review/invite/" + LINK.search(link).group(1)
    page = browser.get(path)
    assert page.status_code == 200, text(page)
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    return browser, browser.post(path, data={"csrf_token": token})


def test_invitation_signs_in_once_with_its_scopes_and_revocation_ends_it(app, client, make_key, state, clock):
    admin = make_key(("admin",), name="root")
    invitation = _invite(client, admin, scopes=["compliance:read"], expires_in="2h")
    assert invitation["scopes"] == ["compliance:read"] and invitation["link"].startswith("/review/invite/")
    token = LINK.search(invitation["link"]).group(1)
    with state.db.session() as s:  # only the hash is stored
        row = s.query(ReviewInvitation).one()
        assert row.token_hash == hash_secret(token) and token not in (row.token_hash, row.name, row.scopes)

    page = app.test_client().get(invitation["link"])
    assert page.status_code == 200
    assert "Jane Roe" in text(page) and "compliance:read" in text(page) and "Accept and sign in" in text(page)

    jane, accepted = _accept(app, invitation["link"])
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith("/review/")
    cookie = jane.get_cookie("session")
    assert cookie is not None and token not in cookie.value
    home = jane.get("/review/")
    assert home.status_code == 200 and "Signed in as" in text(home) and "Jane Roe" in text(home)
    assert jane.get(f"/review/policies/{DEFAULT_VERSION}").status_code == 200
    # compliance:read, not policy:approve: approving is refused with the scope named
    form = jane.get(f"/review/policies/{DEFAULT_VERSION}")
    csrf = CSRF.search(form.get_data(as_text=True)).group(1)
    r = jane.post(f"/review/policies/{DEFAULT_VERSION}/approve", data={"csrf_token": csrf, "reason": "x"})
    assert r.status_code == 403 and "lacks the 'policy:approve'" in text(r)

    # the link works once: a second browser (or the same one) gets a clear page
    again = app.test_client().get(invitation["link"])
    assert again.status_code == 410 and "already been used" in text(again)

    # the reviewer's key exists, but nobody holds its secret; the API lists reviewer and session
    listing = client.get("/v1/reviewers", headers=admin).get_json()["reviewers"]
    assert [(r["name"], r["source"], r["scopes"]) for r in listing] == [("Jane Roe", "invitation", ["compliance:read"])]
    assert len(listing[0]["sessions"]) == 1
    with state.db.session() as s:
        assert s.get(ApiKey, listing[0]["key_id"]).revoked_at is None

    # revoke → the next click is refused
    r = client.delete(f"/v1/reviewers/{listing[0]['id']}", headers=admin, json={"reason": "left the team"})
    assert r.status_code == 200 and r.get_json()["revoked_at"] and r.get_json()["sessions"] == []
    after = jane.get("/review/")
    assert after.status_code == 302 and "/review/login" in after.headers["Location"]
    with state.db.session() as s:
        assert s.get(ApiKey, listing[0]["key_id"]).revoked_at is not None
    audit = client.get("/v1/audit?limit=50", headers=admin)
    assert audit.status_code == 200
    entries = audit.get_json()["entries"]
    assert {"reviewer.invite", "reviewer.join", "reviewer.revoke"} <= {e["action"] for e in entries}
    assert not any(token in json.dumps(e) for e in entries)  # the link's token is never logged


def test_one_session_can_be_ended_and_the_other_stays(app, client, make_key):
    admin = make_key(("admin",), name="root")
    invitation = _invite(client, admin, scopes=["compliance:read", "policy:approve"])
    jane, _ = _accept(app, invitation["link"])
    reviewer = client.get("/v1/reviewers", headers=admin).get_json()["reviewers"][0]
    session_ref = reviewer["sessions"][0]["id"]
    assert len(session_ref) == 16  # a handle, not the cookie's secret
    r = client.delete(f"/v1/reviewers/{reviewer['id']}/sessions/nope", headers=admin, json={"reason": "x"})
    assert r.status_code == 404 and r.get_json()["error"]["field"] == "session_id"
    r = client.delete(f"/v1/reviewers/{reviewer['id']}/sessions/{session_ref}", headers=admin,
                      json={"reason": "lost laptop"})
    assert r.status_code == 200 and r.get_json()["ended"] is True
    assert jane.get("/review/").status_code == 302
    # the reviewer is not revoked: only that session ended
    after = client.get("/v1/reviewers", headers=admin).get_json()["reviewers"][0]
    assert after["revoked_at"] is None and after["sessions"] == []


def test_expired_unknown_and_raced_invitations_get_clear_pages(app, client, make_key, clock, state):
    admin = make_key(("admin",), name="root")
    invitation = _invite(client, admin, expires_in="30m")
    page = app.test_client().get(invitation["link"])  # opened in time…
    csrf = CSRF.search(page.get_data(as_text=True)).group(1)
    clock.advance(minutes=31)
    browser = app.test_client()
    r = browser.get(invitation["link"])
    assert r.status_code == 410 and "expired" in text(r)
    # …accepted too late: refused, nothing created
    late = app.test_client()
    late.get("/review/login")
    with late.session_transaction() as sess:
        sess["review_csrf"] = csrf
    r = late.post(LINK.search(invitation["link"]).group(0), data={"csrf_token": csrf})
    assert r.status_code == 410 and "expired" in text(r)
    with state.db.session() as s:
        assert s.query(Reviewer).count() == 0

    for bad in ("/review/invite/nope", "/review/invite/" + "A" * 43, "/review/invite/" + "x" * 5000,
                "/review/invite/%F0%9F%92%A5" * 3):
        r = app.test_client().get(bad)
        assert r.status_code in (404, 422), bad
        assert "<html" in r.get_data(as_text=True) or r.is_json, bad
        assert r.status_code != 500
    r = app.test_client().get("/review/invite/" + "A" * 43)
    assert r.status_code == 404 and "not known" in text(r)

    # accept without the form's CSRF token: refused, the invitation stays usable
    fresh = _invite(client, admin)
    r = app.test_client().post(LINK.search(fresh["link"]).group(0), data={})
    assert r.status_code == 400
    _, ok = _accept(app, fresh["link"])
    assert ok.status_code == 302


def test_invitation_input_is_checked_naming_the_field(client, make_key):
    admin = make_key(("admin",), name="root")
    reader = make_key(("compliance:read",), name="carol")
    assert client.post("/v1/reviewers/invitations", headers=reader,
                       json={"name": "x", "scopes": ["compliance:read"]}).status_code == 403
    cases = [
        ({"scopes": ["compliance:reed"]}, "scopes", "unknown scope"),
        ({"scopes": []}, "scopes", ""),
        ({"expires_in": "forever"}, "expires_in", "72h"),
        ({"expires_in": "999d"}, "expires_in", "30 days"),
        ({"expires_in": "1m"}, "expires_in", "5 minutes"),
        ({"name": ""}, "name", ""),
        ({"name": "x" * 201}, "name", ""),
        ({"name": "Jane\u0001Roe"}, "name", "control"),
        ({"name": "Jane\u0000Roe"}, None, ""),
    ]
    for body, field, words in cases:
        r = client.post("/v1/reviewers/invitations", headers=admin,
                        json={"name": "Jane", "scopes": ["compliance:read"], **body})
        assert r.status_code in (400, 422), (body, r.get_json())
        error = r.get_json()["error"]
        if field:
            assert field in (error.get("field") or "") + error["message"], (body, error)
        assert words in error["message"], (body, error)
    assert client.delete("/v1/reviewers/nope", headers=admin, json={"reason": "x"}).status_code == 404
    r = client.delete("/v1/reviewers/nope", headers=admin, json={"reason": "  "})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "reason"


def test_cli_invites_lists_and_revokes(app, database_url, tmp_path, state, clock):
    clock.now = datetime.now(UTC)  # the CLI runs on real time
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "ORCHESTRATOR_DATA_DIR": str(tmp_path),
           "PUBLIC_BASE_URL": "https://notify.example.com"}
    bad = runner.invoke(main, ["reviewers", "invite", "--name", "Jane", "--scopes", "compliance:reed"], env=env)
    assert bad.exit_code == 2 and "unknown scope" in bad.output
    bad = runner.invoke(main, ["reviewers", "invite", "--name", "Jane", "--scopes", "compliance:read",
                               "--expires-in", "3 weeks"], env=env)
    assert bad.exit_code == 2 and "--expires-in" in bad.output
    out = runner.invoke(main, ["reviewers", "invite", "--name", "Jane Roe", "--scopes",
                               "compliance:read,policy:approve", "--expires-in", "72h"], env=env)
    assert out.exit_code == 0, out.output
    invitation = json.loads(out.stdout)
    assert invitation["link"].startswith("https://notify.example.com/review/invite/")
    assert invitation["scopes"] == ["compliance:read", "policy:approve"]

    jane, _ = _accept(app, invitation["link"])
    assert jane.get("/review/").status_code == 200
    listed = runner.invoke(main, ["reviewers", "list"], env=env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], len(r["sessions"])) for r in rows] == [("Jane Roe", 1)]

    gone = runner.invoke(main, ["reviewers", "revoke", rows[0]["id"], "--session", "nope", "--reason", "x"], env=env)
    assert gone.exit_code != 0 and "no open session" in gone.output
    ended = runner.invoke(main, ["reviewers", "revoke", rows[0]["id"], "--session", rows[0]["sessions"][0]["id"],
                                 "--reason", "lost laptop"], env=env)
    assert ended.exit_code == 0, ended.output
    assert jane.get("/review/").status_code == 302

    jane_again = app.test_client()
    assert jane_again.get(invitation["link"]).status_code == 410  # used
    revoked = runner.invoke(main, ["reviewers", "revoke", rows[0]["id"], "--reason", "left"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout.splitlines()[0])["revoked_at"]
    unknown = runner.invoke(main, ["reviewers", "revoke", "nope", "--reason", "x"], env=env)
    assert unknown.exit_code != 0 and "no reviewer" in unknown.output


def test_racing_clicks_on_one_link_make_one_reviewer(app, client, make_key, state):
    """Several browsers post the same invitation at once: exactly one is signed in."""
    import threading

    admin = make_key(("admin",), name="root")
    path = LINK.search(_invite(client, admin)["link"]).group(0)
    browsers = []
    for _ in range(6):
        browser = app.test_client()
        page = browser.get(path)
        browsers.append((browser, CSRF.search(page.get_data(as_text=True)).group(1)))
    start, statuses = threading.Barrier(len(browsers)), []

    def click(browser, csrf):
        start.wait()
        statuses.append(browser.post(path, data={"csrf_token": csrf}).status_code)

    threads = [threading.Thread(target=click, args=pair) for pair in browsers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [302] + [410] * (len(browsers) - 1), statuses
    with state.db.session() as s:
        assert s.query(Reviewer).count() == 1
