"""Cancelling a message (POST /v1/messages/{id}/cancel).

Runs under the message's row lock (lifecycle.plans), the same lock a worker's
claim takes first (dispatch/deliver.py `claim`) and a scheduled message's decision takes
(scheduling.py): so a cancel and a claim never interleave. Whatever is still `queued` is
cancelled; an attempt already claimed (`sending`) or handed over is left to finish — it is
not ours to take back. A scheduled message is cancelled before it is ever decided. Who
cancelled it is kept on the message and in the audit log, in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from providers.base import AttemptStatus

from ..audit import log as audit
from ..domain.statuses import MessageStatus
from ..lifecycle import plan_progress, plans, transitions

CANCEL_ACTION = "message.cancel"


class NotFound(Exception):
    pass


class AlreadyFinal(Exception):
    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def cancel(session, message_id: str, api_key, now: datetime, *, visible, reason: str = "") -> dict[str, Any]:
    """Cancels what is not yet sent. `visible(message)` says whether this key may see it.
    Raises NotFound or AlreadyFinal; returns what was cancelled."""
    message = plans.load_orm(session, message_id, now)
    if message is None or not visible(message):
        raise NotFound(message_id)
    previous = message.status
    pending = [a for a in message.attempts if a.status == AttemptStatus.QUEUED]
    if previous != MessageStatus.SCHEDULED and not pending:
        sending = any(a.status == AttemptStatus.SENDING for a in message.attempts)
        why = ("every remaining attempt is already being sent" if sending
               else f"the message is {previous}; nothing is left to send")
        raise AlreadyFinal(previous, why)
    by = {"key_id": api_key.id, "key_name": api_key.name}
    who = f"cancelled by API key '{api_key.name}'"
    for a in pending:
        a.status, a.error_detail = AttemptStatus.CANCELLED, who
    message.cancelled_at = now
    message.cancelled_by = by
    if previous == MessageStatus.SCHEDULED:
        transitions.change_status(session, message, MessageStatus.CANCELLED, now)
    else:
        plan_progress.advance(message, now, session)  # derives the status, posts the callback
    audit.append(session, actor=api_key.name, action=CANCEL_ACTION, subject=f"message:{message_id}", now=now,
                 detail={"key_id": api_key.id, "previous_status": previous, "status": message.status,
                         "cancelled_attempts": [a.id for a in pending]}, reason=reason)
    return {"id": message_id, "status": message.status, "previous_status": previous,
            "cancelled_attempts": [a.id for a in pending],
            "cancelled": {"at": now.isoformat(), "by": by}}
