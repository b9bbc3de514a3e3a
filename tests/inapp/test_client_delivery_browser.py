"""The module's delivery in a real browser (Debian's Chromium via Playwright): a product page
on another origin loads the versioned URL with the manifest's SRI integrity, gzipped, and
the component connects; a page on an origin INAPP_CORS_ORIGINS does not list, or a
tampered integrity, gets no module at all. SQLite only (the routes are covered on both
databases by test_client_delivery.py)."""

from __future__ import annotations

import http.server
import threading
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.inapp.conftest import key_for
from tests.live_server import free_port, running

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHOTS = Path("/tmp/shots/inapp-server")

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Product</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script type="module" src="{src}" integrity="{integrity}" crossorigin="anonymous"></script></head>
<body><header><orchestrator-inbox id="inbox" base-url="{base}" token="{token}"></orchestrator-inbox></header>
<main><h1>Product</h1></main></body></html>"""


@pytest.fixture
def product_origin():
    return f"http://localhost:{free_port()}"  # another origin than the service's 127.0.0.1


@pytest.fixture
def service(make_app, product_origin):
    with running(make_app, worker=True, INAPP_CORS_ORIGINS=product_origin) as (app, base, _):
        auth = key_for(app)
        httpx.put(f"{base}/v1/recipients/u-1", headers=auth, json={"email": "a@example.com"}, timeout=10)
        token = httpx.post(f"{base}/v1/recipients/u-1/inapp-token", headers=auth, timeout=10).json()["token"]
        manifest = httpx.get(f"{base}/client/manifest.json", timeout=10).json()
        yield base, token, manifest


@contextmanager
def product_page_server(origin: str, html: str):
    """A real server for the product's page (a page fulfilled by Playwright has no address,
    and Chromium then refuses its requests to the loopback service)."""

    class OnePage(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(origin.rsplit(":", 1)[1])), OnePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def open_product_page(browser, origin, base, token, manifest, *, integrity=None, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 800})
    html = PAGE.format(src=base + manifest["url"], integrity=integrity or manifest["integrity"], base=base,
                       token=token)
    console = []
    page.on("console", lambda msg: console.append(msg.text))
    module = []
    page.on("response", lambda r: module.append(r) if r.url == base + manifest["url"] else None)
    with product_page_server(origin, html):
        page.goto(f"{origin}/", wait_until="load")
    return page, console, module


def test_a_page_on_an_allowed_origin_loads_the_versioned_module_with_sri(browser, service, product_origin):
    base, token, manifest = service
    for width in (1280, 375):
        page, console, module = open_product_page(browser, product_origin, base, token, manifest, width=width)
        try:
            page.wait_for_function("document.getElementById('inbox').inbox?.connected === true", timeout=10000)
        except Exception:
            raise AssertionError(console) from None
        assert page.evaluate("!!customElements.get('orchestrator-inbox')")
        (response,) = module
        headers = response.all_headers()
        assert response.status == 200
        assert headers["access-control-allow-origin"] == product_origin
        assert headers["content-encoding"] == "gzip"
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"cross-origin-versioned-{width}.png"))
        page.close()


def test_an_origin_not_listed_gets_no_module(browser, service):
    base, token, manifest = service
    stranger = f"http://localhost:{free_port()}"
    page, console, _ = open_product_page(browser, stranger, base, token, manifest)
    page.wait_for_timeout(500)
    assert not page.evaluate("!!customElements.get('orchestrator-inbox')")
    assert any("CORS" in line or "Access-Control-Allow-Origin" in line for line in console), console


def test_a_tampered_integrity_is_refused_by_the_browser(browser, service, product_origin):
    base, token, manifest = service
    page, console, _ = open_product_page(browser, product_origin, base, token, manifest,
                                         integrity="sha384-" + "A" * 64)
    page.wait_for_timeout(500)
    assert not page.evaluate("!!customElements.get('orchestrator-inbox')")
    assert any("integrity" in line.lower() for line in console), console
