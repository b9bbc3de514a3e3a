"""Find messages on the review pages: by user id, category, channel sent on, status and a
range of UTC days, newest first, in pages with the same cursors as GET /v1/messages (the same
query, lifecycle/messages.list_query). Each row links to the message's trace.

Every filter is checked here and refused with a 422 page naming the field (NUL bytes, over-long
text, unknown category / channel / status, a day that is not a date or outside the years the
service stores, 'from' after 'to', a cursor not from this list): never a database error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from flask import render_template, request

from policies.constants import REQUIRED_CATEGORIES
from providers.base import Channel

from ..api.pagination import Pager
from ..api.recipients import check_user_id
from ..app_state import state
from ..domain.statuses import MessageStatus, Scope
from ..errors import ApiError, DomainError, ErrorCode, http_status
from ..lifecycle import attempts
from ..lifecycle import messages as message_rows
from ..sending import message_view
from . import forms
from .charts import CHANNEL_LABELS
from .session import bp, page

PAGE_SIZE = 50
SEARCH_PAGER = Pager(message_rows.LIST_ORDER, (datetime, str), default_limit=PAGE_SIZE,
                     max_limit=200)
FIELDS = ("user_id", "category", "channel", "status", "from", "to")
CATEGORIES = tuple(sorted(REQUIRED_CATEGORIES))


@dataclass
class Row:
    id: str
    created_at: datetime
    user_id: str
    category: str
    title: str
    channels: list[str]
    status: str


def _choice(name: str, allowed: tuple[str, ...], what: str) -> str | None:
    value = forms.arg_text(name, max_chars=64)
    if value and value not in allowed:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"{name}: {value[:40]!r} is not a {what}; one of {', '.join(allowed)}", field=name)
    return value or None



def filters_from_request() -> message_rows.ListFilters:
    """The page's query string as the list filters (every message: the page needs compliance:read)."""
    user_id = forms.arg_text("user_id")
    category = _choice("category", CATEGORIES, "category")
    channel = _choice("channel", tuple(Channel), "channel")
    status = _choice("status", tuple(MessageStatus), "message status")
    since, until = forms.arg_day("from"), forms.arg_day("to")
    if since and until and since > until:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "from: must not be after 'to'", field="from")
    return message_rows.ListFilters(
        user_id=check_user_id(user_id) if user_id else None, category=category, channel=channel,
        statuses=(status,) if status else (),
        created_from=datetime.combine(since, time(0), tzinfo=UTC) if since else None,
        # 'to' is a whole day, included: before the next midnight (MAX_YEAR keeps it from overflowing).
        created_to=datetime.combine(until + timedelta(days=1), time(0), tzinfo=UTC) if until else None)


def search(filters: message_rows.ListFilters) -> tuple[list[Row], str | None]:
    """One page of matching messages, newest first, and the next page's cursor."""
    paging = SEARCH_PAGER.from_request()
    with state().db.session() as s:
        found = message_rows.list_rows(s, filters, lambda query: SEARCH_PAGER.apply(query, paging))
        found, next_cursor = SEARCH_PAGER.finish(found, paging, lambda r: (r.created_at, r.id))
        ids = [r.id for r in found]
        titles, used = message_view.titles(s, ids), attempts.channels_used(s, ids)
    rows = [Row(r.id, r.created_at, r.user_id, r.category, titles.get(r.id, ""), used.get(r.id, []), r.status)
            for r in found]
    return rows, next_cursor


def _shown_values() -> dict[str, str]:
    """The form's values as they may be shown back (cut, without NUL)."""
    return {name: forms.redisplay_arg(name, max_chars=200) for name in FIELDS}


@bp.get("/messages/search")
@page(Scope.COMPLIANCE_READ)
def message_search():
    values = _shown_values()
    rows, next_cursor, error = [], None, None
    try:
        rows, next_cursor = search(filters_from_request())
    except DomainError as exc:
        error = exc
    # The filters (and a page size asked for) carried into the first- and next-page links.
    first_args = {k: v for k, v in values.items() if v}
    if forms.usable(request.args.get("limit", ""), max_chars=7) and request.args.get("limit"):
        first_args["limit"] = request.args["limit"]
    next_args = first_args | {"cursor": next_cursor} if next_cursor else None
    return render_template(
        "review/message_search.html", values=values, rows=rows, first_args=first_args, next_args=next_args,
        error=error,
        paged=bool(request.args.get("cursor")), categories=CATEGORIES, channels=tuple(Channel),
        labels=CHANNEL_LABELS, statuses=tuple(MessageStatus), page_size=PAGE_SIZE,
    ), http_status(error) if error else 200
