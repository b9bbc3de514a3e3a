"""Compliance review: policy versions (draft, edit, approve, activate), diff, impact
simulation, the audit log, re-explaining a past message, and the decisions CSV export.
Thin handlers: the logic is in compliance.policy_versions / audit / simulation /
decision_replay / decisions_export. The actor is the API key's name."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, stream_with_context

from ..access.auth import require_scope
from ..app_state import state
from ..audit import log as audit
from ..compliance import decisions_export, policy_versions, simulation_workers
from ..domain.statuses import Scope
from ..errors import ApiError, ErrorCode
from ..schemas import check_datetime_range
from ..sending import decision_replay
from ..storage.models import AuditEntry, PolicyVersion
from .declare import Media, declare
from .models import (
    AuditList,
    AuditQuery,
    AuditVerifyOut,
    DecisionsQuery,
    MessageExplanation,
    PolicyDetail,
    PolicyDiff,
    PolicyDocumentIn,
    PolicyList,
    PolicyVersionOut,
    ReasonIn,
    SimulateIn,
    SimulationOut,
)
from .pagination import Pager
from .requests import raw_json_object

bp = Blueprint("policies", __name__, url_prefix="/v1")

MAX_SIMULATION_DAYS = 366
MAX_REASON_CHARS = 2000


def _body(*, required: bool = True) -> dict[str, Any]:
    if not required and not request.get_data(cache=True).strip():
        return {}
    return raw_json_object()[1]


def _reason(body: dict[str, Any], *, required: bool = False) -> str:
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"reason: a sentence of at most {MAX_REASON_CHARS} characters",
                       field="reason")
    if required and not reason.strip():
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "reason: required, say why", field="reason")
    return reason.strip()


def _document(body: dict[str, Any]) -> str:
    document = body.get("document")
    if not isinstance(document, str):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "document: required, the policy YAML as a string",
                       field="document")
    return document


def _actor() -> str:
    return g.api_key.name


def _datetime_arg(name: str, default: datetime) -> datetime:
    raw = request.args.get(name)
    if not raw:
        return default
    raw = raw.strip().replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None and raw.count(" ") == 1 and "T" in raw:  # an unencoded "+01:00" arrives as " 01:00"
        try:
            value = datetime.fromisoformat(raw.replace(" ", "+"))
        except ValueError:
            value = None
    if value is None:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{name}: not an ISO 8601 date or datetime: {raw!r}",
                       field=name) from None
    value = value if value.tzinfo else value.replace(tzinfo=default.tzinfo)
    try:
        return check_datetime_range(value)
    except ValueError as exc:
        raise ApiError(422, ErrorCode.DATE_OUT_OF_RANGE, f"{name}: {str(exc).split(': ', 1)[1]}",
                       field=name) from None


POLICY_PAGER = Pager((PolicyVersion.id,), (int,), default_limit=100, max_limit=500)
AUDIT_PAGER = Pager((AuditEntry.id,), (int,), default_limit=100, max_limit=1000)


# -- versions -----------------------------------------------------------------------------
@bp.get("/policies")
@declare("Policy versions: status, author, approver, times", responses={200: PolicyList}, tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ, Scope.POLICY_WRITE, Scope.POLICY_APPROVE)
def list_policies():
    """Newest first, paged (limit, cursor → next_cursor)."""
    page = POLICY_PAGER.from_request()
    with state().db.session() as session:
        rows = list(session.scalars(POLICY_PAGER.apply(policy_versions.versions_query(), page)))
        rows, next_cursor = POLICY_PAGER.finish(rows, page, lambda r: (r.id,))
        return jsonify({"policies": [policy_versions.version_dict(r) for r in rows], "next_cursor": next_cursor})


@bp.get("/policies/<version>")
@declare("A version: document and rules (id, title, description, cites)", responses={200: PolicyDetail},
         errors=[404], tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ, Scope.POLICY_WRITE, Scope.POLICY_APPROVE)
def get_policy(version: str):
    with state().db.session() as session:
        return jsonify(policy_versions.detail_dict(policy_versions.get_version(session, version)))


@bp.post("/policies")
@declare("Create a draft from a policy document (its `version` names it)", body=PolicyDocumentIn,
         responses={201: PolicyVersionOut}, errors=[409], tags=("compliance",))
@require_scope(Scope.POLICY_WRITE)
def create_policy():
    st = state()
    body = _body()
    with st.db.session() as session:
        row = policy_versions.create_draft(session, _document(body), _actor(), _reason(body), st.clock())
        return jsonify(policy_versions.version_dict(row)), 201


@bp.put("/policies/<version>")
@declare("Edit a draft", body=PolicyDocumentIn, responses={200: PolicyVersionOut}, errors=[404, 409],
         tags=("compliance",))
@require_scope(Scope.POLICY_WRITE)
def edit_policy(version: str):
    st = state()
    body = _body()
    with st.db.session() as session:
        row = policy_versions.edit_draft(session, version, _document(body), _actor(), _reason(body), st.clock())
        return jsonify(policy_versions.version_dict(row))


@bp.post("/policies/<version>/approve")
@declare("Approve a draft (never by its author or an editor: 403 self_approval_forbidden)", body=ReasonIn,
         body_required=False, responses={200: PolicyVersionOut}, errors=[404, 409], tags=("compliance",))
@require_scope(Scope.POLICY_APPROVE)
def approve_policy(version: str):
    st = state()
    body = _body(required=False)
    with st.db.session() as session:
        row = policy_versions.approve(session, version, _actor(), _reason(body), st.clock())
        return jsonify(policy_versions.version_dict(row))


@bp.post("/policies/<version>/activate")
@declare("Activate an approved version; the previous active one is retired", body=ReasonIn,
         body_required=False, responses={200: PolicyVersionOut}, errors=[404, 409], tags=("compliance",))
@require_scope(Scope.POLICY_APPROVE)
def activate_policy(version: str):
    st = state()
    body = _body(required=False)
    return jsonify(policy_versions.activate_and_refresh(st.db, st.policies, version, _actor(), _reason(body),
                                                       st.clock()))


@bp.get("/policies/<version_a>/diff/<version_b>")
@declare("Rule-by-rule differences from version_a to version_b", responses={200: PolicyDiff}, errors=[404],
         tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ, Scope.POLICY_WRITE, Scope.POLICY_APPROVE)
def diff_policies(version_a: str, version_b: str):
    with state().db.session() as session:
        return jsonify({"from": version_a, "to": version_b,
                        "changes": policy_versions.diff(session, version_a, version_b)})


# -- simulation ---------------------------------------------------------------------------
def _simulate(policy) -> Response:
    st = state()
    body = _body(required=False)
    days = body.get("days", 7)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_SIMULATION_DAYS:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"days: a whole number from 1 to {MAX_SIMULATION_DAYS}",
                       field="days")
    now = st.clock()
    result = simulation_workers.simulate_auto(st.db, policy, st.policies.active(), since=now - timedelta(days=days))
    return jsonify(result.to_dict())


@bp.post("/policies/<version>/simulate")
@declare("Replay the last N days of messages through a version and the active one: what changes", body=SimulateIn,
         body_required=False, responses={200: SimulationOut}, errors=[404], tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ, Scope.POLICY_WRITE, Scope.POLICY_APPROVE)
def simulate_version(version: str):
    st = state()
    with st.db.session() as session:
        row = policy_versions.get_version(session, version)
        policy = policy_versions.compile_row(row, st.policies)
    return _simulate(policy)


@bp.post("/policies/simulate")
@declare("Simulate a posted policy document", body=SimulateIn, responses={200: SimulationOut}, tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ, Scope.POLICY_WRITE, Scope.POLICY_APPROVE)
def simulate_document():
    body = _body()
    return _simulate(policy_versions.validate_document(_document(body)))


# -- audit --------------------------------------------------------------------------------
@bp.get("/audit")
@declare("Recent audit log entries (newest first)", query=AuditQuery, responses={200: AuditList}, tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ)
def audit_log():
    """Newest first, paged (limit, cursor → next_cursor); filters: subject, action."""
    page = AUDIT_PAGER.from_request()
    query = audit.entries_query(subject=request.args.get("subject"), action=request.args.get("action"))
    with state().db.session() as session:
        rows = list(session.scalars(AUDIT_PAGER.apply(query, page)))
        rows, next_cursor = AUDIT_PAGER.finish(rows, page, lambda e: (e.id,))
        return jsonify({"entries": [audit.entry_dict(e) for e in rows], "next_cursor": next_cursor})


@bp.get("/audit/verify")
@declare("Verify the audit hash chain; names the first broken entry", responses={200: AuditVerifyOut},
         tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ)
def audit_verify():
    from ..audit import checkpoints as audit_checkpoints

    st = state()
    with st.db.read_only_session() as session:  # verification writes nothing
        result, anchor = audit_checkpoints.check(session, st.settings, st.clock())
    body = {**result.to_dict(), "message": result.message, "chain_ok": result.ok, "anchor": anchor.to_dict()}
    if result.ok and anchor.status == audit_checkpoints.AnchorStatus.TAMPERED:
        # The chain left is valid, but it is not the chain that was anchored (rows deleted from
        # the end, a rewrite, a forged checkpoint): that is tampering too.
        body.update(ok=False, problem=anchor.problem, message=f"audit log TAMPERED: {anchor.problem}")
    return jsonify(body)


# -- decisions ----------------------------------------------------------------------------
@bp.get("/messages/<message_id>/explain")
@declare("Re-explain a past decision: stored trace and a replay under the stored policy version",
         responses={200: MessageExplanation}, errors=[404], tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ)
def explain_message(message_id: str):
    st = state()
    with st.db.session() as session:
        return jsonify(decision_replay.explain_message(session, st.policies, message_id))


@bp.get("/decisions.csv")
@declare("CSV export of decisions (from/to inclusive, ISO 8601)", query=DecisionsQuery,
         responses={200: Media("text/csv", "one row per message")}, tags=("compliance",))
@require_scope(Scope.COMPLIANCE_READ)
def decisions_csv():
    st = state()
    now = st.clock()
    until = _datetime_arg("to", now)
    since = _datetime_arg("from", until - timedelta(days=7))
    if since >= until:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "from: must be before 'to'", field="from")
    chunks = decisions_export.iter_csv(st.db, since, until)
    filename = f"decisions-{since.date().isoformat()}-{until.date().isoformat()}.csv"
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
