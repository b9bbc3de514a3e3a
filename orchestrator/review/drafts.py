"""Drafting a policy in the browser (policy:write): start a draft from any version, edit its
thresholds in a form and its rules as text with live lint, save with a reason. Every save runs
the golden scenarios and shows the differences from the active version in words; the policy's
audit log (who drafted, edited, approved, with which reason) shows on its page and here.

The lifecycle rules stay in compliance.policy_versions (create_draft, edit_draft, four eyes on
approve); this module turns form fields into a document and problems into page errors."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

import policies
from policies import yaml_text

from ..app_state import state
from ..audit import log as audit
from ..compliance import policy_versions
from ..domain.statuses import PolicyStatus, Scope
from ..errors import ApiError, DomainError, ErrorCode
from ..storage.models import AuditEntry
from . import diff_words, draft_text, forms
from .draft_text import Problem
from .session import bp, holds, not_found, page

MAX_REASON_CHARS = 2000
MAX_RULES_CHARS = policy_versions.MAX_DOCUMENT_CHARS
HISTORY_LIMIT = 200
# A form carries a whole policy (up to MAX_DOCUMENT_CHARS characters, each up to 3 UTF-8 bytes,
# each byte up to 3 when URL-encoded): more than the app's MAX_BODY_BYTES for JSON requests.
DRAFT_FORM_BYTES = 2 * 1024 * 1024
DRAFT_FIELD_BYTES = 1024 * 1024
DRAFT_ENDPOINTS = frozenset({"review.save_draft", "review.lint_draft"})
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

# The thresholds a compliance reviewer tunes, as (name, label, hint); quiet hours apart.
SETTINGS = (
    ("in_app_cap_per_day", "In-app messages per day", "Over this many, no more pop-ups that day (critical exempt)."),
    ("in_app_cap_per_week", "In-app messages per week", "Over this many in an ISO week, no more pop-ups."),
    ("sms_max_segments", "Longest SMS, in segments", "A text needing more segments goes by another channel."),
    ("presence_window_seconds", "Online window, in seconds", "A heartbeat younger than this counts as online."),
    ("dormant_after_days", "Dormant after, in days", "Not seen for longer: no in-app; email or push instead."),
    ("churned_after_days", "Churned after, in days", "Must be more than the dormant days."),
)
ACTION_WORDS = {
    audit.AuditAction.POLICY_SEED: "seeded", audit.AuditAction.POLICY_DRAFT: "drafted",
    audit.AuditAction.POLICY_EDIT: "edited", audit.AuditAction.POLICY_APPROVE: "approved",
    audit.AuditAction.POLICY_ACTIVATE: "activated", audit.AuditAction.POLICY_RETIRE: "retired",
}


@bp.url_value_preprocessor
def _draft_form_caps(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Runs before the CSRF check reads the form: the editor's routes take a whole policy."""
    if endpoint in DRAFT_ENDPOINTS:
        request.max_content_length = DRAFT_FORM_BYTES
        request.max_form_memory_size = DRAFT_FIELD_BYTES


@bp.errorhandler(413)
def _too_large(exc):
    limit = request.max_content_length
    return render_template("review/error.html", title="Form too large",
                           message=f"body: the form is larger than {limit} bytes; the rules text may hold at most "
                                   f"{MAX_RULES_CHARS} characters."), 413


# -- the policy's audit log, on its page and the editor ---------------------------------------
@bp.app_template_global()
def policy_history(version: str) -> list[dict[str, Any]]:
    """The audit entries of one policy version, oldest first: when, who, action, reason, what."""
    query = audit.entries_query(subject=f"policy:{version}").order_by(AuditEntry.id)
    with state().db.session() as s:
        entries = [audit.entry_dict(e) for e in s.scalars(query.limit(HISTORY_LIMIT))]
    for e in entries:
        detail = e["detail"] if isinstance(e["detail"], dict) else {}
        e["words"] = ACTION_WORDS.get(e["action"], e["action"])
        e["what"] = detail.get("changes") or []
        if e["action"] == audit.AuditAction.POLICY_DRAFT:
            e["what"] = [f"new draft with {detail.get('rules', '?')} rules"]
        elif e["action"] == audit.AuditAction.POLICY_EDIT and not e["what"]:
            e["what"] = ["saved without changes"]
    return entries


