"""The public acknowledgement page of a notice that requires read confirmation (legal
notices): the signed link in its email (sending/ack_links) leads here.

GET shows the notice's title and a confirm button and changes nothing (mail scanners and
link previews fetch links); POST records the acknowledgement. No cookie or session is
involved: the signed token in the URL is the only credential, so a forged cross-site POST
would need the link itself (no CSRF exposure); the page may not be framed (clickjacking)."""

from __future__ import annotations

from flask import Blueprint, Response, render_template_string

from providers.base import Engagement, Receipt

from ..app_state import state
from ..domain.statuses import AckChannel
from ..errors import ApiError, ErrorCode
from ..lifecycle import attempts
from ..lifecycle.receipts import ingest
from ..sending import confirmations
from ..sending.ack_links import PATH, AckLinks, LinkExpired, LinkInvalid
from .declare import Media, declare

bp = Blueprint("acknowledge", __name__)

ACK_LINK_SOURCE = "ack_link"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{ title or "Notice" }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
button{font-size:1rem;padding:.6rem 1.2rem}</style></head><body>
<h1>{{ title or "Notice" }}</h1>
{% if acknowledged_at %}
<p>Thank you. Your confirmation that you have read this notice was recorded on
<time datetime="{{ acknowledged_at.isoformat() }}">{{ acknowledged_at.strftime("%Y-%m-%d %H:%M UTC") }}</time>.</p>
{% else %}
<p>{{ body }}</p>
<form method="post" action="{{ action }}"><button type="submit">I have read this notice</button></form>
{% endif %}
</body></html>"""


def _attempt_for(token: str):
    st = state()
    try:
        attempt_id = AckLinks.for_state(st).read(token)
    except LinkExpired:
        raise ApiError(410, ErrorCode.LINK_EXPIRED, "token: this acknowledgement link has expired; "
                       "the notice can still be acknowledged in the app's inbox", field="token") from None
    except LinkInvalid:
        raise ApiError(404, ErrorCode.NOT_FOUND, "token: not an acknowledgement link of this service",
                       field="token") from None
    with st.db.session() as session:
        row = attempts.acknowledgement_target(session, attempt_id)
    if row is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "token: the notice no longer exists", field="token")
    return row


def _page(token: str, row, acknowledged_at) -> Response:
    content = row.content or {}
    html = render_template_string(_PAGE, title=content.get("title", ""), body=content.get("body", ""),
                                  acknowledged_at=acknowledged_at, action=f"{PATH}{token}")
    return Response(html, mimetype="text/html", headers={
        "X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'; default-src 'none'; "
        "style-src 'unsafe-inline'; form-action 'self'", "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer"})


@bp.get(f"{PATH}<token>")
@declare("A legal notice's acknowledgement page (the signed link in its email); records nothing",
         responses={200: Media("text/html", "the notice's title and a confirm button")}, errors=[404, 410],
         tags=("legal notices",))
def show(token: str):
    row = _attempt_for(token)
    return _page(token, row, row.acknowledged_at)


@bp.post(f"{PATH}<token>")
@declare("Acknowledge the notice (the page's confirm button): who, when and via email link are recorded",
         responses={200: Media("text/html", "the acknowledgement, confirmed")}, errors=[404, 410],
         tags=("legal notices",))
def confirm(token: str):
    st = state()
    row = _attempt_for(token)
    now = st.clock()
    receipt = Receipt(provider="ack_link", provider_message_id=row.id, status=None,
                      event_id=f"{row.id}:acknowledged", occurred_at=now, raw={"event": "acknowledged"},
                      engagement=Engagement.ACKNOWLEDGED, message_id=row.message_id)
    with st.db.session() as session:
        ingest(session, ACK_LINK_SOURCE, receipt, now, attempt_id=row.id)
        confirmations.acknowledge(session, row.message_id, row.id, row.user_id, AckChannel.EMAIL_LINK, None, now)
    return _page(token, row, row.acknowledged_at or now)

