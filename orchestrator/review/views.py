"""The review pages. Thin: every answer comes from the compliance services
(policy_versions, decision_replay, decisions_export, message_view) that the JSON API uses too,
so a page and the API refuse the same things with the same messages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Response, flash, g, redirect, render_template, stream_with_context, url_for

from ..app_state import state
from ..compliance import decisions_export, policy_versions
from ..domain.statuses import PolicyStatus, Scope
from ..errors import ApiError, DomainError, ErrorCode, http_status
from ..lifecycle import messages as message_rows
from ..sending import decision_replay, message_view
from . import charts, forms, policy_reading
from .session import bp, holds, not_found, page

MAX_REASON_CHARS = 2000
# As on the JSON API: anyone in the policy workflow may read policies; the message pages and
# the export need compliance:read.
POLICY_READERS = (Scope.COMPLIANCE_READ, Scope.POLICY_WRITE, Scope.POLICY_APPROVE)
MIX_DAYS = 7


@bp.app_template_filter("when")
def _when(value: str | datetime | None) -> str:
    """An ISO timestamp as a reviewer reads it: '2026-03-10 12:00:05 UTC'."""
    if not value:
        return "—"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _today() -> date:
    return state().clock().astimezone(UTC).date()


@bp.get("/")
@page(*POLICY_READERS)
def index():
    with state().db.session() as s:
        versions = [policy_versions.version_dict(r) for r in policy_versions.list_versions(s)]
    active = next((v["version"] for v in versions if v["status"] == PolicyStatus.ACTIVE), None)
    today = _today()
    return render_template("review/index.html", versions=versions, active=active,
                           csv_from=(today - timedelta(days=MIX_DAYS - 1)).isoformat(), csv_to=today.isoformat())


# -- one policy -------------------------------------------------------------------------------
def _policy_page(version: str, *, error: ApiError | None = None, reason: str = ""):
    st = state()
    with st.db.session() as s:
        row = policy_versions.find_version(s, version)
        if row is None:
            return not_found(f"No policy version '{version}'.")
        detail = policy_versions.detail_dict(row)
        active = policy_versions.active_version(s)
        try:
            compiled = policy_versions.compile_row(row, st.policies)
            reading, flow_error = policy_reading.reading_table(compiled, _today()), None
        except Exception as exc:  # noqa: BLE001 — a page must still show the rules
            reading, flow_error = [], f"the channel table could not be computed: {exc}"
    thresholds = detail.get("thresholds") or {}
    words = {r["id"]: (policy_reading.condition_words(r.get("when"), thresholds),
                       policy_reading.effect_words(r.get("then"))) for r in detail["rules"]}
    key = g.review_key
    status = http_status(error) if error else 200
    return render_template(
        "review/policy.html", p=detail, active=active.version if active else None, reading=reading,
        rule_words=words, flow_error=flow_error, error=error, reason=reason,
        can_approve=holds(key, Scope.POLICY_APPROVE),
    ), status


@bp.get("/policies/<version>")
@page(*POLICY_READERS)
def policy(version: str):
    return _policy_page(version)


def _reason() -> str:
    reason = forms.form_text("reason", max_chars=MAX_REASON_CHARS)
    if not reason:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "reason: required, say why", field="reason")
    return reason


@bp.post("/policies/<version>/approve")
@page(Scope.POLICY_APPROVE)
def approve(version: str):
    st = state()
    try:
        reason = _reason()
        with st.db.session() as s:
            policy_versions.approve(s, version, g.review_key.name, reason, st.clock())
    except DomainError as exc:
        return _policy_page(version, error=exc, reason=forms.redisplay("reason", max_chars=MAX_REASON_CHARS))
    flash(f"Policy {version} approved by {g.review_key.name}.")
    return redirect(url_for("review.policy", version=version))


@bp.post("/policies/<version>/activate")
@page(Scope.POLICY_APPROVE)
def activate(version: str):
    st = state()
    try:
        reason = _reason()
        policy_versions.activate_and_refresh(st.db, st.policies, version, g.review_key.name, reason, st.clock())
    except DomainError as exc:
        return _policy_page(version, error=exc, reason=forms.redisplay("reason", max_chars=MAX_REASON_CHARS))
    flash(f"Policy {version} is now active; new messages use it.")
    return redirect(url_for("review.policy", version=version))


# -- diff -------------------------------------------------------------------------------------
@bp.get("/diff")
@page(*POLICY_READERS)
def diff():
    with state().db.session() as s:
        versions = [r.version for r in policy_versions.list_versions(s)]
        changes, error, a, b = None, None, "", ""
        try:
            a, b = forms.arg_text("from"), forms.arg_text("to")
            if a and b:
                changes = policy_versions.diff(s, a, b)
        except DomainError as exc:
            error = exc
    return render_template("review/diff.html", versions=versions, a=a, b=b, changes=changes,
                           error=error), http_status(error) if error else 200


# -- messages ---------------------------------------------------------------------------------
@bp.get("/messages")
@page(Scope.COMPLIANCE_READ)
def message_lookup():
    try:
        message_id = forms.arg_text("id")
    except DomainError as exc:
        return render_template("review/error.html", title="Message lookup", message=exc.message), http_status(exc)
    if message_id:
        return redirect(url_for("review.message", message_id=message_id))
    return render_template("review/message_lookup.html")


def _timeline(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Accepted, then every attempt's send and every receipt, in time order, with the offset
    from acceptance."""
    created = datetime.fromisoformat(view["created_at"])
    events = [{"at": created, "what": "accepted", "detail": f"policy {view['decision']['policy_version']}"}]
    channel_of = {a["id"]: a["channel"] for a in view["attempts"]}
    for a in view["attempts"]:
        if a["sent_at"]:
            events.append({"at": datetime.fromisoformat(a["sent_at"]), "what": f"{a['channel']} sent",
                           "detail": f"via {a['provider'] or '—'}{' (sandbox)' if a['sandboxed'] else ''}"})
    for r in view["receipts"]:
        at = r["occurred_at"] or r["received_at"]
        what = r["status"] or r["engagement"] or r["outcome"]
        events.append({"at": datetime.fromisoformat(at) if at else created,
                       "what": f"{channel_of.get(r['attempt_id'], '?')} {what}",
                       "detail": f"{r['source']}{', error ' + r['error_code'] if r['error_code'] else ''}"
                                 f" ({r['outcome']})"})
    events.sort(key=lambda e: e["at"])
    for e in events:
        e["offset"] = f"+{(e['at'] - created).total_seconds():.1f} s"
    return events


