"""What the browser tests of the in-app component share: a host page served on the test
server's origin (a Playwright route, so the page is exactly what the test says), axe-core
checks with a screenshot of each state, the state of the shadow DOM, and probes for the
server features of issue #21 that the client relies on (each test needing one is skipped,
naming the feature, on a server without it)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots/inapp-js"))
EL = "document.getElementById('inbox')"
ROOT = f"{EL}.shadowRoot"
ROWS = "#inbox li[data-id]"  # Playwright's CSS pierces the open shadow root
ONE_PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5d9a4a70000000049454e44ae426082")

HOST = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Host app</title>
  <script type="module" src="{module}"></script>
  <style>body {{ font: 15px system-ui, sans-serif; margin: 0; }}
    header {{ display: flex; justify-content: space-between; align-items: center; padding: 8px 16px;
             border-bottom: 1px solid #d0d7de; }}
    main {{ padding: 16px; }}</style>
</head>
<body>
  <header><strong>Host app</strong>
    <orchestrator-inbox id="inbox" {attrs}></orchestrator-inbox></header>
  <script>{early}</script>
  <main><h1>Host page</h1><p>Some content.</p><button id="elsewhere" type="button">Elsewhere</button></main>
  <script type="module">
    window.seen = [];
    const el = document.getElementById("inbox");
    for (const type of ["orchestrator-inbox-signed-out", "orchestrator-inbox-error", "orchestrator-inbox-click"]) {{
      el.addEventListener(type, (e) => window.seen.push({{ type, reason: e.detail?.reason ?? null,
        action: e.detail?.action ?? null, message: e.detail?.message ?? null }}));
    }}
    {script}
  </script>
</body>
</html>"""

PROVIDER = "el.tokenProvider = () => window.mintToken();"


def host(page, base: str, *, attrs: str = "", script: str = "", early: str = "", path: str = "/host.html",
         module: str = "/client/orchestrator-inbox.js") -> None:
    """Opens a page of the host app at `base + path` (same origin as the service). `script`
    runs as a module after the component's; `early` as a classic script right after the
    element, before the component's module has defined it."""
    html = HOST.format(attrs=attrs, script=script, early=early, module=module)
    page.route(base + path, lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"))
    page.route("https://images.example/**", lambda route: route.fulfill(body=ONE_PIXEL_PNG,
                                                                        content_type="image/png"))
    page.goto(base + path)


def check_accessible(page, state: str) -> None:
    """axe-core on the whole page (the component's open shadow root included): 0 violations.
    Saves a screenshot of the state for a person to look at."""
    from axe_playwright_python.sync_playwright import Axe

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(250)  # transitions and the live region's delayed text settle
    page.screenshot(path=str(SHOTS / f"{state}.png"))
    results = Axe().run(page)
    violations = results.response["violations"]
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert violations == [], f"axe-core in state {state!r}: {summary}"


def shadow(page, expression: str):
    """Evaluates `expression` with `root` bound to the component's shadow root."""
    return page.evaluate(f"(() => {{ const root = {ROOT}; return {expression}; }})()")


def badge(page) -> str:
    """The badge as shown: its text, or '' when hidden."""
    return shadow(page, "root.querySelector('.badge').hidden ? '' : root.querySelector('.badge').textContent")


def badge_becomes(page, expected: str, timeout: float = 5.0) -> str:
    """The badge once it shows `expected` (it follows the server's `unread` event, which may
    arrive a moment after the item it counts); the last text seen if it never does."""
    deadline = time.monotonic() + timeout
    while (shown := badge(page)) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    return shown


def events(page, type_: str) -> list[dict]:
    """The component's events of one type the host page received, oldest first."""
    return [e for e in page.evaluate("window.seen") if e["type"] == type_]


def wait_for(predicate, what: str, timeout: float = 10.0):
    """Polls until a state is reached (a state, not a speed: the bound is generous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Service:
    """The running service and an API client with an API key."""

    base: str
    api: httpx.Client

    def user(self, user_id: str = "u-1", **profile) -> str:
        body = {"email": "ada@example.com", "timezone": "UTC",
                "last_active_at": datetime.now(UTC).isoformat(), **profile}
        r = self.api.put(f"/v1/recipients/{user_id}", json=body)
        assert r.status_code in (200, 201), r.text
        return user_id

    def token(self, user_id: str = "u-1") -> dict:
        r = self.api.post(f"/v1/recipients/{user_id}/inapp-token")
        assert r.status_code == 201, r.text
        return r.json()

    def send(self, body: str, *, category: str = "social", title: str = "Ada", user_id: str = "u-1",
             **content) -> str:
        r = self.api.post("/v1/messages", json={"recipient": {"user_id": user_id}, "category": category,
                                                "content": {"title": title, "body": body, **content}})
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def inbox(self, token: str) -> dict:
        r = httpx.get(f"{self.base}/v1/inbox", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


@contextmanager
def serve(make_app, **env) -> Iterator[Service]:
    """The real service (workers included) with an API client holding an API key."""
    from tests.inapp.conftest import key_for
    from tests.live_server import running

    with running(make_app, **env) as (app, base, _), httpx.Client(base_url=base, headers=key_for(app),
                                                                   timeout=10) as api:
        yield Service(base, api)


# -- probes: which #21 server features this server has ---------------------------------------
def has_asset_cors(base: str, origin: str) -> bool:
    """The module answers CORS for an allowed origin (a page there can import it)."""
    r = httpx.get(f"{base}/client/orchestrator-inbox.js", headers={"Origin": origin}, timeout=10)
    return r.headers.get("access-control-allow-origin") in (origin, "*")


def has_token_codes(service: Service) -> bool:
    """A 401 tells a revoked token (`token_revoked`) from an expired one and from junk."""
    minted = service.token("probe-user")
    assert service.api.delete(f"/v1/inapp-tokens/{minted['token_id']}").status_code == 200
    r = httpx.get(f"{service.base}/v1/inbox", headers={"Authorization": f"Bearer {minted['token']}"}, timeout=10)
    return r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


def has_item_fields(service: Service, token: str, field: str) -> bool:
    """The inbox entries carry `field` (the #21 entry shape: archived_at for item events,
    requires_acknowledgement for the acknowledge action). Needs one item in the inbox."""
    items = service.inbox(token)["items"]
    assert items, "the probe needs an item in the inbox"
    return field in items[0]


def has_preference_labels(service: Service, token: str) -> bool:
    """The preferences answer has the channel headings and category labels."""
    r = httpx.get(f"{service.base}/v1/inbox/preferences", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return "channels" in r.json()


def readme_embed_snippet(readme: Path) -> str:
    """The HTML block of the README's in-app section, as a developer would copy it."""
    section = readme.read_text().split("## The in-app inbox in your web app", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```html\n(.*?)```", section, re.S)
    assert blocks, "the README's in-app section has no ```html block"
    return blocks[0]
