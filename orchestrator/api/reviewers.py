"""Reviewers for administrators: invite a person to the review pages by a one-time link, list
reviewers with their open sessions, revoke a reviewer or one session (compliance/reviewers.py,
as `orchestrator reviewers …` does). A revocation is refused at the reviewer's next click."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, g, jsonify
from pydantic import BaseModel, Field

from ..access.auth import require_scope
from ..app_state import state
from ..compliance import reviewers
from ..domain.statuses import ReviewerSource, Scope
from ..errors import ApiError, ErrorCode
from ..schemas import Strict
from .declare import declare
from .models import RequiredReasonIn, _examples
from .requests import parse_body

bp = Blueprint("reviewers", __name__, url_prefix="/v1")


class InvitationIn(Strict):
    model_config = _examples({"name": "Jane Roe", "scopes": ["compliance:read", "policy:approve"],
                              "expires_in": "72h", "reason": "new policy lead"})
    name: str = Field(min_length=1, max_length=reviewers.MAX_NAME_CHARS, description="who the link is for")
    scopes: list[str] = Field(min_length=1, max_length=20, description="scopes the reviewer gets")
    expires_in: str = Field(default="72h", max_length=20, description="how long the link works: 30m, 72h, 7d …")
    reason: str = Field(default="", max_length=2000)


class InvitationOut(BaseModel):
    model_config = _examples({"id": "01JNQ3W5Z8A5V1M7W2Y3X4Z5A6", "name": "Jane Roe",
                              "scopes": ["compliance:read", "policy:approve"],
                              "expires_at": "2026-03-13T12:00:00+00:00",
                              "link": "https://notify.example.com/review/invite/9cQ…"})
    id: str
    name: str
    scopes: list[str]
    expires_at: datetime
    link: str = Field(description="the one-time sign-in link; shown once, only its hash is stored")


class ReviewSessionOut(BaseModel):
    id: str = Field(description="the session's public handle (not its cookie)")
    created_at: datetime
    expires_at: datetime


class ReviewerOut(BaseModel):
    model_config = _examples({"id": "01JNQ3W5Z8A5V1M7W2Y3X4Z5A6", "name": "Jane Roe", "source": "invitation",
                              "scopes": ["compliance:read"], "key_id": "01JNQ3W5Z8A5V1M7W2Y3X4Z5A7",
                              "created_at": "2026-03-10T12:00:00+00:00", "revoked_at": None,
                              "sessions": [{"id": "3f2a9c0d1b4e5f60", "created_at": "2026-03-10T12:00:00+00:00",
                                            "expires_at": "2026-03-11T00:00:00+00:00"}]})
    id: str
    name: str
    source: ReviewerSource
    scopes: list[str]
    key_id: str = Field(description="the API key row holding the scopes (its secret was never shown)")
    created_at: datetime
    revoked_at: datetime | None = None
    sessions: list[ReviewSessionOut] = Field(description="open sessions")


class ReviewerList(BaseModel):
    reviewers: list[ReviewerOut]


class SessionEnded(BaseModel):
    id: str
    session: str
    ended: bool


def _max_age() -> timedelta:
    return timedelta(seconds=state().settings.review_session_max_age_seconds)


def _reason() -> str:
    _, body = parse_body(RequiredReasonIn)
    if not body.reason.strip():
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "reason: required, a sentence saying why", field="reason")
    return body.reason.strip()


def _unknown(reviewer_id: str) -> ApiError:
    return ApiError(404, ErrorCode.NOT_FOUND, f"reviewer_id: no reviewer {reviewer_id!r}", field="reviewer_id")


@bp.post("/reviewers/invitations")
@declare("Invite a reviewer: a one-time sign-in link to the review pages (audited)", body=InvitationIn,
         responses={201: InvitationOut}, tags=("reviewers",))
@require_scope(Scope.ADMIN)
def invite():
    _, body = parse_body(InvitationIn)
    st = state()
    try:
        lifetime = reviewers.parse_lifetime(body.expires_in)
    except ValueError as exc:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, str(exc), field="expires_in") from None
    for field, check in (("name", lambda: reviewers.clean_name(body.name)),
                         ("scopes", lambda: reviewers.reviewer_scopes(body.scopes))):
        try:
            check()
        except ValueError as exc:
            message = str(exc)
            raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                           message if message.startswith(f"{field}:") else f"{field}: {message}", field=field) from None
    with st.db.session() as session:
        row, token = reviewers.create_invitation(session, body.name, body.scopes, lifetime=lifetime,
                                                 actor=g.api_key.name, reason=body.reason.strip(), now=st.clock())
        out = {"id": row.id, "name": row.name, "scopes": row.scopes.split(","),
               "expires_at": row.expires_at.isoformat(),
               "link": reviewers.invitation_link(st.settings.public_base_url, token)}
    return jsonify(out), 201


@bp.get("/reviewers")
@declare("Reviewers, oldest first, with their scopes and open review sessions", responses={200: ReviewerList},
         tags=("reviewers",))
@require_scope(Scope.ADMIN)
def list_reviewers():
    st = state()
    with st.db.session() as session:
        return jsonify({"reviewers": reviewers.list_reviewers(session, st.clock(), _max_age())})


@bp.delete("/reviewers/<reviewer_id>")
@declare("Revoke a reviewer: their key and every session end; open pages are refused at the next click",
         body=RequiredReasonIn, responses={200: ReviewerOut}, errors=[404], tags=("reviewers",))
@require_scope(Scope.ADMIN)
def revoke_reviewer(reviewer_id: str):
    reason = _reason()
    st = state()
    with st.db.session() as session:
        try:
            reviewer = reviewers.revoke_reviewer(session, reviewer_id, actor=g.api_key.name,
                                                 reason=reason, now=st.clock())
        except reviewers.UnknownReviewer:
            raise _unknown(reviewer_id) from None
        session.flush()
        out = reviewers.reviewer_dict(session, reviewer, st.clock(), _max_age())
    st.key_sync.changed(out["key_id"])
    return jsonify(out)


@bp.delete("/reviewers/<reviewer_id>/sessions/<session_id>")
@declare("End one review session of a reviewer (its id from GET /v1/reviewers)", body=RequiredReasonIn,
         responses={200: SessionEnded}, errors=[404], tags=("reviewers",))
@require_scope(Scope.ADMIN)
def revoke_session(reviewer_id: str, session_id: str):
    reason = _reason()
    st = state()
    with st.db.session() as session:
        try:
            ended = reviewers.revoke_session(session, reviewer_id, session_id, actor=g.api_key.name,
                                             reason=reason, now=st.clock())
        except reviewers.UnknownReviewer:
            raise _unknown(reviewer_id) from None
    if not ended:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"session_id: reviewer {reviewer_id!r} has no open session "
                                                 f"{session_id!r}", field="session_id")
    return jsonify({"id": reviewer_id, "session": session_id, "ended": True})
