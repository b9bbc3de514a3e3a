"""Scheduled sends (`send_at`). A scheduled message is committed undecided (status
`scheduled`, no route, no attempts) and decided when its time comes, with the facts of that
moment: presence, lifecycle, consents, quiet hours (the policy's own deferral), the policy
version active then.

Durability: the sweeper (dispatch/runtime.py `sweep_once`) calls `release_due` on every pass.
Each due message is claimed with a conditional UPDATE (`status = 'scheduled'` → `accepted`)
in the same transaction that writes its decision and attempts: a crash before the commit
leaves it scheduled for the next pass, and a second sweeper (or a concurrent cancel) finds
nothing to claim, so it is never lost and never decided twice."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update

from ..content.templates import content_from_stored
from ..domain.errors import DomainError, ErrorCode, Invalid
from ..domain.statuses import MessageStatus
from ..lifecycle.transitions import checked
from ..schemas import RecipientRef, SendRequest, Urgency
from ..storage.db import announce
from ..storage.models import Message, new_id
from .routing import Planned, check_against_policy, insert_planned, message_row, plan_message

log = logging.getLogger("orchestrator.scheduling")

BATCH = 200  # scheduled messages decided per sweeper pass at most

_CLAIM = (update(Message)
          .where(Message.id == bindparam("message_id"), Message.status == MessageStatus.SCHEDULED.value,
                 Message.send_at <= bindparam("now"))
          .values(status=checked(MessageStatus.SCHEDULED, MessageStatus.ACCEPTED).value, updated_at=bindparam("now"))
          .execution_options(synchronize_session=False))
_ROW = select(Message.id, Message.api_key_id, Message.user_id, Message.category, Message.urgency,
              Message.content, Message.meta, Message.overrides, Message.expires_at,
              Message.send_at).where(Message.id == bindparam("message_id"))


def is_scheduled(req: SendRequest, now: datetime) -> bool:
    """A send_at not after now (clock skew, a retry) is sent now."""
    return req.send_at is not None and req.send_at > now


def check_send_at(req: SendRequest, now: datetime, max_ahead_seconds: int | None) -> None:
    if req.send_at is None:
        return
    if max_ahead_seconds is not None and req.send_at > now + timedelta(seconds=max_ahead_seconds):
        days = max_ahead_seconds / 86400
        raise Invalid(ErrorCode.VALIDATION_ERROR,
                      f"send_at: at most {days:g} days ahead ({max_ahead_seconds} s); "
                      f"got {req.send_at.isoformat()}", field="send_at")
    if req.expires_at is not None and req.send_at >= req.expires_at:
        raise Invalid(ErrorCode.VALIDATION_ERROR,
                      f"send_at: {req.send_at.isoformat()} must be before expires_at "
                      f"{req.expires_at.isoformat()}", field="send_at")


def scheduled_message(req: SendRequest, api_key_id: str | None, now: datetime, message_id: str | None = None):
    """The undecided row of a scheduled message (a routing.Planned)."""

    message_id = message_id or new_id()
    row = message_row(req, api_key_id, message_id, now, status=MessageStatus.SCHEDULED.value, marketing=False,
                      policy_version="", route={}, decision_facts={})
    body = {"id": message_id, "status": MessageStatus.SCHEDULED.value, "route": None,
            "send_at": req.send_at.isoformat()}
    return Planned(row, [], [], body)


def _request(row) -> SendRequest:
    """The stored request, rebuilt without validating again: it was validated on accept, and
    a setting changed since (an allowed link scheme) must not strand the message."""
    overrides = row.overrides or {}
    return SendRequest.model_construct(
        recipient=RecipientRef.model_construct(user_id=row.user_id, email=overrides.get("email"),
                                               phone=overrides.get("phone"), timezone=overrides.get("timezone")),
        category=row.category, urgency=Urgency(row.urgency),
        content=content_from_stored(row.content or {}),
        expires_at=row.expires_at, send_at=row.send_at, metadata=row.meta or {},
    )


def due_ids(session, now: datetime, limit: int = BATCH) -> list[str]:
    return list(session.scalars(
        select(Message.id).where(Message.status == MessageStatus.SCHEDULED.value, Message.send_at <= now)
        .order_by(Message.send_at).limit(limit)))


def release_due(state, now: datetime) -> int:
    """Decides every scheduled message whose time has come; returns how many it decided."""
    with state.db.session() as session:
        ids = due_ids(session, now)
    decided = 0
    for message_id in ids:
        try:
            decided += release_one(state, message_id, now)
        except Exception:  # noqa: BLE001 - it stays scheduled; the next pass tries again
            log.exception("scheduled message not decided", extra={"message_id": message_id})
    return decided


def release_one(state, message_id: str, now: datetime) -> bool:
    """Claim, decide and write in one transaction. False when someone else claimed it (or
    cancelled it) first."""
    from ..lifecycle.status_callbacks import record_status_change

    settings = state.settings
    with state.db.session() as session:
        if not session.execute(_CLAIM, {"message_id": message_id, "now": now}).rowcount:
            return False
        row = session.execute(_ROW, {"message_id": message_id}).one()
        req = _request(row)
        policy = state.policies.active()
        values: dict[str, Any]
        due: list[str] = []
        try:
            check_against_policy(policy, req, now, settings.max_content_chars)
        except DomainError as exc:
            # The world changed since accept (the message expired while waiting, the active
            # policy dropped its category): it ends here, saying why, and is never sent.
            status = (MessageStatus.EXPIRED if exc.code == ErrorCode.ALREADY_EXPIRED
                      else MessageStatus.SUPPRESSED)
            values = {"status": status.value, "policy_version": policy.version, "decided_at": now,
                      "route": {"policy_version": policy.version, "steps": [], "excluded": [],
                                "suppressed": True, "suppressed_reasons": [exc.message]}}
        else:
            planned = plan_message(session, policy, req, row.api_key_id, now, settings.attempt_deadline_seconds,
                                   state.presence, message_id=message_id)
            values = {k: planned.message[k] for k in ("status", "marketing", "policy_version", "route",
                                                      "decision_facts", "decided_at")}
            planned.message = None  # the row exists: it is updated below
            insert_planned(session.connection(), [planned])
            due = planned.due
        values["updated_at"] = now
        checked(MessageStatus.SCHEDULED, MessageStatus(values["status"]))
        session.execute(update(Message).where(Message.id == message_id).values(values)
                        .execution_options(synchronize_session=False))
        record_status_change(session, _Changed(row, values["status"]), MessageStatus.SCHEDULED.value, now)
        announce(session, due)
    log.info("scheduled message decided", extra={"message_id": message_id, "status": values["status"]})
    return True


class _Changed:
    """What a status callback needs to know about a message."""

    def __init__(self, row, status: str) -> None:
        self.id, self.api_key_id, self.category, self.status = row.id, row.api_key_id, row.category, status
