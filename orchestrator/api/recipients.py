"""Recipient profiles and presence heartbeats."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError

from ..access.auth import holds_scope, require_scope
from ..app_state import state
from ..domain.statuses import Scope
from ..errors import ApiError, ErrorCode
from ..recipients import recipients
from ..schemas import PresenceIn, RecipientUpsert, UserId
from ..sending.facts import load_recipient
from .declare import declare
from .models import ErasureOut, PresenceOut, RecipientOut
from .requests import parse_body

bp = Blueprint("recipients", __name__, url_prefix="/v1/recipients")


_USER_ID = TypeAdapter(UserId)  # built once: a TypeAdapter compiles its validator when constructed


def check_user_id(user_id: str) -> str:
    try:
        return _USER_ID.validate_python(user_id)
    except ValidationError:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       "user_id: 1-200 characters of letters, digits and . _ : @ -",
                       field="user_id") from None


@bp.put("/<user_id>")
@declare("Create or update a recipient profile (changing an existing one's addresses, devices, consents or "
         "preferences takes `recipients`)", body=RecipientUpsert,
         body_example={"email": "ada@example.com", "phone": "+447400123456", "timezone": "Europe/London",
                       "consents": {"sms": True}, "devices": [{"token": "fcm-token-1", "platform": "fcm"}]},
         responses={200: RecipientOut, 201: RecipientOut}, tags=("recipients",))
@require_scope(Scope.RECIPIENTS, Scope.SEND)
def put_recipient(user_id: str):
    """A `send`-only key creates recipients; changing an existing one's addresses, devices,
    consents or preferences takes `recipients` (403 naming the field)."""
    user_id = check_user_id(user_id)
    _, data = parse_body(RecipientUpsert)
    policy = state().policies.active() if data.preferences is not None else None
    allowed = holds_scope(g.api_key, Scope.RECIPIENTS)
    row, created, body = retry_on_conflict(lambda session: _upsert(session, user_id, data, policy, allowed))
    return jsonify(body), 201 if created else 200


def _upsert(session, user_id: str, data: RecipientUpsert, policy, contact_changes_allowed: bool):
    row, created = recipients.upsert(session, user_id, data, policy,
                                     contact_changes_allowed=contact_changes_allowed)
    return row, created, recipients.to_dict(row)


def retry_on_conflict(work):
    """Two requests creating the same recipient at once: the loser's INSERT conflicts; the
    row exists now, so doing the work again updates it."""
    for attempt in (1, 2):
        try:
            with state().db.session() as session:
                return work(session)
        except IntegrityError:
            if attempt == 2:
                raise


@bp.get("/<user_id>")
@declare("A recipient profile (addresses masked)", responses={200: RecipientOut}, errors=[404],
         tags=("recipients",))
@require_scope(Scope.RECIPIENTS, Scope.READ)
def get_recipient(user_id: str):
    with state().db.session() as session:
        row = load_recipient(session, check_user_id(user_id))
        if row is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no recipient '{user_id}'", field="user_id")
        return jsonify(recipients.to_dict(row))


@bp.delete("/<user_id>")
@declare("Erase a recipient: profile, addresses, devices and in-app tokens deleted; message content redacted, "
         "decisions kept explainable; audited", responses={200: ErasureOut}, tags=("recipients",))
@require_scope(Scope.RECIPIENTS)
def erase_recipient(user_id: str):
    from ..inapp.bus import Notice
    from ..recipients import erasure

    st = state()
    user_id = check_user_id(user_id)
    with st.db.session() as session:
        result = erasure.erase_recipient(session, user_id, actor=g.api_key.name, now=st.clock())
    st.bus.publish(user_id, Notice.REVOKE)  # open in-app streams of the user close
    return jsonify(result.to_dict())


@bp.post("/<user_id>/presence")
@declare("Presence heartbeat (the user is in a session now)", body=PresenceIn, body_required=False,
         responses={200: PresenceOut}, tags=("recipients",))
@require_scope(Scope.RECIPIENTS, Scope.SEND)
def presence(user_id: str):
    st = state()
    user_id = check_user_id(user_id)
    parse_body(PresenceIn, allow_empty=True)
    now = st.clock()
    retry_on_conflict(lambda session: st.presence.touch(session, user_id, now))
    body = {"user_id": user_id, "last_heartbeat_at": now.isoformat(), "store": st.presence.kind}
    if st.dispatcher is not None:
        st.dispatcher.release_held_in_app(user_id)
    return jsonify(body)
