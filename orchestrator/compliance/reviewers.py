"""Reviewers: people who sign in to the review pages without an API key of their own, for the
CLI (`orchestrator reviewers …`), the admin API (api/reviewers.py) and the pages alike.

A reviewer comes from a one-time invitation link an admin issued, or from OpenID Connect
sign-in (review/oidc.py). Either way their scopes sit on an API key row created for them whose
secret is thrown away at once: nobody, the browser included, ever holds it. So the review
pages' existing per-click check (session row live, key not revoked, scopes) covers reviewers
too, and revoking one is revoking that key and ending their session rows.

Invitation tokens are 32 random bytes, stored as SHA-256 only (as API keys are), used once: the
accepting UPDATE only matches an unused, unexpired row, so two clicks cannot both succeed.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..access.auth import create_api_key, hash_secret, parse_scopes
from ..audit import log as audit
from ..domain.statuses import InvitationState, ReviewerSource
from ..storage.models import ApiKey, Reviewer, ReviewInvitation, ReviewSession

INVITE_ACTION = "reviewer.invite"
JOIN_ACTION = "reviewer.join"
REVOKE_ACTION = "reviewer.revoke"
SESSION_REVOKE_ACTION = "reviewer.session_revoke"

DEFAULT_INVITATION_LIFETIME = timedelta(hours=72)
MIN_INVITATION_LIFETIME = timedelta(minutes=5)
MAX_INVITATION_LIFETIME = timedelta(days=30)
MAX_NAME_CHARS = 200
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")
_UNITS = {"m": 60, "h": 3600, "d": 86400}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class UnknownReviewer(LookupError):
    pass


class ReviewerRevoked(PermissionError):
    """A single sign-on reviewer an admin revoked: signing in at the provider again does not
    bring them back."""


# -- input ------------------------------------------------------------------------------------
def parse_lifetime(text: str) -> timedelta:
    """'72h', '30m', '7d' → timedelta between MIN and MAX_INVITATION_LIFETIME; ValueError else."""
    value = (text or "").strip().lower()
    match = re.fullmatch(r"(\d{1,6})\s*([mhd])", value)
    if not match:
        raise ValueError(f"expires_in: a whole number of minutes, hours or days like '72h', '30m' or '7d', "
                         f"got {value[:40]!r}")
    lifetime = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not MIN_INVITATION_LIFETIME <= lifetime <= MAX_INVITATION_LIFETIME:
        raise ValueError("expires_in: between 5 minutes (5m) and 30 days (30d)")
    return lifetime


def clean_name(name: str) -> str:
    value = (name or "").strip()
    if not value:
        raise ValueError("name: required, who the invitation is for")
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"name: at most {MAX_NAME_CHARS} characters")
    if _CONTROL.search(value):
        raise ValueError("name: must not contain NUL or other control characters")
    return value


def reviewer_scopes(raw: str | list[str]) -> list[str]:
    """Scopes checked against the Scope enum; at least one."""
    scopes = parse_scopes(raw)
    if not scopes:
        raise ValueError("scopes: at least one, e.g. compliance:read")
    return sorted(set(scopes))


def session_ref(session_id: str) -> str:
    """The public handle of a review session: the row id is the cookie's secret, never shown."""
    return hash_secret(session_id)[:16]


# -- invitations --------------------------------------------------------------------------------
def create_invitation(session: Session, name: str, scopes: str | list[str], *, lifetime: timedelta, actor: str,
                      reason: str, now: datetime) -> tuple[ReviewInvitation, str]:
    """Returns the stored invitation and its token (shown once: only its hash is kept)."""
    name, scope_list = clean_name(name), reviewer_scopes(scopes)
    if not MIN_INVITATION_LIFETIME <= lifetime <= MAX_INVITATION_LIFETIME:
        raise ValueError("expires_in: between 5 minutes (5m) and 30 days (30d)")
    token = secrets.token_urlsafe(32)
    row = ReviewInvitation(token_hash=hash_secret(token), name=name, scopes=",".join(scope_list),
                                  created_by=actor, created_at=now, expires_at=now + lifetime)
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, action=INVITE_ACTION, subject=f"invitation:{row.id}",
                 detail={"name": name, "scopes": scope_list, "expires_at": row.expires_at.isoformat()},
                 reason=reason, now=now)
    return row, token