@bp.get("/messages/<message_id>")
@page(Scope.COMPLIANCE_READ)
def message(message_id: str):
    st = state()
    with st.db.session() as s:
        row = message_rows.load_with_attempts(s, message_id)
        if row is None:
            return not_found(f"No message with id '{message_id}'.")
        view = message_view.message_dict(s, row)
        route = row.route or {}
        explained = decision_replay.explain_message(s, st.policies, message_id)
    return render_template("review/message.html", m=view, route=route, explained=explained,
                           timeline=_timeline(view))


# -- channel mix and export -------------------------------------------------------------------
@bp.get("/mix")
@page(Scope.COMPLIANCE_READ)
def mix():
    st = state()
    data = charts.channel_mix(st.db, st.clock(), MIX_DAYS)
    return render_template("review/mix.html", mix=data, svg=charts.mix_svg(data), channels=charts.CHANNELS,
                           labels=charts.CHANNEL_LABELS, days=MIX_DAYS,
                           csv_from=data.days[0].isoformat(), csv_to=data.days[-1].isoformat())


@bp.get("/decisions.csv")
@page(Scope.COMPLIANCE_READ)
def decisions_csv():
    """Whole UTC days, both ends included."""
    today = _today()
    try:
        until_day = forms.arg_day("to") or today
        since_day = forms.arg_day("from") or until_day - timedelta(days=MIX_DAYS - 1)
        if since_day > until_day:
            raise ApiError(422, ErrorCode.VALIDATION_ERROR, "from: must not be after 'to'", field="from")
    except DomainError as exc:
        return render_template("review/error.html", title="Cannot export", message=exc.message), http_status(exc)
    since = datetime.combine(since_day, time(0), tzinfo=UTC)
    until = datetime.combine(until_day, time.max, tzinfo=UTC)
    chunks = decisions_export.iter_csv(state().db, since, until)
    filename = f"decisions-{since_day.isoformat()}-{until_day.isoformat()}.csv"
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
