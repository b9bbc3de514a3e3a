"""Send and read messages; explain a route without sending."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, g, jsonify, request

from providers.base import Channel
from providers.masking import mask_email, mask_phone, mask_token

from .. import metrics, request_log
from ..access.auth import require_scope
from ..app_state import state
from ..content import templates
from ..domain.statuses import MessageStatus, Scope
from ..errors import ApiError, ErrorCode
from ..lifecycle import messages as message_rows
from ..schemas import SendRequest
from ..sending import batch, cancellation, message_view, messages
from ..sending.routing import check_against_policy, decide_route
from .declare import declare
from .models import (
    BatchIn,
    BatchOut,
    CancelIn,
    CancelOut,
    ExplainOut,
    MessageAccepted,
    MessageList,
    MessageListQuery,
    MessageOut,
)
from .pagination import Pager, iso_datetime_arg, reject_unknown_args
from .recipients import check_user_id
from .requests import parse_body, raw_json_object

bp = Blueprint("messages", __name__, url_prefix="/v1")

IDEMPOTENCY_HEADER = "Idempotency-Key"
# A replay answers as the first request did (its stored answer was a 202).
ACCEPT_STATUS = {messages.AcceptOutcome.ACCEPTED: 202, messages.AcceptOutcome.REPLAYED: 202}
SEND_EXAMPLE = {"recipient": {"user_id": "u-1"}, "category": "security_alert", "urgency": "critical",
                "content": {"title": "New sign-in", "body": "A new device signed in to your account."}}


@bp.post("/messages")
@declare("Send a message: the policy picks the channels", body=SendRequest, body_example=SEND_EXAMPLE,
         responses={202: MessageAccepted},
         headers={IDEMPOTENCY_HEADER: "1-255 characters; a retry with the same key and body answers as the first"},
         errors=[409], tags=("messages",))
@require_scope(Scope.SEND)
def send_message():
    st = state()
    raw, req = parse_body(SendRequest)
    key = _idempotency_key()
    result = messages.accept(
        st.db, st.policies.active(), req, g.api_key, raw_body=raw, idempotency_key=key,
        now=st.clock(), max_content_chars=st.settings.max_content_chars,
        deadline_seconds=st.settings.attempt_deadline_seconds, presence=st.presence,
        max_ahead_seconds=st.settings.schedule_max_ahead_seconds, writer=st.send_writer,
    )
    if result.outcome is messages.AcceptOutcome.ACCEPTED:
        metrics.MESSAGES_ACCEPTED.labels(req.category).inc()
        request_log.accepted(result.body["id"], result.body.get("status", ""))
    response = jsonify(result.body)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, ACCEPT_STATUS[result.outcome]


BATCH_MAX_BODY_BYTES = 4 * 1024 * 1024  # 1,000 items with their variables; MAX_BODY_BYTES if larger


@bp.post("/messages/batch")
@declare("Send to up to 1,000 recipients sharing category, content (or a template) and timing; a result per "
         "item (id and status, or an error naming recipients[i].field); idempotent as a whole",
         body=BatchIn, responses={202: BatchOut},
         headers={IDEMPOTENCY_HEADER: "1-255 characters; a retry with the same key and body answers as the first"},
         errors=[409], tags=("messages",))
@require_scope(Scope.SEND)
def send_batch():
    """Up to 1,000 recipients sharing category, urgency, content (or template) and timing;
    a result per item (id and status, or an error naming the item and field)."""
    st = state()
    request.max_content_length = max(st.settings.max_body_bytes, BATCH_MAX_BODY_BYTES)
    raw, body = raw_json_object()
    key = _idempotency_key()
    result = batch.accept_batch(
        st.db, st.policies.active(), body, g.api_key, raw_body=raw, idempotency_key=key, now=st.clock(),
        limits=batch.BatchLimits(max_content_chars=st.settings.max_content_chars,
                                 deadline_seconds=st.settings.attempt_deadline_seconds,
                                 max_ahead_seconds=st.settings.schedule_max_ahead_seconds,
                                 link_schemes=st.settings.action_url_schemes),
        presence=st.presence)
    if not result.replayed and result.body.get("accepted"):
        metrics.MESSAGES_ACCEPTED.labels(str(body.get("category"))[:64]).inc(result.body["accepted"])
    response = jsonify(result.body)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, ACCEPT_STATUS[result.outcome]


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (0 < len(key) <= 255):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "Idempotency-Key must be 1 to 255 characters",
                       field=IDEMPOTENCY_HEADER)
    return key


@bp.get("/messages/<message_id>")
@declare("A message with its route, decision, attempts and receipt timeline", responses={200: MessageOut},
         errors=[404], tags=("messages",))
@require_scope(Scope.READ, Scope.COMPLIANCE_READ)
def get_message(message_id: str):
    with state().db.session() as session:
        message = message_rows.load_with_attempts(session, message_id)
        if message is None or not _visible(message):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no message with id '{message_id}'", field="id")
        return jsonify(message_view.message_dict(session, message))


MESSAGE_PAGER = Pager(message_rows.LIST_ORDER, (datetime, str))
LIST_ARGS = {"status", "category", "channel", "user_id", "from", "to", "idempotency_key", "limit", "cursor"}


@bp.get("/messages")
@declare("Messages, newest first, filtered (status, category, channel sent on, user, created from/to), "
         "in cursor pages: a key sees what it sent; compliance and admin keys see all",
         query=MessageListQuery, responses={200: MessageList}, tags=("messages",))
@require_scope(Scope.READ, Scope.COMPLIANCE_READ)
def list_messages():
    """Newest first. A key sees the messages it sent; compliance and admin keys see all."""
    reject_unknown_args(LIST_ARGS)
    page = MESSAGE_PAGER.from_request()
    filters = _list_filters()
    with state().db.session() as session:
        rows = message_rows.list_rows(session, filters, lambda query: MESSAGE_PAGER.apply(query, page))
    rows, next_cursor = MESSAGE_PAGER.finish(rows, page, lambda r: (r.created_at, r.id))
    return jsonify({"messages": [message_view.summary_dict(r) for r in rows], "next_cursor": next_cursor})


def _list_filters() -> message_rows.ListFilters:
    args = request.args
    statuses: tuple[str, ...] = ()
    if "status" in args:
        statuses = tuple(s.strip() for s in args["status"].split(",") if s.strip())
        unknown = [s for s in statuses if s not in MessageStatus._value2member_map_]
        if unknown or not statuses:
            known = ", ".join(MessageStatus)
            raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                           f"status: {unknown[0][:40] if unknown else args['status'][:40]!r} is not a message "
                           f"status; one or more (comma-separated) of {known}", field="status")
    category = _text_arg("category", 64)
    channel = _text_arg("channel", 16)
    if channel is not None and channel not in Channel._value2member_map_:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"channel: {channel!r} is not a channel; one of {', '.join(Channel)}", field="channel")
    user_id = check_user_id(args["user_id"]) if "user_id" in args else None
    created_from, created_to = iso_datetime_arg("from"), iso_datetime_arg("to")
    if created_from and created_to and created_from >= created_to:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "to: must be after from", field="to")
    sees_all = bool(g.api_key.scope_set & {Scope.COMPLIANCE_READ.value, Scope.ADMIN.value})
    return message_rows.ListFilters(
        api_key_id=None if sees_all else g.api_key.id, statuses=statuses, category=category, user_id=user_id,
        created_from=created_from, created_to=created_to, idempotency_key=_text_arg("idempotency_key", 255),
        channel=channel)


def _text_arg(name: str, max_chars: int) -> str | None:
    value = request.args.get(name)
    if value is None:
        return None
    if not value or len(value) > max_chars:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{name}: 1 to {max_chars} characters", field=name)
    return value


@bp.post("/messages/<message_id>/cancel")
@declare("Cancel every attempt not yet sent (or the scheduled message); who cancelled it is recorded",
         body=CancelIn, body_required=False, responses={200: CancelOut}, errors=[404, 409], tags=("messages",))
@require_scope(Scope.SEND)
def cancel_message(message_id: str):
    """Cancels every attempt not yet sent (or the scheduled message); 409 once it is final."""
    _, body = parse_body(CancelIn, allow_empty=True)
    st = state()
    try:
        with st.db.session() as session:
            result = cancellation.cancel(session, message_id, g.api_key, st.clock(), visible=_visible,
                                         reason=body.reason.strip())
    except cancellation.NotFound:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no message with id '{message_id}'", field="id") from None
    except cancellation.AlreadyFinal as exc:
        raise ApiError(409, ErrorCode.MESSAGE_FINAL, f"id: cannot cancel: {exc.why}", field="id") from None
    return jsonify(result)


@bp.post("/routing/explain")
@declare("The plan for a send request, with reasons and the facts used; nothing is sent", body=SendRequest,
         body_example=SEND_EXAMPLE,
         responses={200: ExplainOut}, tags=("messages",))
@require_scope(Scope.SEND, Scope.READ, Scope.COMPLIANCE_READ)
def explain_route():
    st = state()
    _, req = parse_body(SendRequest)
    req = templates.resolve(st.db, req, st.settings.max_content_chars)
    policy = st.policies.active()
    now = st.clock()
    check_against_policy(policy, req, now, st.settings.max_content_chars)
    with st.db.session() as session:
        plan, mfacts, rfacts = decide_route(session, policy, req, now, st.presence)
    body = plan.to_dict()
    body["inputs"] = {"message": mfacts.to_dict(), "recipient": _masked_facts(rfacts.to_dict())}
    return jsonify(body)


def _visible(message) -> bool:
    """A key sees the messages it sent; compliance and admin keys see all."""
    scopes = g.api_key.scope_set
    return message.api_key_id == g.api_key.id or bool(
        scopes & {Scope.COMPLIANCE_READ.value, Scope.ADMIN.value}
    )


def _masked_facts(facts: dict) -> dict:
    facts = dict(facts)
    facts["email"] = mask_email(facts.get("email")) or None
    facts["phone"] = mask_phone(facts.get("phone")) or None
    facts["devices"] = [{**d, "token": mask_token(d["token"])} for d in facts.get("devices", [])]
    return facts
