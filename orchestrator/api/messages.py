"""Send and read messages; explain a route without sending."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from providers.masking import mask_email, mask_phone, mask_token

from .. import metrics
from ..app_state import state
from ..auth import require_scope
from ..domain.statuses import Scope
from ..errors import ApiError, ErrorCode
from ..schemas import SendRequest
from ..services import message_view, messages
from ..services.messages import check_against_policy, decide_route
from .declare import declare
from .models import ExplainOut, MessageAccepted, MessageOut
from .requests import parse_body

bp = Blueprint("messages", __name__, url_prefix="/v1")

IDEMPOTENCY_HEADER = "Idempotency-Key"
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
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (0 < len(key) <= 255):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "Idempotency-Key must be 1 to 255 characters",
                       field=IDEMPOTENCY_HEADER)
    result = messages.accept(
        st.db, st.policies.active(), req, g.api_key, raw_body=raw, idempotency_key=key,
        now=st.clock(), max_content_chars=st.settings.max_content_chars,
        deadline_seconds=st.settings.attempt_deadline_seconds, presence=st.presence,
    )
    if not result.replayed and result.status_code == 202:
        metrics.MESSAGES_ACCEPTED.labels(req.category).inc()
    response = jsonify(result.body)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, result.status_code


@bp.get("/messages/<message_id>")
@declare("A message with its route, decision, attempts and receipt timeline", responses={200: MessageOut},
         errors=[404], tags=("messages",))
@require_scope(Scope.READ, Scope.COMPLIANCE_READ)
def get_message(message_id: str):
    with state().db.session() as session:
        message = message_view.load_message(session, message_id)
        if message is None or not _visible(message):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no message with id '{message_id}'", field="id")
        return jsonify(message_view.message_dict(session, message))


@bp.post("/routing/explain")
@declare("The plan for a send request, with reasons and the facts used; nothing is sent", body=SendRequest,
         body_example=SEND_EXAMPLE,
         responses={200: ExplainOut}, tags=("messages",))
@require_scope(Scope.SEND, Scope.READ, Scope.COMPLIANCE_READ)
def explain_route():
    st = state()
    _, req = parse_body(SendRequest)
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
