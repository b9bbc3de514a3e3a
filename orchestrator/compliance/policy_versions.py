"""Policy versions and their lifecycle: draft -> approved -> active -> retired.

Four eyes: whoever wrote or edited a draft cannot approve it. Exactly one version is active;
activating one retires the previous active version in the same transaction, and every step
is appended to the audit log (audit.log) in that transaction too. Errors are DomainErrors
with stable codes, so the HTTP layer and the compliance pages show the same answers.

Service API (``session`` is an open SQLAlchemy session; ``now`` an aware datetime; ``actor``
the API key's name):
- ``list_versions(session) -> list[PolicyVersion]`` (newest first)
- ``get_version(session, version) -> PolicyVersion`` (NotFound ``not_found``)
- ``create_draft(session, document_text, actor, reason, now) -> PolicyVersion``
- ``edit_draft(session, version, document_text, actor, reason, now) -> PolicyVersion``
- ``approve(session, version, actor, reason, now) -> PolicyVersion``
- ``activate(session, version, actor, reason, now) -> PolicyVersion`` — afterwards, once the
  session committed, call ``PolicyStore.refresh()`` so new messages use it at once
  (``activate_and_refresh(db, store, ...)`` does both)
- ``version_dict(row)``, ``detail_dict(row)`` (document + rules), ``diff(session, a, b)``
- ``validate_document(text) -> Policy`` (Invalid ``invalid_policy`` with every error)
- ``compile_row(row, store=None) -> Policy`` (what simulation.simulate takes)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import policies
from policies import Policy, PolicyError, yaml_text
from policies.diff import diff_documents

from ..audit import log as audit
from ..audit.log import AuditAction
from ..domain.errors import Conflict, ErrorCode, Forbidden, Invalid, NotFound
from ..domain.statuses import PolicyStatus
from ..storage.db import Database
from ..storage.models import PolicyVersion

MAX_DOCUMENT_CHARS = yaml_text.MAX_CHARS
_RULE = re.compile(r"rule '([^']+)'")
_FIELD = re.compile(r"field '([^']+)'")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lint_details(errors: list[str]) -> list[dict[str, Any]]:
    """Engine lint messages -> [{"rule", "field", "message"}] (rule/field None when not named)."""
    out = []
    for message in errors:
        rule, field = _RULE.search(message), _FIELD.search(message)
        out.append({"rule": rule.group(1) if rule else None, "field": field.group(1) if field else None,
                    "message": message})
    return out


def normalise_text(text: str) -> str:
    """Stored and compiled text always ends with a newline, so it is never taken for a file path."""
    return text if text.endswith("\n") else text + "\n"


def validate_document(text: str) -> Policy:
    """Compile a policy document; Invalid ``invalid_policy`` naming every rule and field at fault."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid(ErrorCode.VALIDATION_ERROR, "document: required, the policy YAML text",
                      field="document")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise Invalid(ErrorCode.VALIDATION_ERROR,
                      f"document: {len(text)} characters; the limit is {MAX_DOCUMENT_CHARS}", field="document")
    try:
        return policies.load_policy(normalise_text(text))
    except PolicyError as exc:
        details = lint_details(exc.errors)
        raise Invalid(ErrorCode.INVALID_POLICY,
                      f"the policy document has {len(details)} error(s); first: {details[0]['message']}",
                      field="document", details=details) from None


def compile_row(row: PolicyVersion, store: Any | None = None) -> Policy:
    """The compiled policy of a stored version: drafts (mutable) are compiled from their current
    text; other versions come from the PolicyStore's cache when one is given."""
    if row.status != PolicyStatus.DRAFT and store is not None:
        return store.get(row.version)
    return policies.load_policy(normalise_text(row.document))


def list_versions(session: Session) -> list[PolicyVersion]:
    return list(session.scalars(versions_query().order_by(PolicyVersion.id.desc())))


def versions_query():
    """Every version (the caller orders and pages)."""
    return select(PolicyVersion)


def find_version(session: Session, version: str) -> PolicyVersion | None:
    return session.scalar(select(PolicyVersion).where(PolicyVersion.version == version))


def get_version(session: Session, version: str) -> PolicyVersion:
    row = find_version(session, version)
    if row is None:
        raise NotFound(ErrorCode.NOT_FOUND, f"no policy version '{version}'", field="version")
    return row


def active_version(session: Session) -> PolicyVersion | None:
    return session.scalar(select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.ACTIVE))


def _transition_error(row: PolicyVersion, action: str, needed: str) -> Conflict:
    return Conflict(ErrorCode.INVALID_TRANSITION,
                    f"policy {row.version} is {row.status}; only a {needed} version can be {action}",
                    field="status")


def create_draft(session: Session, document_text: str, actor: str, reason: str, now: datetime) -> PolicyVersion:
    """A new draft; its version string is the document's ``version`` field (Conflict if taken)."""
    policy = validate_document(document_text)
    audit.lock(session)
    if find_version(session, policy.version) is not None:
        raise Conflict(ErrorCode.VERSION_EXISTS,
                       f"version: policy version '{policy.version}' already exists; change the document's "
                       "`version` field", field="version")
    row = PolicyVersion(version=policy.version, document=normalise_text(document_text), status=PolicyStatus.DRAFT,
                        author=actor, created_at=now)
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, action=AuditAction.POLICY_DRAFT, subject=f"policy:{policy.version}",
                 detail={"version": policy.version, "rules": len(policy.rules)}, reason=reason, now=now)
    return row


