"""Staff sign-in in a real browser (Debian's Chromium through Playwright, the app served over
HTTP, the identity provider a local fake over HTTP): an invited reviewer opens the link,
accepts, is signed in; the link then says it was used; an admin revokes them and the next
click lands on the sign-in page, which offers single sign-on; signing in there goes through the
provider and back; a user in no mapped group gets a clear page. Every page: 0 axe-core
violations and no horizontal scroll, at desktop width and at 375 px. SQLite only (the database
side is covered on both by test_reviewers.py and test_review_sso.py)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY

from ..fakes.oidc_provider import FakeOidcProvider
from ..live_server import free_port
from .browser_kit import check_page, serving

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHOTS = Path("/tmp/shots/signin")
GROUPS = {"compliance": ["compliance:read"], "policy-leads": ["compliance:read", "policy:approve"]}


@pytest.fixture
def served(make_app):
    with FakeOidcProvider() as idp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        app = make_app(SECRET_KEY="browser-test-secret", PUBLIC_BASE_URL=base, REVIEW_OIDC_ISSUER=idp.issuer,
                       REVIEW_OIDC_CLIENT_ID=idp.client_id, REVIEW_OIDC_CLIENT_SECRET=idp.client_secret,
                       REVIEW_OIDC_GROUP_SCOPES=json.dumps(GROUPS), REVIEW_OIDC_PROVIDER_NAME="Acme SSO")
        with app.extensions[EXTENSION_KEY].db.session() as s:
            admin = {"Authorization": f"Bearer {create_api_key(s, 'root', ['admin'])[1]}"}
        with serving(app, port):
            yield base, admin, idp


def _check(page, name: str) -> None:
    check_page(page, name, SHOTS)


@pytest.mark.parametrize("width", [1280, 375])
def test_invited_reviewer_signs_in_is_revoked_then_uses_single_sign_on(browser, served, width):
    base, admin, idp = served
    r = httpx.post(f"{base}/v1/reviewers/invitations", headers=admin, timeout=10,
                   json={"name": "Jane Roe", "scopes": ["compliance:read", "policy:approve"], "expires_in": "2h"})
    assert r.status_code == 201, r.text
    link = r.json()["link"]
    assert link.startswith(f"{base}/review/invite/")

    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)

    page.goto(link)
    assert page.locator("#invitee").inner_text() == "Jane Roe"
    assert "policy:approve" in page.locator("#invite-scopes").inner_text()
    _check(page, f"{width}-1-invitation")
    page.get_by_role("button", name="Accept and sign in").click()
    page.wait_for_url(f"{base}/review/")
    assert page.locator("#whoami").inner_text() == "Jane Roe"
    _check(page, f"{width}-2-signed-in")

    page.goto(link)  # the link worked once
    assert page.get_by_role("heading", level=1).inner_text() == "Invitation already used"
    _check(page, f"{width}-3-invitation-used")

    reviewer = httpx.get(f"{base}/v1/reviewers", headers=admin, timeout=10).json()["reviewers"][0]
    r = httpx.request("DELETE", f"{base}/v1/reviewers/{reviewer['id']}", headers=admin, timeout=10,
                      json={"reason": "moved team"})
    assert r.status_code == 200, r.text
    page.goto(f"{base}/review/diff")  # the next click after revocation
    assert "/review/login" in page.url
    _check(page, f"{width}-4-login-with-sso")

    idp.next_user = {"sub": "sso-user", "name": "Sam Sso", "groups": ["policy-leads"]}
    page.get_by_role("link", name="Sign in with Acme SSO").click()
    page.wait_for_url(f"{base}/review/diff")  # back where the click was going, through the provider
    assert page.locator("#whoami").inner_text() == "Sam Sso"
    assert idp.authorize_requests and idp.token_requests
    _check(page, f"{width}-5-sso-signed-in")

    stranger = context.browser.new_context(viewport={"width": width, "height": 800}).new_page()
    idp.next_user = {"sub": "someone-else", "name": "Mo Marketing", "groups": ["marketing"]}
    stranger.goto(f"{base}/review/sso")
    assert stranger.get_by_role("heading", level=1).inner_text() == "No access to the review pages"
    _check(stranger, f"{width}-6-no-mapped-group")
    context.close()
