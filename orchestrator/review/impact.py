"""The impact of a draft or approved policy version against the active one, in the review
pages: a summary on the policy's page (next to the approval and activation forms) and a full
report at /review/policies/<version>/impact?days=N, with example messages linking to their
trace. Figures come from compliance.impact_runs (background runs with progress for large
histories, cached per version text, active version and days).

App config: ``REVIEW_IMPACT_INLINE_MAX`` (default 5000): histories up to this many messages
are computed while the page loads; larger ones in the background while the page polls
``.../impact/progress``."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, redirect, render_template, request, url_for

import policies

from ..app_state import state
from ..compliance import policy_versions
from ..compliance.impact_runs import ImpactRun, ImpactRuns
from ..compliance.plan_changes import CHANNEL_LABELS, KIND_LABELS, MODE_LABELS
from ..domain.statuses import ImpactRunStatus, PolicyStatus, Scope
from ..errors import ApiError, DomainError, ErrorCode, error_body, http_status
from ..storage.models import PolicyVersion
from . import forms
from .session import answers_json, bp, holds, not_found, page
from .views import POLICY_READERS

DEFAULT_DAYS = 7
MAX_DAYS = 366
EXTENSION = "review_impact_runs"
COMPARED = (PolicyStatus.DRAFT, PolicyStatus.APPROVED)


def _runs() -> ImpactRuns:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    runs = app.extensions.get(EXTENSION)
    if runs is None:
        st = state()
        runs = app.extensions.setdefault(EXTENSION, ImpactRuns(
            st.db, lambda: st.clock(), inline_max=int(app.config.get("REVIEW_IMPACT_INLINE_MAX", 5000))))
    return runs


def parse_days(raw: str | None) -> int:
    """The `days` field: a whole number from 1 to MAX_DAYS (ApiError 422 naming the field)."""
    if raw is None:
        return DEFAULT_DAYS
    text = forms.text({"days": raw}, "days", max_chars=20)  # type: ignore[arg-type]
    if not text:
        return DEFAULT_DAYS
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"days: a whole number of days from 1 to {MAX_DAYS}, not {text[:20]!r}", field="days")
    return int(text)


def _impact(row: PolicyVersion, days: int) -> tuple[ImpactRun | None, str | None]:
    """The run for `row` against the active version (started if needed), or why there is none."""
    st = state()
    active = st.policies.active()
    if row.version == active.version:
        return None, "This is the active version: there is nothing to compare it with."
    if row.status not in COMPARED:
        return None, f"Policy {row.version} is {row.status}; the impact is shown for drafts and approved versions."
    policy = policy_versions.compile_row(row, st.policies)
    return _runs().get_or_start(policy, row.document, active, days), None


@bp.app_template_global("impact_summary")
def impact_summary(version: str) -> dict[str, Any]:
    """For the policy page's impact panel: the default period's run (started if needed)."""
    with state().db.session() as s:
        row = policy_versions.find_version(s, version)
        if row is None:
            return {"run": None, "reason": f"No policy version '{version}'.", "days": DEFAULT_DAYS}
        try:
            run, reason = _impact(row, DEFAULT_DAYS)
        except DomainError as exc:
            run, reason = None, exc.message
        except policies.PolicyError as exc:  # a stored version this engine no longer compiles
            run, reason = None, f"Policy {version} does not compile: {'; '.join(exc.errors)[:500]}"
    return {"run": run, "reason": reason, "days": DEFAULT_DAYS}

# The figures' macros (impact_figures.html) are imported without the page's context: what they
# read besides the run comes from these globals.
def _register_globals(setup_state) -> None:
    setup_state.app.jinja_env.globals.update(
        impact_statuses=ImpactRunStatus, impact_kind_labels=KIND_LABELS, impact_channel_labels=CHANNEL_LABELS)


bp.record_once(_register_globals)


@bp.get("/policies/<version>/impact")
@page(*POLICY_READERS)
def impact(version: str):
    try:
        days = parse_days(request.args.get("days"))
    except DomainError as exc:
        return render_template("review/error.html", title="Impact", message=exc.message), http_status(exc)
    with state().db.session() as s:
        row = policy_versions.find_version(s, version)
        if row is None:
            return not_found(f"No policy version '{version}'.")
        status = row.status
        run, reason = _impact(row, days)
    return render_template("review/impact.html", version=version, status=status, days=days, reason=reason,
                           can_approve=holds(g.review_key, Scope.POLICY_APPROVE), run=run,
                           max_days=MAX_DAYS, mode_labels=MODE_LABELS)


@bp.get("/policies/<version>/impact/progress")
@answers_json
@page(*POLICY_READERS)
def impact_progress(version: str):
    """JSON for the page's progress poll."""
    try:
        days = parse_days(request.args.get("days"))
    except DomainError as exc:
        return jsonify(error_body(exc)), http_status(exc)  # the JSON API's error shape
    st = state()
    with st.db.session() as s:
        row = policy_versions.find_version(s, version)
        source = row.document if row is not None else ""
    run = _runs().find(version, source, st.policies.active().version, days) if row is not None else None
    if run is None:
        return jsonify(ApiError(404, ErrorCode.NOT_FOUND, "no impact computation for this version and period",
                                field="version").to_dict()), 404
    return jsonify(run.progress_dict())



@bp.post("/policies/<version>/impact")
@page(*POLICY_READERS)
def impact_recompute(version: str):
    """Forget the cached figures and compute them again."""
    try:
        days = parse_days(request.form.get("days"))
    except DomainError as exc:
        return render_template("review/error.html", title="Impact", message=exc.message), http_status(exc)
    st = state()
    with st.db.session() as s:
        row = policy_versions.find_version(s, version)
        if row is None:
            return not_found(f"No policy version '{version}'.")
        run = _runs().find(version, row.document, st.policies.active().version, days)
    if run is not None and run.status in (ImpactRunStatus.DONE, ImpactRunStatus.FAILED):
        _runs().forget(run)
    return redirect(url_for("review.impact", version=version, days=days))
