"""The read side of a message: route, decision, attempts and the receipt timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from providers.base import Channel
from providers.masking import mask_email, mask_phone, mask_token

from ..storage.models import Attempt, Message, ReceiptEvent
from .messages import public_route

ENGAGEMENT_FIELDS = ("seen_at", "read_at", "clicked_at", "acknowledged_at")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def mask_address(channel: str, address: str | None) -> str | None:
    if address is None:
        return None
    if channel == Channel.SMS:
        return mask_phone(address)
    if channel == Channel.EMAIL:
        return mask_email(address)
    return mask_token(address)


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
        "due_at": _iso(a.due_at) if a.released else None,
        "hold_until": _iso(a.hold_until),
        "tries": a.tries,
        "provider_message_id": a.provider_message_id,
        "error": {"class": a.error_class, "code": a.error_code, "detail": a.error_detail}
        if a.error_class or a.error_code else None,
        "sent_at": _iso(a.sent_at),
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


def load_message(session: Session, message_id: str) -> Message | None:
    return session.scalar(
        select(Message).where(Message.id == message_id).options(selectinload(Message.attempts))
    )


def message_dict(session: Session, message: Message) -> dict[str, Any]:
    receipts = session.scalars(
        select(ReceiptEvent).where(ReceiptEvent.message_id == message.id).order_by(ReceiptEvent.id)
    ).all()
    return {
        "id": message.id,
        "status": message.status,
        "user_id": message.user_id,
        "category": message.category,
        "urgency": message.urgency,
        "expires_at": _iso(message.expires_at),
        "metadata": message.meta,
        "created_at": _iso(message.created_at),
        "updated_at": _iso(message.updated_at),
        "erased_at": _iso(message.erased_at),
        "route": public_route(message.route),
        "decision": {
            "decided_at": _iso(message.decided_at),
            "policy_version": message.policy_version,
            "derived_facts": message.route.get("facts", {}),
        },
        "attempts": [attempt_dict(a) for a in message.attempts],
        "receipts": [receipt_dict(r) for r in receipts],
    }
