"""Review sign-in by OpenID Connect against a local identity provider that speaks the real
protocol over HTTP (tests/fakes/oidc_provider.py): discovery, authorization code with PKCE,
state and nonce, an RS256 ID token checked against the JWKS, groups mapped to scopes. The
browser's side is Flask's test client; every provider call is real HTTP. On both databases."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from orchestrator.config import ConfigError, Settings
from orchestrator.storage.models import Reviewer, ReviewSsoState

from ..fakes.oidc_provider import FakeOidcProvider
from .conftest import DEFAULT_VERSION
from .test_review_pages import CSRF, text

GROUPS = {"compliance": ["compliance:read"], "policy-leads": ["compliance:read", "policy:approve"]}
BASE = "http://review.test"


@pytest.fixture
def idp():
    with FakeOidcProvider() as provider:
        yield provider


@pytest.fixture
def sso_app(make_app, idp):
    return make_app(REVIEW_OIDC_ISSUER=idp.issuer, REVIEW_OIDC_CLIENT_ID=idp.client_id,
                    REVIEW_OIDC_CLIENT_SECRET=idp.client_secret, REVIEW_OIDC_GROUP_SCOPES=json.dumps(GROUPS),
                    REVIEW_OIDC_PROVIDER_NAME="Acme SSO", PUBLIC_BASE_URL=BASE)


def _to_provider(browser, start: str = "/review/sso") -> str:
    r = browser.get(start)
    assert r.status_code == 302, text(r)
    return r.headers["Location"]


def _back_from_provider(browser, authorize_url: str):
    """The provider's authorization endpoint (real HTTP) redirects to our callback, which the
    browser then opens."""
    answer = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["location"])
    assert f"{callback.scheme}://{callback.netloc}" == BASE and callback.path == "/review/sso/callback"
    return browser.get(f"{callback.path}?{callback.query}"), f"{callback.path}?{callback.query}"


def sso_login(app, idp, **user):
    idp.next_user = {"sub": "user-1", "name": "Sam Sso", "groups": ["compliance"], **user}
    browser = app.test_client()
    r, _ = _back_from_provider(browser, _to_provider(browser))
    return browser, r


def test_login_page_offers_the_provider_and_a_mapped_group_signs_in(sso_app, idp, make_key, state):
    page = sso_app.test_client().get("/review/login")
    assert "Sign in with Acme SSO" in text(page) and 'for="api_key"' in text(page) and "invitation" in text(page)

    browser = sso_app.test_client()
    authorize_url = _to_provider(browser, "/review/sso?next=/review/diff")
    assert authorize_url.startswith(f"{idp.issuer}/authorize?")
    asked = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert asked["code_challenge_method"] == "S256" and asked["nonce"] and asked["state"]
    assert asked["redirect_uri"] == f"{BASE}/review/sso/callback" and "openid" in asked["scope"].split()
    # the nonce and PKCE verifier wait server-side: the cookie only names the flow
    with browser.session_transaction() as cookie:
        assert asked["nonce"] not in json.dumps(dict(cookie)) and "code_verifier" not in json.dumps(dict(cookie))
    with state.db.session() as s:
        [flow] = s.query(ReviewSsoState).all()
        assert asked["nonce"] in flow.value and "code_verifier" in flow.value
    r, _ = _back_from_provider(browser, authorize_url)
    assert r.status_code == 302 and r.headers["Location"].endswith("/review/diff"), text(r)
    with state.db.session() as s:
        assert s.query(ReviewSsoState).count() == 0  # used up
    exchange = idp.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]

    home = browser.get("/review/")
    assert home.status_code == 200 and "Sam Sso" in text(home) and "compliance:read" in text(home)
    # compliance group: may view, may not approve
    form = browser.get(f"/review/policies/{DEFAULT_VERSION}")
    assert form.status_code == 200
    csrf = CSRF.search(form.get_data(as_text=True)).group(1)
    r = browser.post(f"/review/policies/{DEFAULT_VERSION}/approve", data={"csrf_token": csrf, "reason": "x"})
    assert r.status_code == 403 and "policy:approve" in text(r)

    # the same person, now in policy-leads: the same reviewer, scopes follow the groups
    lead, r = sso_login(sso_app, idp, groups=["policy-leads", "unrelated"])
    assert r.status_code == 302
    assert "policy:approve" in text(lead.get("/review/"))
    admin = make_key(("admin",), name="root")
    rows = sso_app.test_client().get("/v1/reviewers", headers=admin).get_json()["reviewers"]
    assert [(r["name"], r["source"], r["scopes"]) for r in rows] == [
        ("Sam Sso", "sso", ["compliance:read", "policy:approve"])]
    assert len(rows[0]["sessions"]) == 2
    with state.db.session() as s:  # the provider's user id is not kept in clear
        assert "user-1" not in s.query(Reviewer).one().subject_hash

    # revoked by an admin: open pages refused at the next click, and SSO does not bring them back
    r = sso_app.test_client().delete(f"/v1/reviewers/{rows[0]['id']}", headers=admin, json={"reason": "left"})
    assert r.status_code == 200
    assert browser.get("/review/").status_code == 302 and lead.get("/review/").status_code == 302
    _, r = sso_login(sso_app, idp, groups=["policy-leads"])
    assert r.status_code == 403 and "revoked your access" in text(r)


def test_user_in_no_mapped_group_is_refused_with_a_clear_page(sso_app, idp, state):
    browser, r = sso_login(sso_app, idp, groups=["marketing"])
    assert r.status_code == 403 and "in no group that grants access" in text(r)
    assert browser.get("/review/").status_code == 302
    browser, r = sso_login(sso_app, idp, groups="not-a-list")
    assert r.status_code == 403
    idp.next_user = {"sub": "user-2", "name": "No Groups"}  # no groups claim at all
    browser, r = sso_login(sso_app, idp, groups=None)
    assert r.status_code == 403
    with state.db.session() as s:
        assert s.query(Reviewer).count() == 0


@pytest.mark.parametrize("knob", ["nonce", "signature", "state"])
def test_tampered_answers_are_refused(sso_app, idp, state, knob):
    if knob == "nonce":
        idp.nonce_override = "a-nonce-from-another-login"
    elif knob == "signature":
        idp.sign_with_other_key = True
    else:
        idp.state_override = "a-state-this-browser-never-sent"
    browser, r = sso_login(sso_app, idp)
    assert r.status_code == 401 and "Single sign-on failed" in text(r), text(r)
    assert "Start again" in text(r)
    # a wrong state stops before the code exchange; a wrong nonce or signature is caught in the
    # ID token the exchange brought back
    assert len(idp.token_requests) == (0 if knob == "state" else 1)
    assert browser.get("/review/").status_code == 302
    with state.db.session() as s:
        assert s.query(Reviewer).count() == 0


def test_a_callback_works_once_and_provider_errors_get_a_page(sso_app, idp):
    browser = sso_app.test_client()
    r, callback = _back_from_provider(browser, _to_provider(browser))
    assert r.status_code == 302
    replay = sso_app.test_client().get(callback)  # another browser replaying the redirect
    assert replay.status_code == 401
    again = browser.get(callback)  # the same browser: the state was used up
    assert again.status_code == 401
    denied = sso_app.test_client().get("/review/sso/callback?error=access_denied&error_description=User+said+no")
    assert denied.status_code == 401 and "User said no" in text(denied)
    junk = sso_app.test_client().get("/review/sso/callback?code=%00&state=" + "x" * 5000)
    assert junk.status_code in (401, 422)


def test_without_sso_configured_the_login_page_has_no_provider(app):
    client = app.test_client()
    assert "Sign in with" not in text(client.get("/review/login"))
    r = client.get("/review/sso")
    assert r.status_code == 404 and "no single sign-on configured" in text(r)
    assert client.get("/review/sso/callback?code=x&state=y").status_code == 404


def test_unreachable_provider_gets_a_page(make_app):
    app = make_app(REVIEW_OIDC_ISSUER="http://127.0.0.1:9", REVIEW_OIDC_CLIENT_ID="x",
                   REVIEW_OIDC_GROUP_SCOPES=json.dumps(GROUPS), REVIEW_OIDC_PROVIDER_NAME="Acme SSO")
    r = app.test_client().get("/review/sso")
    assert r.status_code == 503 and "Acme SSO could not be reached" in text(r)


@pytest.mark.parametrize("env, words", [
    ({"REVIEW_OIDC_ISSUER": "https://idp.example.com"}, "REVIEW_OIDC_CLIENT_ID must be set"),
    ({"REVIEW_OIDC_ISSUER": "idp.example.com", "REVIEW_OIDC_CLIENT_ID": "a",
      "REVIEW_OIDC_GROUP_SCOPES": '{"g": ["compliance:read"]}'}, "REVIEW_OIDC_ISSUER must be an http(s) URL"),
    ({"REVIEW_OIDC_ISSUER": "https://idp", "REVIEW_OIDC_CLIENT_ID": "a", "REVIEW_OIDC_GROUP_SCOPES": "{nope"},
     "must be a JSON object"),
    ({"REVIEW_OIDC_ISSUER": "https://idp", "REVIEW_OIDC_CLIENT_ID": "a", "REVIEW_OIDC_GROUP_SCOPES": "[]"},
     "non-empty JSON object"),
    ({"REVIEW_OIDC_ISSUER": "https://idp", "REVIEW_OIDC_CLIENT_ID": "a",
      "REVIEW_OIDC_GROUP_SCOPES": '{"g": ["compliance:reed"]}'}, "unknown scope(s) compliance:reed"),
    ({"REVIEW_OIDC_ISSUER": "https://idp", "REVIEW_OIDC_CLIENT_ID": "a",
      "REVIEW_OIDC_GROUP_SCOPES": '{"g": "compliance:read"}'}, "non-empty list of scopes"),
])
def test_oidc_configuration_errors_name_the_variable(env, words):
    with pytest.raises(ConfigError, match=None) as caught:
        Settings.from_env(env)
    assert words in str(caught.value)


def test_oidc_configuration_is_read_once():
    settings = Settings.from_env({"REVIEW_OIDC_ISSUER": "https://idp.example.com/", "REVIEW_OIDC_CLIENT_ID": "a",
                                  "REVIEW_OIDC_CLIENT_SECRET": "T0PSECRET",
                                  "REVIEW_OIDC_REQUEST_SCOPES": "profile groups",
                                  "REVIEW_OIDC_GROUP_SCOPES": json.dumps(GROUPS)}).review_oidc
    assert settings.issuer == "https://idp.example.com" and settings.request_scopes == "openid profile groups"
    assert settings.group_scopes["policy-leads"] == ("compliance:read", "policy:approve")
    assert settings.client_secret == "T0PSECRET" and "T0PSECRET" not in repr(settings)
    assert Settings.from_env({}).review_oidc is None


def test_hostile_claims_are_cleaned_not_stored_raw(sso_app, idp, state):
    """A name with NUL and control characters, far too long, a huge subject, junk among the
    groups: signed in with a clean name on both databases, never a 500."""
    name = "Eve\x00\x07 " + "x" * 5000
    browser, r = sso_login(sso_app, idp, sub="s" * 10_000, name=name,
                           groups=[{"nested": ["policy-leads"]}, None, 7, "compliance"])
    assert r.status_code == 302, text(r)
    with state.db.session() as s:
        reviewer = s.query(Reviewer).one()
        assert reviewer.name.startswith("Eve ") and len(reviewer.name) == 200 and "\x00" not in reviewer.name
    assert "compliance:read" in text(browser.get("/review/"))