def edit_draft(session: Session, version: str, document_text: str, actor: str, reason: str,
               now: datetime) -> PolicyVersion:
    """Replace a draft's document. Only drafts can change; the document keeps its version."""
    audit.lock(session)
    row = get_version(session, version)
    if row.status != PolicyStatus.DRAFT:
        raise _transition_error(row, "edited", "draft")
    policy = validate_document(document_text)
    if policy.version != row.version:
        raise Invalid(ErrorCode.VERSION_MISMATCH,
                      f"version: the document says '{policy.version}' but this draft is '{row.version}'; "
                      "create a new draft for a new version", field="version")
    changes = diff_documents(_parse(row.document), policy.document)
    row.document = normalise_text(document_text)
    audit.append(session, actor=actor, action=AuditAction.POLICY_EDIT, subject=f"policy:{version}",
                 detail={"version": version, "changes": [c.sentence for c in changes][:50]},
                 reason=reason, now=now)
    return row


def approve(session: Session, version: str, actor: str, reason: str, now: datetime) -> PolicyVersion:
    """Second pair of eyes: the approver must be neither the author nor anyone who edited it."""
    audit.lock(session)
    row = get_version(session, version)
    if row.status != PolicyStatus.DRAFT:
        raise _transition_error(row, "approved", "draft")
    writers = {row.author} | audit.actors_for(session, f"policy:{version}",
                                              (AuditAction.POLICY_DRAFT, AuditAction.POLICY_EDIT))
    if actor in writers:
        raise Forbidden(ErrorCode.SELF_APPROVAL_FORBIDDEN,
                        f"'{actor}' wrote or edited policy {version}; another person must approve it",
                        field="Authorization")
    row.status = PolicyStatus.APPROVED
    row.approved_by = actor
    row.approved_at = now
    audit.append(session, actor=actor, action=AuditAction.POLICY_APPROVE, subject=f"policy:{version}",
                 detail={"version": version, "author": row.author}, reason=reason, now=now)
    return row


def activate(session: Session, version: str, actor: str, reason: str, now: datetime) -> PolicyVersion:
    """Make an approved version the active one; the previous active version is retired."""
    audit.lock(session)  # serializes activations: never two active versions
    row = get_version(session, version)
    if row.status != PolicyStatus.APPROVED:
        raise _transition_error(row, "activated", "approved")
    previous = active_version(session)
    if previous is not None:
        previous.status = PolicyStatus.RETIRED
        previous.retired_at = now
        session.flush()  # the old one is retired before the new one is active
        audit.append(session, actor=actor, action=AuditAction.POLICY_RETIRE, subject=f"policy:{previous.version}",
                     detail={"version": previous.version, "replaced_by": version}, reason=reason, now=now)
    row.status = PolicyStatus.ACTIVE
    row.activated_at = now
    audit.append(session, actor=actor, action=AuditAction.POLICY_ACTIVATE, subject=f"policy:{version}",
                 detail={"version": version, "previous": previous.version if previous else None},
                 reason=reason, now=now)
    return row


def activate_and_refresh(db: Database, store: Any, version: str, actor: str, reason: str,
                         now: datetime) -> dict[str, Any]:
    """activate() in its own transaction, then point the PolicyStore at the new version."""
    with db.session() as session:
        body = version_dict(activate(session, version, actor, reason, now))
    store.refresh()
    return body


def _parse(text: str) -> dict[str, Any]:
    doc = yaml_text.load(text)  # stored documents were loaded the same way when saved
    return doc if isinstance(doc, dict) else {}


def diff(session: Session, version_a: str, version_b: str) -> list[dict[str, Any]]:
    a, b = get_version(session, version_a), get_version(session, version_b)
    return [c.to_dict() for c in diff_documents(_parse(a.document), _parse(b.document))]


def version_dict(row: PolicyVersion) -> dict[str, Any]:
    return {"version": row.version, "status": row.status, "author": row.author, "approved_by": row.approved_by,
            "created_at": _iso(row.created_at), "approved_at": _iso(row.approved_at),
            "activated_at": _iso(row.activated_at), "retired_at": _iso(row.retired_at)}


def rules_of(document_text: str) -> list[dict[str, Any]]:
    """The rules as a reviewer reads them: id, title, description, cites, when, then, reason."""
    out = []
    for raw in _parse(document_text).get("rules") or []:
        if not isinstance(raw, dict):
            continue
        cites = raw.get("cites")
        out.append({"id": raw.get("id"), "title": raw.get("title"), "description": raw.get("description"),
                    "cites": [cites] if isinstance(cites, str) else list(cites or []),
                    "when": raw.get("when"), "then": raw.get("then"), "reason": raw.get("reason")})
    return out


def detail_dict(row: PolicyVersion) -> dict[str, Any]:
    doc = _parse(row.document)
    return {**version_dict(row), "description": doc.get("description"), "document": row.document,
            "categories": doc.get("categories"), "thresholds": doc.get("thresholds"),
            "rules": rules_of(row.document)}
