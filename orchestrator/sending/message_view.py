"""The read side of a message as the API and the review pages show it: route, decision, attempts and the
receipt timeline. The queries are lifecycle/messages.py, attempts.py and receipt_events.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from channels import SPECS
from providers.masking import mask_email, mask_phone, mask_token

from ..domain.statuses import MessageStatus
from ..lifecycle import messages as message_rows
from ..lifecycle import receipt_events
from ..storage.models import Attempt, Message, ReceiptEvent
from .routing import public_route

ENGAGEMENT_FIELDS = ("seen_at", "read_at", "clicked_at", "acknowledged_at")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# How an address is masked, by the recipient field it comes from (the channel spec's
# address_field); a device token otherwise.
_MASKS = {"phone": mask_phone, "email": mask_email}


def mask_address(channel: str, address: str | None) -> str | None:
    if address is None:
        return None
    spec = SPECS.get(str(channel))
    return _MASKS.get(spec.address_field if spec else None, mask_token)(address)


def attempt_dict(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "step": a.step_index,
        "channel": a.channel,
        "mode": a.mode,
        "provider": a.provider,
        "to": mask_address(a.channel, a.address),
        "status": a.status,
        "sandboxed": a.sandboxed,
        "quiet": bool(a.quiet),  # an in-app entry without live display (over the cap, user in the app)
        "due_at": _iso(a.due_at) if a.released else None,
        "hold_until": _iso(a.hold_until),
        "tries": a.tries,
        "provider_message_id": a.provider_message_id,
        "error": {"class": a.error_class, "code": a.error_code, "detail": a.error_detail}
        if a.error_class or a.error_code else None,
        "sent_at": _iso(a.sent_at),
        # Set when the attempt's send had an unknown outcome (its worker stopped mid-send).
        "uncertain": {"at": _iso(a.uncertain_at), "count": a.uncertain_count, "resolution": a.uncertain_resolution}
        if a.uncertain_at else None,
        "delivered_at": _iso(a.delivered_at),
        **{f: _iso(getattr(a, f)) for f in ENGAGEMENT_FIELDS},
    }


def receipt_dict(r: ReceiptEvent) -> dict[str, Any]:
    return {
        "id": r.id,
        "attempt_id": r.attempt_id,
        "source": r.source,
        "status": r.status,
        "engagement": r.engagement,
        "error_code": r.error_code,
        "outcome": r.outcome,
        "provider_event_id": r.provider_event_id,
        "occurred_at": _iso(r.occurred_at),
        "received_at": _iso(r.received_at),
    }


def message_dict(session: Session, message: Message) -> dict[str, Any]:
    receipts = receipt_events.of_message(session, message.id)
    return {
        "id": message.id,
        "status": message.status,
        "user_id": message.user_id,
        "category": message.category,
        "urgency": message.urgency,
        "expires_at": _iso(message.expires_at),
        "send_at": _iso(message.send_at),
        "cancelled": {"at": _iso(message.cancelled_at), "by": message.cancelled_by}
        if message.cancelled_at else None,
        "metadata": message.meta,
        "created_at": _iso(message.created_at),
        "updated_at": _iso(message.updated_at),
        "erased_at": _iso(message.erased_at),
        "route": public_route(message.route) if message.status != MessageStatus.SCHEDULED else None,
        "decision": {
            "decided_at": _iso(message.decided_at),
            "policy_version": message.policy_version,
            "derived_facts": message.route.get("facts", {}),
        } if message.route else None,  # not decided yet: scheduled (or cancelled before its send_at)
        "attempts": [attempt_dict(a) for a in message.attempts],
        "receipts": [receipt_dict(r) for r in receipts],
    }


def summary_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "user_id": row.user_id, "category": row.category,
        "urgency": row.urgency, "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
        "send_at": _iso(row.send_at), "expires_at": _iso(row.expires_at),
        "policy_version": row.policy_version or None,
        "cancelled": {"at": _iso(row.cancelled_at), "by": row.cancelled_by} if row.cancelled_at else None,
        "metadata": row.meta,
    }


def titles(session: Session, message_ids: list[str]) -> dict[str, str]:
    """Per message id, its title ('' when it has none or the recipient was erased)."""
    contents = message_rows.contents(session, message_ids)
    return {message_id: title_of(content) for message_id, content in contents.items()}


def title_of(content: Any) -> str:
    title = content.get("title") if isinstance(content, dict) else None
    return title if isinstance(title, str) else ""
