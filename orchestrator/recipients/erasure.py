"""Erasing a recipient (DELETE /v1/recipients/{user_id}), in one transaction:

- the profile, its addresses and devices, and the user's in-app tokens are deleted;
- every message to the user keeps its decision but loses what identifies or reaches the
  person: content (title, body, html, links, data) and per-message address overrides are
  emptied, attempt addresses cleared, receipts' raw provider payloads (which carry addresses)
  replaced, and the stored decision facts reduced to masked forms (sending/stored_facts.py),
  so `GET /v1/messages/{id}/explain` still replays the decision exactly;
- attempts not yet handed to a worker are cancelled (the claim is a conditional UPDATE on
  `queued`, so a worker can never send an erased message afterwards), and so are messages
  still waiting for their `send_at` (the release claims only `scheduled` ones) and the
  reminder/escalation timers of notices awaiting acknowledgement;
- an audit entry (`recipient.erase`) records who erased whom, when and how much.

The user id itself stays on the messages and in the audit entry: it is the caller's own
identifier, and without it the erasure could not be shown to have happened. Metadata, which
the caller supplies for its own correlation, is kept."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..audit import log as audit
from ..domain.statuses import derive_message_status
from ..lifecycle import attempts, messages, receipt_events, transitions
from ..sending import confirmations
from ..sending.stored_facts import redact_stored
from ..storage.models import Device, InAppToken, Recipient

ERASE_ACTION = "recipient.erase"
REDACTED_RAW = {"redacted": "recipient erased"}
ERASED_ERROR_CODE = "recipient_erased"
BATCH = 500


@dataclass
class ErasureResult:
    user_id: str
    erased: bool
    profile_deleted: bool
    devices_deleted: int
    inapp_tokens_deleted: int
    messages_redacted: int
    attempts_cancelled: int
    audit_entry_id: int

    def to_dict(self) -> dict:
        return asdict(self)


def erase_recipient(session: Session, user_id: str, *, actor: str, now: datetime, reason: str = "") -> ErasureResult:
    """Idempotent: erasing an unknown or already erased user succeeds and says so in counts."""
    devices = session.execute(delete(Device).where(Device.user_id == user_id)).rowcount or 0
    profile = session.execute(delete(Recipient).where(Recipient.user_id == user_id)).rowcount or 0
    tokens = session.execute(delete(InAppToken).where(InAppToken.user_id == user_id)).rowcount or 0
    cancelled = attempts.cancel_queued_of_user(session, user_id, now, ERASED_ERROR_CODE)
    attempts.forget_addresses_of_user(session, user_id)
    messages.cancel_scheduled_of_user(session, user_id, now, ERASED_ERROR_CODE)
    confirmations.stop_timers_of_user(session, user_id)
    message_ids = messages.ids_of_user(session, user_id)
    for start in range(0, len(message_ids), BATCH):
        _redact_messages(session, message_ids[start:start + BATCH], now, statuses=cancelled > 0)
    entry = audit.append(session, actor=actor, action=ERASE_ACTION, subject=user_id, now=now, reason=reason,
                         detail={"profile_deleted": bool(profile), "devices_deleted": devices,
                                 "inapp_tokens_deleted": tokens, "messages_redacted": len(message_ids),
                                 "attempts_cancelled": cancelled})
    return ErasureResult(user_id, True, bool(profile), devices, tokens, len(message_ids), cancelled, entry.id)


def _redact_messages(session: Session, ids: list[str], now: datetime, *, statuses: bool) -> None:
    receipt_events.redact_raw(session, ids, REDACTED_RAW)
    for message in messages.by_ids(session, ids):
        message.content = {}
        message.overrides = {}
        message.decision_facts = redact_stored(message.decision_facts)
        if message.erased_at is None:
            message.erased_at = now
        if statuses and message.attempts:
            # Erasure records no status callbacks (it never did); `unacknowledged` stays final.
            derived = transitions.after_advance(message.status, derive_message_status(message.attempts))
            transitions.change_status(session, message, derived, now, callback=False)
        message.updated_at = now
