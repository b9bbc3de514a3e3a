"""The in-app client's API: inbox (notification center), engagement reports, archive and
mark-all-read, authenticated by a per-user token, not the API key; and, for the product
backend with its API key, issuing and revoking those tokens. The live stream
(Server-Sent Events) is served on the event loop: see inapp/stream.py.

Every change to what the user has read or kept is announced on the in-app bus after commit
(`publish_items`: the changed items, sent again as `item` events with the new `unread` on
every open stream of the user, the changing tab's own included); a revocation
(`Notice.REVOKE`) closes the open streams of the revoked tokens within seconds.

CORS: only the client routes (`/v1/inbox…`) answer cross-origin, for the origins in
INAPP_CORS_ORIGINS; API-key routes never do."""

from __future__ import annotations

import logging
import re
from enum import StrEnum

from flask import Blueprint, Response, jsonify, request

from providers.base import Engagement, Receipt
from providers.masking import mask_token

from ..access.auth import require_scope
from ..app_state import state
from ..dispatch import sweeper
from ..domain.statuses import AckChannel, ReadChannel, ReceiptOutcome, Scope
from ..errors import ApiError, ErrorCode
from ..inapp import cors, inbox, locales, tokens
from ..inapp.bus import Notice
from ..lifecycle.receipts import ingest
from ..recipients import recipients
from ..schemas import ClientDeviceIn, ClientDeviceRemove
from ..sending import confirmations
from .declare import Auth, declare
from .models import (
    ArchivedOut,
    ClientDeviceOut,
    ClientDeviceRemovedOut,
    EngagementOut,
    InAppTokenOut,
    InboxPage,
    InboxQuery,
    ReadAllOut,
    TokenRevokedOut,
    UserTokensRevokedOut,
)
from .requests import parse_body

log = logging.getLogger("orchestrator.inapp")

bp = Blueprint("inapp", __name__)

INAPP_SOURCE = "in_app_client"
CLIENT_PREFIX = "/v1/inbox"
DEVICES_PATH = f"{CLIENT_PREFIX}/devices"
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_CURSOR_CHARS = 200
_DIGITS = re.compile(r"[0-9]{1,4}")


class ItemAction(StrEnum):
    """What a client may do to one inbox item besides the engagement reports."""

    ARCHIVE = "archive"


# -- CORS, for the client routes only ------------------------------------------------------
def _is_client_route() -> bool:
    return request.path == CLIENT_PREFIX or request.path.startswith(CLIENT_PREFIX + "/")


@bp.before_request
def _preflight():
    """Answers a CORS preflight of a client route; the route itself is never run."""
    if request.method == "OPTIONS" and _is_client_route():
        origins = state().settings.inapp_cors_origins
        return Response(status=204, headers=cors.headers(request.headers.get("Origin"), origins, preflight=True))
    return None


@bp.after_request
def _cors(response: Response) -> Response:
    if _is_client_route():
        response.headers.update(cors.headers(request.headers.get("Origin"), state().settings.inapp_cors_origins))
    return response


# -- tokens (API key) ------------------------------------------------------------------------
@bp.post("/v1/recipients/<user_id>/inapp-token")
@declare("Issue a per-user token for the in-app client", responses={201: InAppTokenOut}, tags=("in-app tokens",))
@require_scope(Scope.INAPP_TOKENS)
def issue_token(user_id: str):
    from .recipients import check_user_id

    st = state()
    user_id = check_user_id(user_id)
    with st.db.session() as session:
        token, expires, token_id = tokens.issue(session, user_id, st.clock(), st.settings.in_app_token_ttl_seconds)
    return jsonify({"token": token, "token_id": token_id, "expires_at": expires.isoformat()}), 201


@bp.delete("/v1/inapp-tokens/<token_id>")
@declare("Revoke one in-app token by its id; its open streams close", responses={200: TokenRevokedOut},
         errors=[404], tags=("in-app tokens",))
@require_scope(Scope.INAPP_TOKENS)
def revoke_token(token_id: str):
    st = state()
    with st.db.session() as session:
        user_id = tokens.revoke(session, token_id, st.clock())
    if user_id is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "token_id: no in-app token with this id", field="token_id")
    st.bus.publish(user_id, Notice.REVOKE, token_id)
    return jsonify({"token_id": token_id, "revoked": True})


