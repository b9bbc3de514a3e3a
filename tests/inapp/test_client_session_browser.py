"""The in-app component's session in a real browser (Debian's Chromium via Playwright)
against the real server: the token lifecycle through `tokenProvider` (refresh before expiry,
backoff on failure, refresh on a 401 `token_expired`), sign-out on revoke, two tabs of one
user converging, and the embed from a second origin exactly as the README shows it.
axe-core finds nothing in each state visited. SQLite only (the routes are covered on both
databases by test_inbox_api.py).

Tests that need a server feature of issue #21 not on this branch probe for it and skip,
naming it: token codes (`token_revoked`/`token_expired`), `item` events (entry field
`archived_at`), CORS on the client assets."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.inapp.browser_kit import (
    EL,
    PROVIDER,
    ROWS,
    badge,
    badge_becomes,
    check_accessible,
    events,
    has_asset_cors,
    has_item_fields,
    has_token_codes,
    host,
    readme_embed_snippet,
    serve,
    shadow,
    wait_for,
)
from tests.live_server import free_port

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
README = Path(__file__).resolve().parents[2] / "README.md"


def test_token_provider_is_called_before_expiry_with_backoff_and_the_stream_lives_on(browser, make_app):
    with serve(make_app, IN_APP_TOKEN_TTL_SECONDS="6") as svc:
        svc.user()
        calls = []  # (time asked, token answered, its expiry); the first call fails

        def mint_token():
            if not calls:
                calls.append((time.time(), None, None))
                raise RuntimeError("backend unavailable")
            minted = svc.token()
            calls.append((time.time(), minted["token"], datetime.fromisoformat(minted["expires_at"]).timestamp()))
            return {"token": minted["token"], "expires_at": minted["expires_at"]}

        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.expose_function("mintToken", mint_token)
        # Set by the page before the module defines the element (the property is kept).
        host(page, svc.base, early=f"const el = {EL}; {PROVIDER}")
        page.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)
        # The failed first call was reported (not swallowed), then retried after a backoff.
        assert [e["action"] for e in events(page, "orchestrator-inbox-error")] == ["token"]
        assert calls[1][0] - calls[0][0] >= 0.9
        first_token, first_expiry = calls[1][1], calls[1][2]
        assert page.evaluate(f"{EL}.inbox.token") == first_token

        # Refreshed before the first token expires (10% of its 6 s lifetime ahead). Waiting in
        # the browser, not in Python: Playwright answers mintToken only while it waits.
        page.wait_for_function(f"{EL}.inbox.token !== {first_token!r} && {EL}.inbox.connected", timeout=15000)
        assert calls[2][0] < first_expiry
        # Past the first token's expiry the stream (reopened with the new token) still delivers.
        page.wait_for_timeout((max(0.0, first_expiry - time.time()) + 0.5) * 1000)
        svc.send("After the refresh")
        page.locator(ROWS).filter(has_text="After the refresh").wait_for(state="attached", timeout=10000)
        assert badge_becomes(page, "1") == "1"
        assert events(page, "orchestrator-inbox-signed-out") == []
        shadow(page, "root.querySelector('.bell').click()")
        check_accessible(page, "token-refreshed-open")
        assert errors == []


def test_revoke_clears_list_and_badge_and_tells_the_app(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        minted = svc.token()
        page = browser.new_page()
        host(page, svc.base, attrs=f'token="{minted["token"]}" open')
        page.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)
        svc.send("Before the revoke")
        page.locator(ROWS).first.wait_for(timeout=10000)
        assert badge_becomes(page, "1") == "1"
        check_accessible(page, "revoke-before")

        assert svc.api.delete(f"/v1/inapp-tokens/{minted['token_id']}").status_code == 200
        page.wait_for_function(f"{EL}.inbox.signedOut !== null", timeout=10000)
        assert [e["reason"] for e in events(page, "orchestrator-inbox-signed-out")] == ["revoked"]
        assert page.locator(ROWS).count() == 0
        assert badge_becomes(page, "") == ""
        assert "signed out" in shadow(page, "root.querySelector('.notice').textContent")
        assert shadow(page, "root.querySelector('.read-all').hidden")
        check_accessible(page, "revoke-after")


def test_expired_token_is_refreshed_on_401_and_without_a_provider_signs_out(browser, make_app):
    with serve(make_app, IN_APP_TOKEN_TTL_SECONDS="3") as svc:
        svc.user()
        if not has_token_codes(svc):
            pytest.skip("needs the #21 server: 401 codes token_expired / token_revoked (inapp-server branch)")
        stale = svc.token()["token"]
        time.sleep(3.5)  # expired before the page opens
        fresh = []

        def mint_token():
            minted = svc.token()
            fresh.append(minted["token"])
            return minted

        # With a provider: the 401 token_expired is answered by a refresh, and the list loads.
        page = browser.new_page()
        page.expose_function("mintToken", mint_token)
        host(page, svc.base, attrs=f'token="{stale}"', script=PROVIDER)
        page.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)
        assert fresh and page.evaluate(f"{EL}.inbox.token") in fresh
        svc.send("Waiting for you")
        page.locator(ROWS).filter(has_text="Waiting for you").wait_for(state="attached", timeout=10000)
        assert events(page, "orchestrator-inbox-signed-out") == []

        # Without one: at expiry the stream says `expired`, the component clears and signs out.
        other = browser.new_page()
        host(other, svc.base, attrs=f'token="{svc.token()["token"]}"')
        other.locator(ROWS).first.wait_for(state="attached", timeout=10000)
        other.wait_for_function(f"{EL}.inbox.signedOut !== null", timeout=10000)
        assert [e["reason"] for e in events(other, "orchestrator-inbox-signed-out")] == ["expired"]
        assert other.locator(ROWS).count() == 0 and badge(other) == ""


def _two_tabs(browser, svc):
    token = svc.token()["token"]
    context = browser.new_context()
    tabs = [context.new_page(), context.new_page()]
    for tab in tabs:
        host(tab, svc.base, attrs=f'token="{token}" open')
        tab.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)
    return token, tabs


def test_two_tabs_badge_always_equals_the_servers_unread(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token, (a, b) = _two_tabs(browser, svc)
        svc.send("First")
        svc.send("Second")
        for tab in (a, b):
            tab.locator(ROWS).filter(has_text="Second").wait_for(timeout=10000)
            tab.locator("#inbox .badge").filter(has_text="2").wait_for(timeout=10000)

        # The tab that reads an item does not count it twice (once locally, once from the server).
        a.locator(ROWS).filter(has_text="First").click()
        wait_for(lambda: svc.inbox(token)["unread"] == 1, "the read to be recorded")
        for tab in (a, b):
            tab.locator("#inbox .badge").filter(has_text="1").wait_for(timeout=10000)
        a.wait_for_timeout(1000)  # a late second decrement would show by now
        assert badge(a) == badge(b) == "1" == str(svc.inbox(token)["unread"])

        shadow(a, "root.querySelector('.read-all').click()")
        for tab in (a, b):
            tab.wait_for_function(f"{EL}.shadowRoot.querySelector('.badge').hidden", timeout=10000)
        assert svc.inbox(token)["unread"] == 0
        check_accessible(a, "two-tabs-all-read")


def test_two_tabs_converge_on_read_and_archive(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token, (a, b) = _two_tabs(browser, svc)
        svc.send("Read me")
        svc.send("Archive me")
        for tab in (a, b):
            tab.locator(ROWS).filter(has_text="Archive me").wait_for(timeout=10000)
        if not has_item_fields(svc, token, "archived_at"):
            pytest.skip("needs the #21 server: stream `item` events (inapp-server branch)")

        a.locator(ROWS).filter(has_text="Read me").click()
        b.wait_for_function(f"""[...{EL}.shadowRoot.querySelectorAll('li.unread')]
                                .every(li => !li.textContent.includes('Read me'))""", timeout=10000)
        a.locator(ROWS).filter(has_text="Archive me").locator(".archive").click()
        for tab in (a, b):
            tab.locator(ROWS).filter(has_text="Archive me").wait_for(state="detached", timeout=10000)
            tab.wait_for_function(f"{EL}.shadowRoot.querySelector('.badge').hidden", timeout=10000)
        assert svc.inbox(token)["unread"] == 0
        assert b.locator(ROWS).count() == 1 and "Read me" in b.locator(ROWS).inner_text()
        check_accessible(b, "two-tabs-converged")


class _OnePage(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):  # noqa: N802 - the http.server interface
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


def test_embed_from_a_second_origin_exactly_as_the_readme_says(browser, make_app):
    port = free_port()
    app_origin = f"http://localhost:{port}"  # another origin than the service's 127.0.0.1
    with serve(make_app, INAPP_CORS_ORIGINS=app_origin) as svc:
        if not has_asset_cors(svc.base, app_origin):
            pytest.skip("needs the #21 server: CORS on /client/* assets (inapp-server branch)")
        svc.user()
        token = svc.token()["token"]
        manifest = httpx.get(f"{svc.base}/client/manifest.json").json()
        snippet = (readme_embed_snippet(README).replace("http://127.0.0.1:8000", svc.base).replace("ut_…", token)
                   .replace("/client/orchestrator-inbox.<hash>.js", manifest["url"])
                   .replace("sha384-…", manifest["integrity"]))
        assert manifest["url"] in snippet and manifest["integrity"] in snippet, snippet
        page_html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Product</title></head>'
                     f"<body><header>{snippet}</header><main><h1>Product</h1></main></body></html>")
        handler = type("Handler", (_OnePage,), {"html": page_html.encode()})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{app_origin}/")
            page.wait_for_function("document.querySelector('orchestrator-inbox')?.inbox?.connected === true",
                                   timeout=10000)
            svc.send("Across origins")
            page.locator("orchestrator-inbox li[data-id]").filter(has_text="Across origins").wait_for(state="attached",
                                                                                         timeout=10000)
            page.locator("orchestrator-inbox .bell").click()
            check_accessible(page, "second-origin-open")
            assert errors == []
        finally:
            server.shutdown()
            server.server_close()
