"""The review pages through Flask's test client: sign-in, scopes, CSRF, and what each page
shows — on SQLite and PostgreSQL. The browser scenario is in test_review_browser.py."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

from orchestrator.storage.models import ApiKey, PolicyVersion

from .conftest import DEFAULT_VERSION, draft_text, send

NEW = "2099-01-01.1"
OTP_CITATION = "seed 004, SMS is still necessary for two-factor authentication"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(page) -> str:
    match = CSRF.search(page.get_data(as_text=True))
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(app, headers: dict[str, str]):
    """A test client signed in with the key in `headers` (its own cookie jar)."""
    client = app.test_client()
    form = client.get("/review/login")
    key = headers["Authorization"].removeprefix("Bearer ")
    r = client.post("/review/login", data={"api_key": key, "csrf_token": _token(form)})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _status(state, version: str) -> str:
    with state.db.session() as s:
        return s.query(PolicyVersion).filter_by(version=version).one().status


def _draft(client, people, version: str = NEW) -> None:
    r = client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(version), "reason": "no SMS"})
    assert r.status_code == 201, r.get_json()


def test_pages_need_sign_in_and_a_known_key(app):
    client = app.test_client()
    r = client.get("/review/policies/x")
    assert r.status_code == 302 and r.headers["Location"].startswith("/review/login?next=/review/policies/x")
    form = client.get("/review/login")
    assert form.status_code == 200 and 'for="api_key"' in form.get_data(as_text=True)
    r = client.post("/review/login", data={"api_key": "ok_nope_nope", "csrf_token": _token(form)})
    assert r.status_code == 401 and "unknown or revoked API key" in text(r)
    assert client.get("/review/").status_code == 302


def test_read_only_key_is_refused_and_compliance_key_can_view(app, people, make_key):
    reader = login(app, make_key(("send", "read"), name="reader"))
    for url in ("/review/", f"/review/policies/{DEFAULT_VERSION}", "/review/diff", "/review/mix",
                "/review/messages", "/review/decisions.csv"):
        r = reader.get(url)
        assert r.status_code == 403, url
        assert "lacks the 'compliance:read'" in text(r)
    carol = login(app, people["carol"])
    r = carol.get("/review/")
    assert r.status_code == 200
    assert DEFAULT_VERSION in text(r) and "active" in text(r) and "Signed in as" in text(r)


def test_policy_page_shows_rules_citations_thresholds_and_channel_table(app, people):
    carol = login(app, people["carol"])
    r = carol.get(f"/review/policies/{DEFAULT_VERSION}")
    assert r.status_code == 200
    page = text(r)
    assert "One-time codes go by SMS" in page and "otp-by-sms" in page and OTP_CITATION in page
    assert "sms_max_segments" in page
    # The readable table (tests/compliance/test_policy_reading.py has the rest): OTP goes by SMS,
    # email as fallback, whether or not the recipient is in the app.
    otp = re.search(r'<tbody id="reading-otp">(.*?)</tbody>', page, re.S).group(1)
    assert "In the app now; not in the app" in otp and "SMS first; then email as fallback if SMS fails." in otp
    assert "Approving needs the" not in page  # the active version has no decision form
    assert carol.get("/review/policies/nope").status_code == 404


def test_draft_cannot_go_live_without_a_second_person(app, client, people, state):
    _draft(client, people)
    alice = login(app, people["alice_approver"])  # the author's other key, with policy:approve
    page = alice.get(f"/review/policies/{NEW}")
    assert page.status_code == 200 and 'id="approve-form"' in page.get_data(as_text=True)
    assert alice.get("/review/mix").status_code == 403  # policies yes (as on the API); messages need compliance:read
    assert "Channel mix</a>" not in page.get_data(as_text=True)  # so the menu does not offer them
    r = alice.post(f"/review/policies/{NEW}/approve", data={"reason": "mine", "csrf_token": _token(page)})
    assert r.status_code == 403
    assert "self_approval_forbidden" in text(r) and "another person must approve it" in text(r)
    assert _status(state, NEW) == "draft"

    bob = login(app, people["bob"])
    token = _token(bob.get(f"/review/policies/{NEW}"))
    r = bob.post(f"/review/policies/{NEW}/activate", data={"reason": "early", "csrf_token": token})
    assert r.status_code == 409 and "only a approved version can be activated" in text(r)
    r = bob.post(f"/review/policies/{NEW}/approve", data={"reason": "", "csrf_token": token})
    assert r.status_code == 422 and "reason: required" in text(r)
    r = bob.post(f"/review/policies/{NEW}/approve", data={"reason": "reviewed the OTP change", "csrf_token": token})
    assert r.status_code == 302
    page = text(bob.get(r.headers["Location"]))
    assert f"Policy {NEW} approved by bob." in page and 'id="activate-form"' in page
    assert state.policies.active().version == DEFAULT_VERSION  # approved is not live yet
    r = bob.post(f"/review/policies/{NEW}/activate", data={"reason": "go live", "csrf_token": token})
    assert r.status_code == 302
    assert _status(state, NEW) == "active" and _status(state, DEFAULT_VERSION) == "retired"
    assert state.policies.active().version == NEW
    listing = text(bob.get("/review/"))
    assert re.search(rf"{re.escape(NEW)}</a></th>\s*<td[^>]*><span class=\"status active\">", listing)


def test_approving_needs_policy_approve_and_a_csrf_token(app, client, people, state):
    _draft(client, people)
    carol = login(app, people["carol"])
    page = carol.get(f"/review/policies/{NEW}")
    assert "Approving needs the" in text(page) and 'id="approve-form"' not in text(page)
    r = carol.post(f"/review/policies/{NEW}/approve", data={"reason": "x", "csrf_token": _token(page)})
    assert r.status_code == 403 and "policy:approve" in text(r)

    bob = login(app, people["bob"])
    for data in ({"reason": "x"}, {"reason": "x", "csrf_token": "forged"}):
        r = bob.post(f"/review/policies/{NEW}/approve", data=data)
        assert r.status_code == 400 and "security token" in text(r)
    # A token from another session does not work either.
    r = bob.post(f"/review/policies/{NEW}/approve", data={"reason": "x", "csrf_token": _token(page)})
    assert r.status_code == 400
    assert _status(state, NEW) == "draft"
    assert app.test_client().post("/review/login", data={"api_key": "x"}).status_code == 400


def test_diff_page_names_the_changed_rule(app, client, people):
    _draft(client, people)
    carol = login(app, people["carol"])
    policy_page = text(carol.get(f"/review/policies/{NEW}"))
    assert f'id="diff-active" href="/review/diff?from={DEFAULT_VERSION}&to={NEW}"' in policy_page
    r = carol.get("/review/diff", query_string={"from": DEFAULT_VERSION, "to": NEW})
    assert r.status_code == 200
    page = text(r)
    assert "Rule 'otp-by-sms' (One-time codes go by SMS): effect changed from" in page
    assert f"Version {DEFAULT_VERSION} -> {NEW}." in page
    r = carol.get("/review/diff", query_string={"from": DEFAULT_VERSION, "to": "nope"})
    assert r.status_code == 404 and "no policy version 'nope'" in text(r)
    assert "Compare" in text(carol.get("/review/diff"))


def test_message_page_shows_trace_exclusions_attempts_and_timeline(app, client, people, recipient):
    sent = send(client, people)
    carol = login(app, people["carol"])
    r = carol.get("/review/messages", query_string={"id": sent["id"]})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/review/messages/{sent['id']}")
    r = carol.get(f"/review/messages/{sent['id']}")
    assert r.status_code == 200
    page = text(r)
    assert "Decision trace" in page and "otp-by-sms" in page and "One-time codes go by SMS" in page
    for e in sent["route"]["excluded"]:
        assert f"<code>{e['rule']}</code>" in page
    assert "Receipt timeline" in page and "accepted" in page and "+0.0 s" in page
    assert "the stored facts give the same decision again" in page
    assert "+44" in page and "123456</td>" not in page  # masked address
    assert carol.get("/review/messages/NOPE").status_code == 404


def test_mix_chart_counts_channels_per_day(app, client, people, recipient, clock):
    send(client, people)                                    # today: sms + email
    clock.advance(days=-2)
    send(client, people, category="transactional", body="Your order shipped", urgency="normal")
    clock.advance(days=-10)
    send(client, people)                                    # outside the 7 days
    clock.advance(days=12)
    carol = login(app, people["carol"])
    r = carol.get("/review/mix")
    assert r.status_code == 200
    page = text(r)
    assert "<svg" in page and "Channel mix per day" in page
    rows = dict(re.findall(r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th>(.*?)</tr>', page, re.S))
    assert len(rows) == 7
    numbers = {day: re.findall(r"<td>(\d+)</td>", cells) for day, cells in rows.items()}
    today, two_ago = clock.now.date().isoformat(), (clock.now - timedelta(days=2)).date().isoformat()
    assert numbers[today] == ["0", "0", "1", "1", "0", "0", "1"]  # by channel, suppressed, messages
    assert numbers[two_ago][-1] == "1" and numbers[two_ago][3] == "1"  # transactional goes by email
    assert sum(int(n[-1]) for n in numbers.values()) == 2


def test_decisions_csv_for_a_date_range(app, client, people, recipient, clock):
    sent = send(client, people)
    carol = login(app, people["carol"])
    day = clock.now.date().isoformat()
    r = carol.get("/review/decisions.csv", query_string={"from": day, "to": day})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert f'filename="decisions-{day}-{day}.csv"' in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["message_id"] for row in rows] == [sent["id"]] and rows[0]["channels"].startswith("sms/first")
    empty = carol.get("/review/decisions.csv", query_string={"from": "2020-01-01", "to": "2020-01-02"})
    assert len(empty.get_data(as_text=True).splitlines()) == 1
    assert carol.get("/review/decisions.csv?from=yesterday").status_code == 422
    assert carol.get(f"/review/decisions.csv?from={day}&to=2020-01-01").status_code == 422


def test_logout_revocation_and_no_open_redirect(app, people, state):
    carol = login(app, people["carol"])
    page = carol.get("/review/")
    r = carol.post("/review/logout", data={"csrf_token": _token(page)})
    assert r.status_code == 302 and carol.get("/review/").status_code == 302

    client = app.test_client()
    key = people["carol"]["Authorization"].removeprefix("Bearer ")
    r = client.post("/review/login", data={"api_key": key, "next": "https://evil.example/review",
                                           "csrf_token": _token(client.get("/review/login"))})
    assert r.headers["Location"] == "/review/"
    assert client.get("/review/").status_code == 200
    with state.db.session() as s:
        s.query(ApiKey).filter_by(name="carol").one().revoked_at = state.clock()
    assert client.get("/review/").status_code == 302  # a revoked key is signed out at the next click


def test_session_cookie_is_signed_with_secret_key(make_app, caplog):
    assert make_app(SECRET_KEY="configured-secret").secret_key == "configured-secret"
    with caplog.at_level("WARNING", logger="orchestrator.review.session"):
        first, second = make_app(), make_app()
    assert first.secret_key and first.secret_key != second.secret_key  # random per process
    assert "SECRET_KEY is not set" in caplog.text


def test_session_cookie_is_secure_behind_https(make_app):
    assert make_app(PUBLIC_BASE_URL="https://notify.example.com").config["SESSION_COOKIE_SECURE"] is True
    assert not make_app(PUBLIC_BASE_URL="http://127.0.0.1:8000").config.get("SESSION_COOKIE_SECURE")


def test_a_cookie_copied_before_logout_does_not_work_after_it(app, people):
    carol = login(app, people["carol"])
    assert carol.get("/review/").status_code == 200
    cookie = carol.get_cookie("session")
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    assert thief.get("/review/").status_code == 200          # the copy works while signed in
    carol.post("/review/logout", data={"csrf_token": _token(carol.get("/review/"))})
    r = thief.get("/review/")
    assert r.status_code == 302 and "/review/login" in r.headers["Location"]


def test_review_sessions_have_a_maximum_age(app, people, clock):
    carol = login(app, people["carol"])
    assert carol.get("/review/").status_code == 200
    clock.advance(hours=11, minutes=59)
    assert carol.get("/review/").status_code == 200
    clock.advance(minutes=2)   # REVIEW_SESSION_MAX_AGE_SECONDS defaults to 12 hours
    assert carol.get("/review/").status_code == 302
