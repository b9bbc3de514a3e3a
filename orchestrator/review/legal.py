"""The legal notices page: every notice that requires delivery and read confirmation, with
its user, title and every stage of its record (sent, delivered, opened, reminded,
acknowledged, escalated: when and through which channel), or why the policy could not
deliver it at all (undeliverable). Paged with the API's keyset cursors, newest first; the
CSV export streams every page."""

from __future__ import annotations

from datetime import datetime

from flask import Response, render_template, request, stream_with_context

from ..api.pagination import Pager, PageRequest, limit_arg
from ..app_state import state
from ..domain.statuses import ConfirmationStage, Scope
from ..errors import ApiError, DomainError, ErrorCode, http_status
from ..sending import confirmations
from .session import bp, page

PAGE_SIZE = 500
CSV_PAGE = 1000
PAGER = Pager(confirmations.NOTICE_ORDER, (datetime, str), default_limit=PAGE_SIZE, max_limit=PAGE_SIZE)


def _stage_arg() -> str | None:
    raw = request.args.get("stage", "").strip()
    if raw and raw not in ConfirmationStage._value2member_map_:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"stage: one of {', '.join(s.value for s in ConfirmationStage)}", field="stage")
    return raw or None


def _page_request() -> PageRequest:
    cursor = request.args.get("cursor") or None
    return PageRequest(limit_arg(PAGE_SIZE, PAGE_SIZE), PAGER.decode(cursor) if cursor else None)


@bp.get("/legal")
@page(Scope.COMPLIANCE_READ)
def legal():
    """Notices that require confirmation, newest first, a page at a time."""
    try:
        stage = _stage_arg()
        wanted = _page_request()
    except DomainError as exc:
        return render_template("review/error.html", title="Legal notices", message=exc.message), http_status(exc)
    with state().db.session() as s:
        rows = confirmations.notices(s, wanted.limit + 1, stage, wanted.after)
    rows, next_cursor = PAGER.finish(rows, wanted, confirmations.notice_key)
    return render_template("review/legal.html", rows=rows, stage=stage, stages=list(ConfirmationStage),
                           limit=wanted.limit, next_cursor=next_cursor, paged=wanted.after is not None)


@bp.get("/legal.csv")
@page(Scope.COMPLIANCE_READ)
def legal_csv():
    """Every notice (at the stage asked), streamed page by page."""
    try:
        stage = _stage_arg()
    except DomainError as exc:
        return render_template("review/error.html", title="Cannot export", message=exc.message), http_status(exc)
    db = state().db

    def chunks():
        yield confirmations.csv_header()
        after = None
        while True:
            with db.session() as s:
                rows = confirmations.notices(s, CSV_PAGE, stage, after)
            if not rows:
                return
            yield confirmations.to_csv(rows, header=False)
            if len(rows) < CSV_PAGE:
                return
            after = confirmations.notice_key(rows[-1])

    return Response(stream_with_context(chunks()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="legal-notices.csv"'})
