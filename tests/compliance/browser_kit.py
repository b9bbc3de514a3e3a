"""What the review pages' browser tests share: the app served over HTTP (werkzeug in a thread,
as the review pages need no streams), signing in with an API key, and the check of a page
state: axe-core finds no violation, the page does not scroll sideways, and a screenshot is
saved for a person to look at."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server


@contextmanager
def serving(app, port: int = 0) -> Iterator[str]:
    """Yields the base URL while `app` is served on 127.0.0.1 (`port` 0: a free one)."""
    srv = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join(5)


def sign_in(page, base: str, key: str, path: str = "/review/") -> None:
    """Opens `path` signed out, signs in on the sign-in page with `key`, and is back at `path`."""
    page.goto(f"{base}{path}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}{path}")


def check_page(page, name: str, shots: Path, *, full_page: bool = True, part: str | None = None,
               without_scrollbar: bool = False, open_details: bool = False) -> None:
    """The page as it is: 0 axe-core violations; no sideways scroll (of the page, or only of
    the element `part` when given; measured inside the vertical scrollbar when
    `without_scrollbar`); then a screenshot `shots/name.png` (the whole page, or the part in
    view). With `open_details`, every <details> is opened first: what it hides must fit too."""
    from axe_playwright_python.sync_playwright import Axe

    # A page reached by a form post may be checked as soon as its text shows, before its
    # stylesheet has applied (seen under load: an unstyled page 511 px wide at 375 px).
    page.wait_for_load_state("load")
    if open_details:
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    if part is not None:
        right = page.evaluate("(sel) => document.querySelector(sel).getBoundingClientRect().right", part)
        assert right <= page.viewport_size["width"], f"{name}: {part} ends at {right} px"
    else:
        window = "document.documentElement.clientWidth" if without_scrollbar else "window.innerWidth"
        scroll, inner = page.evaluate(f"[document.documentElement.scrollWidth, {window}]")
        assert scroll <= inner, f"{name}: the page is {scroll} px wide in a {inner} px window (scrolls sideways)"
    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=full_page)