@bp.app_template_global()
def draft_field_id(field: str) -> str:
    """The id of the form control an error about `field` belongs to."""
    if field == "thresholds.quiet_hours":
        return "quiet_hours_start"
    if field.startswith("thresholds."):
        return f"t-{field.removeprefix('thresholds.')}"
    return "rules" if field in (draft_text.DOCUMENT_FIELD, "version", "status") else field


@bp.app_template_global()
def can_draft() -> bool:
    return holds(g.get("review_key"), Scope.POLICY_WRITE)


# -- start a draft ----------------------------------------------------------------------------
def _suggested_version(session) -> str:
    today = state().clock().astimezone(UTC).date().isoformat()
    n = 1
    while policy_versions.find_version(session, f"{today}.{n}") is not None:
        n += 1
    return f"{today}.{n}"


@bp.route("/policies/<version>/draft", methods=["GET", "POST"])
@page(Scope.POLICY_WRITE)
def start_draft(version: str):
    st = state()
    problems: list[Problem] = []
    with st.db.session() as s:
        source = policy_versions.find_version(s, version)
        if source is None:
            return not_found(f"No policy version '{version}'.")
        document, new_version, reason = source.document, _suggested_version(s), ""
    if request.method == "POST":
        new_version = forms.redisplay("new_version", max_chars=64)
        reason = forms.redisplay("reason", max_chars=MAX_REASON_CHARS)
        try:
            new_version = forms.form_text("new_version", max_chars=64)
            if not _VERSION.match(new_version):
                raise ApiError(422, ErrorCode.VALIDATION_ERROR, "new_version: letters, digits, '.', '-' and '_', "
                               "up to 64, e.g. 2026-12-07.1", field="new_version")
            reason = _reason()
            with st.db.session() as s:
                policy_versions.create_draft(s, draft_text.set_version(document, new_version), g.review_key.name,
                                             reason, st.clock())
        except DomainError as exc:
            field = "new_version" if exc.field == "version" else (exc.field or "document")
            problems.append(Problem(field, exc.message))
        else:
            flash(f"Draft {new_version} started from {version}.")
            return redirect(url_for("review.edit_draft", version=new_version))
    return render_template("review/draft_start.html", source=version, new_version=new_version, reason=reason,
                           problems=problems), 422 if problems else 200


def _reason() -> str:
    reason = forms.form_text("reason", max_chars=MAX_REASON_CHARS)
    if not reason:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "reason: required, say why you make this change",
                       field="reason")
    return reason


# -- the editor -------------------------------------------------------------------------------
def _settings(document: str) -> dict[str, str]:
    """The form's values for a stored document."""
    values = draft_text.thresholds_of(document)
    out = {name: str(values.get(name, "")) for name, _, _ in SETTINGS}
    quiet = values.get("quiet_hours")
    quiet = quiet if isinstance(quiet, list) and len(quiet) == 2 else ["", ""]
    out["quiet_hours_start"], out["quiet_hours_end"] = str(quiet[0]), str(quiet[1])
    return out


def _submitted(stored: str) -> tuple[str, str, dict[str, str], list[Problem]]:
    """(document, rules text, form values, problems) from the posted form over the stored
    document's head and tail: thresholds from the form fields, the rules from the text area."""
    head, _, tail = draft_text.split(stored)
    problems: list[Problem] = []
    values: dict[str, str] = {}
    thresholds: dict[str, Any] = {}
    for name, label, _ in SETTINGS:
        values[name] = forms.redisplay(name, max_chars=20)
        try:
            raw = forms.form_text(name, max_chars=20)
            if not re.fullmatch(r"-?\d+", raw):
                raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{name}: {label}: a whole number", field=name)
            thresholds[name] = int(raw)
        except DomainError as exc:
            problems.append(Problem(f"thresholds.{name}", exc.message))
    quiet = []
    for end in ("start", "end"):
        name = f"quiet_hours_{end}"
        values[name] = forms.redisplay(name, max_chars=5)
        raw = request.form.get(name, "").strip()
        if not _HHMM.match(raw):
            problems.append(Problem("thresholds.quiet_hours", f"{name}: quiet hours {end}: a time HH:MM, "
                                    "e.g. 22:00"))
        quiet.append(raw)
    thresholds["quiet_hours"] = quiet
    rules = forms.redisplay("rules", max_chars=MAX_RULES_CHARS)
    try:
        rules = forms.text(request.form, "rules", max_chars=MAX_RULES_CHARS)
        if not rules:
            raise ApiError(422, ErrorCode.VALIDATION_ERROR, "rules: required, the rules section", field="rules")
        problems += draft_text.check_rules_text(rules)
    except DomainError as exc:
        problems.append(Problem(draft_text.RULES_FIELD, exc.message))
    if problems:
        return "", rules, values, problems
    head = draft_text.set_thresholds(head, thresholds)
    document = draft_text.join(head, rules, tail)
    if len(document) > MAX_RULES_CHARS:
        return "", rules, values, [Problem(draft_text.RULES_FIELD, f"rules: the document would be "
                                           f"{len(document)} characters; the limit is {MAX_RULES_CHARS}")]
    rules_lines = draft_text.join("", rules, "").count("\n")
    return document, rules, values, draft_text.lint(document, head.count("\n"), rules_lines)