@bp.post("/v1/recipients/<user_id>/inapp-tokens/revoke")
@declare("Revoke every in-app token of a user; their open streams close",
         responses={200: UserTokensRevokedOut}, tags=("in-app tokens",))
@require_scope(Scope.INAPP_TOKENS)
def revoke_user_tokens(user_id: str):
    from .recipients import check_user_id

    st = state()
    user_id = check_user_id(user_id)
    with st.db.session() as session:
        count = tokens.revoke_user(session, user_id, st.clock())
    st.bus.publish(user_id, Notice.REVOKE)
    return jsonify({"user_id": user_id, "revoked": count})


# -- push devices (user token) ---------------------------------------------------------------
@bp.post(DEVICES_PATH)
@declare("Register this device or browser for push (a browser: its PushSubscription.toJSON() as the token)",
         body=ClientDeviceIn, body_example={"platform": "fcm", "token": "fcm-token-1"},
         responses={200: ClientDeviceOut, 201: ClientDeviceOut}, auth=Auth.USER_TOKEN, tags=("in-app client",))
def register_device():
    """The user's own client hands over its push token, so the backend need not relay it. The
    platform is one the provider catalog declares; the token is checked by its provider."""
    from .recipients import retry_on_conflict

    st = state()
    _, data = parse_body(ClientDeviceIn)
    now = st.clock()

    def work(session):
        user_id = tokens.user_for_request(session, now)
        return recipients.register_device(session, user_id, data.platform.value, data.token, now)

    created = retry_on_conflict(work)
    body = {"platform": data.platform.value, "token": mask_token(data.token), "active": True, "created": created}
    return jsonify(body), 201 if created else 200


@bp.delete(DEVICES_PATH)
@declare("Remove this device or browser from push (on unsubscribing)", body=ClientDeviceRemove,
         body_example={"token": "fcm-token-1"}, responses={200: ClientDeviceRemovedOut}, auth=Auth.USER_TOKEN,
         tags=("in-app client",))
def remove_device():
    st = state()
    _, data = parse_body(ClientDeviceRemove)
    now = st.clock()
    with st.db.session() as session:
        user_id = tokens.user_for_request(session, now)
        removed = recipients.remove_device(session, user_id, data.token)
    return jsonify({"removed": removed})


# -- the inbox (user token) ------------------------------------------------------------------
def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"limit: a whole number from 1 to {MAX_LIMIT}",
                       field="limit")
    return int(raw)


def _cursor() -> inbox.Position | None:
    raw = request.args.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        if len(raw) > MAX_CURSOR_CHARS:
            raise inbox.CursorError(raw)
        return inbox.Position.decode(raw)
    except inbox.CursorError:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "cursor: not a next_cursor this inbox returned",
                       field="cursor") from None


def _user() -> str:
    st = state()
    with st.db.session() as session:
        return tokens.user_for_request(session, st.clock())


def _deliver_held(user_id: str) -> None:
    """Reading the inbox is a session: items held for the user's next session are released
    and delivered here, so they are in this very response. In-app delivery only marks the
    row visible. Whatever fails is still due in the database: the sweeper delivers it."""
    st = state()
    pending = sweeper.release_held_in_app(st.db, user_id, st.clock(), wake=False)
    try:
        while pending:
            st.dispatcher.deliver(pending[0])
            pending.pop(0)
    except Exception:  # noqa: BLE001 - durable: the rest is queued and due
        log.warning("held in-app delivery deferred to the worker", extra={"count": len(pending)}, exc_info=True)
        st.dispatcher.enqueue_many(pending)


@bp.get(CLIENT_PREFIX)
@declare("The inbox, newest first, with the unread count", query=InboxQuery, responses={200: InboxPage},
         auth=Auth.USER_TOKEN, tags=("in-app client",))
def list_inbox():
    st = state()
    user_id = _user()
    limit, cursor = _limit(), _cursor()
    _deliver_held(user_id)
    labels = st.policies.active().labels
    locale = locales.for_request(labels)
    with st.db.session() as session:
        rows, next_position = inbox.page(session, user_id, limit, cursor)
        unread = inbox.unread_count(session, user_id)
    return jsonify({"user_id": user_id, "unread": unread,
                    "items": [inbox.client_entry(r, labels.category(r.category, locale)) for r in rows],
                    "next_cursor": next_position.encode() if next_position else None})


