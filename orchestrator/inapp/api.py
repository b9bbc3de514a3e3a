"""The in-app client's API: inbox (notification center) and engagement reports,
authenticated by a per-user token, not the API key. The live stream (Server-Sent Events)
is served on the event loop: see stream.py."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from providers.base import AttemptStatus, Channel, Engagement, Receipt

from ..app_state import state
from ..auth import require_scope
from ..dispatch.receipts import ingest
from ..domain.statuses import Scope
from ..errors import ApiError, ErrorCode
from ..storage.models import Attempt
from . import tokens

bp = Blueprint("inapp", __name__)

INAPP_SOURCE = "in_app_client"
VISIBLE = (AttemptStatus.SENT, AttemptStatus.DELIVERED)


@bp.post("/v1/recipients/<user_id>/inapp-token")
@require_scope(Scope.SEND, Scope.RECIPIENTS)
def issue_token(user_id: str):
    from ..api.recipients import check_user_id

    st = state()
    user_id = check_user_id(user_id)
    with st.db.session() as session:
        token, expires, token_id = tokens.issue(session, user_id, st.clock(), st.settings.in_app_token_ttl_seconds)
    return jsonify({"token": token, "token_id": token_id, "expires_at": expires.isoformat()}), 201


def _entry(a: Attempt) -> dict:
    content = a.message.content or {}
    return {
        "id": a.id, "message_id": a.message_id, "category": a.message.category,
        "title": content.get("title", ""), "body": content.get("body", ""),
        "action_url": content.get("action_url"), "image_url": content.get("image_url"),
        "created_at": (a.sent_at or a.created_at).isoformat(),
        **{k: getattr(a, k).isoformat() if getattr(a, k) else None
           for k in ("seen_at", "read_at", "clicked_at", "acknowledged_at")},
    }


def _inbox_query(user_id: str):
    return (select(Attempt).where(Attempt.user_id == user_id, Attempt.channel == Channel.IN_APP,
                                  Attempt.status.in_(VISIBLE)).order_by(Attempt.sent_at.desc()))


@bp.get("/v1/inbox")
def inbox():
    st = state()
    limit = min(max(request.args.get("limit", 50, type=int), 1), 200)
    with st.db.session() as session:
        user_id = tokens.user_for_request(session, st.clock())
    st.dispatcher.release_held_in_app(user_id)  # reading the inbox is a session too
    with st.db.session() as session:
        rows = session.scalars(_inbox_query(user_id).limit(limit)).all()
        items = [_entry(a) for a in rows]
        unread = sum(1 for i in items if not i["read_at"])
    return jsonify({"user_id": user_id, "unread": unread, "items": items})


@bp.post("/v1/inbox/<attempt_id>/<event>")
def report(attempt_id: str, event: str):
    st = state()
    if event not in Engagement._value2member_map_:
        raise ApiError(404, ErrorCode.NOT_FOUND,
                       f"event must be one of {', '.join(e.value for e in Engagement)}", field="event")
    now = st.clock()
    with st.db.session() as session:
        user_id = tokens.user_for_request(session, now)
        attempt = session.get(Attempt, attempt_id)
        if attempt is None or attempt.user_id != user_id or attempt.channel != Channel.IN_APP:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no inbox item '{attempt_id}'", field="id")
        receipt = Receipt(provider="inapp", provider_message_id=attempt.id, status=None,
                          event_id=f"{attempt.id}:{event}", occurred_at=now, raw={"event": event},
                          engagement=Engagement(event), message_id=attempt.message_id)
        outcome, released = ingest(session, INAPP_SOURCE, receipt, now, attempt_id=attempt.id)
        st.presence.touch(session, user_id, now)  # engaging is being active
    st.dispatcher.enqueue_many(released)
    return jsonify({"id": attempt_id, "event": event, "outcome": outcome})