def _scenarios(document: str) -> tuple[list[policies.GoldenResult] | None, str | None]:
    try:
        return policies.run_golden(policies.load_policy(policy_versions.normalise_text(document))), None
    except policies.PolicyError as exc:
        return None, f"the stored draft does not compile: {exc.errors[0]}"


def _changes(session, version: str, document: str) -> tuple[str | None, list[str]]:
    active = policy_versions.active_version(session)
    if active is None or active.version == version:
        return (active.version if active else None), []
    parsed = yaml_text.load(document)
    return active.version, diff_words.sentences(policy_versions.diff(session, active.version, version),
                                                parsed if isinstance(parsed, dict) else {})


def _editor(version: str, *, form: dict[str, Any] | None = None, problems: list[Problem] | None = None,
            status: int = 200):
    with state().db.session() as s:
        row = policy_versions.find_version(s, version)
        if row is None:
            return not_found(f"No policy version '{version}'.")
        if row.status != PolicyStatus.DRAFT:
            return render_template("review/error.html", title="Not a draft",
                                   message=f"Policy {version} is {row.status}; only drafts can be edited. Start a "
                                           "new draft from it on its page."), 409
        stored = row.document
        active, changes = _changes(s, version, stored)
    head, rules, _ = draft_text.split(stored)
    scenarios, scenario_error = _scenarios(stored)
    form = form or {"values": _settings(stored), "rules": rules, "reason": ""}
    problems = problems or []
    return render_template(
        "review/draft.html", version=version, form=form, settings=SETTINGS, problems=problems,
        by_field={p.field: p for p in reversed(problems)}, scenarios=scenarios, scenario_error=scenario_error,
        active=active, changes=changes, inline_rules=not rules,
    ), status


@bp.get("/drafts/<version>")
@page(Scope.POLICY_WRITE)
def edit_draft(version: str):
    return _editor(version)


@bp.post("/drafts/<version>")
@page(Scope.POLICY_WRITE)
def save_draft(version: str):
    st = state()
    with st.db.session() as s:
        row = policy_versions.find_version(s, version)
        stored = row.document if row is not None else None
    if stored is None:
        return not_found(f"No policy version '{version}'.")
    document, rules, values, problems = _submitted(stored)
    reason = forms.redisplay("reason", max_chars=MAX_REASON_CHARS)
    try:
        reason = _reason()
    except DomainError as exc:
        problems.append(Problem("reason", exc.message))
    if not problems:
        try:
            with st.db.session() as s:
                policy_versions.edit_draft(s, version, document, g.review_key.name, reason, st.clock())
        except DomainError as exc:
            problems.append(Problem(exc.field or draft_text.DOCUMENT_FIELD, exc.message))
    if problems:
        return _editor(version, form={"values": values, "rules": rules, "reason": reason}, problems=problems,
                       status=409 if any(p.field == "status" for p in problems) else 422)
    scenarios, _ = _scenarios(document)
    passed = sum(r.passed for r in scenarios or [])
    flash(f"Draft {version} saved. Golden scenarios: {passed} of {len(scenarios or [])} pass.")
    return redirect(url_for("review.edit_draft", version=version))


@bp.post("/drafts/<version>/lint")
@page(Scope.POLICY_WRITE)
def lint_draft(version: str):
    """The editor's live lint: the problems of the posted form, as the HTML of the lint region."""
    with state().db.session() as s:
        row = policy_versions.find_version(s, version)
        stored = row.document if row is not None else None
    if stored is None:
        return not_found(f"No policy version '{version}'.")
    _, _, _, problems = _submitted(stored)
    return render_template("review/draft_lint.html", problems=problems, checked=True)
