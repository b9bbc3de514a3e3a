"""RFC 8058 one-click unsubscribe: `/u/<token>`, the URL in an email's List-Unsubscribe.

- POST (what Gmail, Yahoo and others send, body ``List-Unsubscribe=One-Click``; also the
  button of the page below): turns the token's category off by email for its user. No API
  key, no session and no CSRF token: the RFC flow is a bare POST, and the encrypted token
  is the authority (it can only come from an email we sent). Idempotent.
- GET: a small page naming the category, with the button. A GET never changes anything:
  mail scanners open links.
"""

from __future__ import annotations

import logging

from flask import Blueprint, render_template_string

from ..app_state import state
from ..errors import ApiError, ErrorCode
from ..recipients import unsubscribe_flow
from .declare import Media, declare

log = logging.getLogger("orchestrator.unsubscribe")

bp = Blueprint("unsubscribe", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{{ title }}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
button{font:inherit;padding:.5rem 1rem}</style></head>
<body><h1>{{ title }}</h1><p>{{ text }}</p>
{% if button %}<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">{{ button }}</button></form>{% endif %}</body></html>"""


def _page(title: str, text: str, button: str | None = None, status: int = 200):
    html = render_template_string(_PAGE, title=title, text=text, button=button)
    return html, status, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                          "Referrer-Policy": "no-referrer"}


def _read(token: str) -> tuple[str, str]:
    found = state().unsubscribe.read(token)
    if found is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "token: not an unsubscribe link of this service", field="token")
    return found


@bp.get("/u/<token>")
@declare("One-click unsubscribe confirmation page (the List-Unsubscribe URL); changes nothing",
         responses={200: Media("text/html", "a page with an Unsubscribe button")}, errors=[404],
         tags=("unsubscribe",))
def confirm_page(token: str):
    _, category = _read(token)
    label = category.replace("_", " ")
    return _page("Unsubscribe", f"Stop receiving {label} emails? Other messages are not affected.",
                 button=f"Unsubscribe from {label} emails")


@bp.post("/u/<token>")
@declare("RFC 8058 one-click unsubscribe: the token's category off by email for its user (no API key: the "
         "encrypted token is the authority)",
         responses={200: Media("text/html", "unsubscribed"), 409: Media("text/html", "the category is locked")},
         errors=[404], tags=("unsubscribe",))
def one_click(token: str):
    st = state()
    user_id, category = _read(token)
    outcome = unsubscribe_flow.unsubscribe(st.db, st.policies.active(), user_id, category)
    label = category.replace("_", " ")
    if outcome == unsubscribe_flow.UnsubscribeOutcome.LOCKED:
        return _page("Cannot unsubscribe", f"{label.capitalize()} emails cannot be turned off.", status=409)
    return _page("Unsubscribed", f"You will no longer receive {label} emails.")