def _engage(session, attempt_id: str, message_id: str, event: Engagement, now) -> tuple[ReceiptOutcome, list[str]]:
    receipt = Receipt(provider="inapp", provider_message_id=attempt_id, status=None,
                      event_id=f"{attempt_id}:{event.value}", occurred_at=now, raw={"event": event.value},
                      engagement=event, message_id=message_id)
    return ingest(session, INAPP_SOURCE, receipt, now, attempt_id=attempt_id)


@bp.post(f"{CLIENT_PREFIX}/read-all")
@declare("Mark every item read, except those that require acknowledgement", responses={200: ReadAllOut},
         auth=Auth.USER_TOKEN, tags=("in-app client",))
def read_all():
    """Records `read` for every unread visible item, through receipt ingestion, so an
    escalation waiting for `read` is cancelled exactly as by a single report. An item that
    requires acknowledgement (a legal notice) is left unread: only opening it or acknowledging
    it marks it, so its record never says "read" for a notice nobody opened."""
    st = state()
    changed: list[str] = []  # sent again as `item` events to every stream of the user
    now = st.clock()
    marked = left = 0
    with st.db.session() as session:
        user_id = tokens.user_for_request(session, now)
        for item in inbox.unread_items(session, user_id):
            if item.requires_acknowledgement:
                left += 1
                continue
            outcome, _ = _engage(session, item.id, item.message_id, Engagement.READ, now)
            marked += outcome == ReceiptOutcome.APPLIED
            changed.append(item.id)
        st.presence.touch(session, user_id, now)  # engaging is being active
    st.bus.publish_items(user_id, changed)
    st.bus.publish(user_id, Notice.UNREAD)
    return jsonify({"read": marked, "requires_acknowledgement": left})


@bp.post(f"{CLIENT_PREFIX}/<attempt_id>/{ItemAction.ARCHIVE.value}")
@declare("Archive an item", responses={200: ArchivedOut}, errors=[404], auth=Auth.USER_TOKEN, tags=("in-app client",))
def archive(attempt_id: str):
    st = state()
    now = st.clock()
    with st.db.session() as session:
        user_id = tokens.user_for_request(session, now)
        if not inbox.is_item_id(attempt_id) or not inbox.archive(session, user_id, attempt_id, now):
            raise ApiError(404, ErrorCode.NOT_FOUND, "id: no such inbox item", field="id")
    st.bus.publish_items(user_id, [attempt_id])
    return jsonify({"id": attempt_id, "archived": True})


@bp.post(f"{CLIENT_PREFIX}/<attempt_id>/<event>")
@declare("Report seen, read, clicked or acknowledged for an item", responses={200: EngagementOut},
         errors=[404], auth=Auth.USER_TOKEN, tags=("in-app client",))
def report(attempt_id: str, event: str):
    st = state()
    if event not in Engagement._value2member_map_:
        choices = ", ".join([*(e.value for e in Engagement), *(a.value for a in ItemAction)])
        raise ApiError(404, ErrorCode.NOT_FOUND, f"event: one of {choices}", field="event")
    now = st.clock()
    with st.db.session() as session:
        who = tokens.identify(session, tokens.token_from(request.headers.get("Authorization"),
                                                         request.args.get("token")), now)
        user_id = who.user_id
        item = inbox.find_item(session, user_id, attempt_id)
        if item is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, "id: no such inbox item", field="id")
        outcome, _ = _engage(session, item.id, item.message_id, Engagement(event), now)
        # Legal notices: who, when, through which channel; opened and acknowledged apart.
        if event == Engagement.ACKNOWLEDGED:
            confirmations.acknowledge(session, item.message_id, item.id, user_id, AckChannel.INBOX, who.token_id, now)
        elif event in (Engagement.READ, Engagement.CLICKED):
            confirmations.record_read(session, item.message_id, item.id, ReadChannel.INBOX_OPEN, who.token_id, now)
        st.presence.touch(session, user_id, now)  # engaging is being active
    st.bus.publish_items(user_id, [item.id])
    return jsonify({"id": attempt_id, "event": event, "outcome": outcome})