def invitation_link(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/review/invite/{token}"


def find_invitation(session: Session, token: str, now: datetime) -> tuple[InvitationState, ReviewInvitation | None]:
    if not _TOKEN.fullmatch(token or ""):
        return InvitationState.UNKNOWN, None
    row = session.scalar(select(ReviewInvitation).where(ReviewInvitation.token_hash == hash_secret(token)))
    if row is None:
        return InvitationState.UNKNOWN, None
    if row.used_at is not None:
        return InvitationState.USED, row
    if row.expires_at <= now:
        return InvitationState.EXPIRED, row
    return InvitationState.USABLE, row


def accept_invitation(session: Session, token: str, now: datetime) -> tuple[InvitationState, Reviewer | None]:
    """Uses the invitation (once) and creates its reviewer; (USABLE, reviewer) on success,
    else the state that refused it and None."""
    state, row = find_invitation(session, token, now)
    if state is not InvitationState.USABLE:
        return state, None
    claimed = session.execute(
        update(ReviewInvitation)
        .where(ReviewInvitation.id == row.id, ReviewInvitation.used_at.is_(None),
               ReviewInvitation.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # another click used it first
        return InvitationState.USED, None
    key, _ = create_api_key(session, row.name, row.scopes.split(","))  # the secret is dropped here
    reviewer = Reviewer(name=row.name, source=ReviewerSource.INVITATION, key_id=key.id, created_at=now)
    session.add(reviewer)
    session.flush()
    session.execute(update(ReviewInvitation).where(ReviewInvitation.id == row.id)
                    .values(reviewer_id=reviewer.id).execution_options(synchronize_session=False))
    audit.append(session, actor=row.name, action=JOIN_ACTION, subject=f"reviewer:{reviewer.id}",
                 detail={"source": ReviewerSource.INVITATION.value, "invitation": row.id, "key": key.id,
                         "scopes": row.scopes.split(",")}, reason="accepted an invitation", now=now)
    return InvitationState.USABLE, reviewer


# -- single sign-on -----------------------------------------------------------------------------
def sso_sign_in(session: Session, *, issuer: str, subject: str, name: str, scopes: list[str],
                now: datetime) -> tuple[Reviewer, bool]:
    """The reviewer for this provider account, created on first sign-in; their key's scopes
    and name follow what the provider says now. Returns (reviewer, whether the key changed).
    ReviewerRevoked when an admin revoked them."""
    subject_hash = hash_secret(f"{issuer} {subject}")
    name = (_CONTROL.sub("", name).strip() or "single sign-on user")[:MAX_NAME_CHARS]
    scopes = reviewer_scopes(scopes)
    reviewer = session.scalar(select(Reviewer).where(Reviewer.subject_hash == subject_hash))
    if reviewer is None:
        key, _ = create_api_key(session, name, scopes)  # the secret is dropped here
        reviewer = Reviewer(name=name, source=ReviewerSource.SSO, key_id=key.id, subject_hash=subject_hash,
                            created_at=now)
        session.add(reviewer)
        session.flush()
        audit.append(session, actor=name, action=JOIN_ACTION, subject=f"reviewer:{reviewer.id}",
                     detail={"source": ReviewerSource.SSO.value, "key": key.id, "scopes": scopes},
                     reason="first single sign-on", now=now)
        return reviewer, False
    key = session.get(ApiKey, reviewer.key_id)
    if reviewer.revoked_at is not None or key is None or key.revoked_at is not None:
        raise ReviewerRevoked(reviewer.id)
    changed = sorted(key.scope_set) != scopes or key.name != name
    if changed:
        audit.append(session, actor=name, action=audit.AuditAction.KEY_SCOPES, subject=f"key:{key.id}",
                     detail={"name": name, "before": sorted(key.scope_set), "after": scopes},
                     reason="groups at the identity provider", now=now)
        key.scopes, key.name, reviewer.name = ",".join(scopes), name, name
    return reviewer, changed


# -- listing and revoking -----------------------------------------------------------------------
def _live_sessions(session: Session, key_id: str, now: datetime, max_age: timedelta) -> list[ReviewSession]:
    rows = session.scalars(select(ReviewSession).where(ReviewSession.key_id == key_id,
                                                       ReviewSession.ended_at.is_(None),
                                                       ReviewSession.created_at > now - max_age)
                           .order_by(ReviewSession.created_at))
    return list(rows)


def reviewer_dict(session: Session, reviewer: Reviewer, now: datetime, max_age: timedelta) -> dict[str, Any]:
    key = session.get(ApiKey, reviewer.key_id)
    return {
        "id": reviewer.id,
        "name": reviewer.name,
        "source": reviewer.source,
        "scopes": sorted(key.scope_set) if key else [],
        "key_id": reviewer.key_id,
        "created_at": reviewer.created_at.isoformat(),
        "revoked_at": reviewer.revoked_at.isoformat() if reviewer.revoked_at else None,
        "sessions": [{"id": session_ref(row.id), "created_at": row.created_at.isoformat(),
                      "expires_at": (row.created_at + max_age).isoformat()}
                     for row in _live_sessions(session, reviewer.key_id, now, max_age)],
    }


def list_reviewers(session: Session, now: datetime, max_age: timedelta) -> list[dict[str, Any]]:
    """Every reviewer, oldest first, with their live sessions."""
    rows = session.scalars(select(Reviewer).order_by(Reviewer.created_at, Reviewer.id))
    return [reviewer_dict(session, r, now, max_age) for r in rows]


def revoke_reviewer(session: Session, reviewer_id: str, *, actor: str, reason: str,
                    now: datetime) -> Reviewer:
    """Revokes the reviewer's key and ends every session of theirs (audited once). Callers
    announce the key change after commit (key_sync)."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise UnknownReviewer(reviewer_id)
    key = session.get(ApiKey, reviewer.key_id)
    ended = session.execute(update(ReviewSession)
                            .where(ReviewSession.key_id == reviewer.key_id, ReviewSession.ended_at.is_(None))
                            .values(ended_at=now).execution_options(synchronize_session=False)).rowcount
    if reviewer.revoked_at is None:
        reviewer.revoked_at = now
        if key is not None and key.revoked_at is None:
            key.revoked_at = now
        audit.append(session, actor=actor, action=REVOKE_ACTION, subject=f"reviewer:{reviewer.id}",
                     detail={"name": reviewer.name, "key": reviewer.key_id, "sessions_ended": ended},
                     reason=reason, now=now)
    return reviewer


def revoke_session(session: Session, reviewer_id: str, ref: str, *, actor: str, reason: str,
                   now: datetime) -> bool:
    """Ends the reviewer's session whose public handle is `ref`; False when none is open."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise UnknownReviewer(reviewer_id)
    open_rows = session.scalars(select(ReviewSession).where(ReviewSession.key_id == reviewer.key_id,
                                                            ReviewSession.ended_at.is_(None)))
    row = next((r for r in open_rows if session_ref(r.id) == ref), None)
    if row is None:
        return False
    row.ended_at = now
    audit.append(session, actor=actor, action=SESSION_REVOKE_ACTION, subject=f"reviewer:{reviewer.id}",
                 detail={"name": reviewer.name, "session": ref}, reason=reason, now=now)
    return True
