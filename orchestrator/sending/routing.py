"""Deciding a message: check a request against the policy, decide its route on the
recipient's facts, and build the rows of the decided message (nothing written until
`insert_planned`). Shared by a single send and a batch (sending/messages.py, batch.py) and by
a scheduled message coming due (scheduling.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

import policies
from policies import Policy
from providers.base import Channel

from ..content import templates
from ..domain.errors import ErrorCode, Invalid
from ..domain.statuses import MessageStatus
from ..lifecycle.planning import build_attempts
from ..schemas import SendRequest
from ..storage.models import Attempt, Message, new_id
from . import confirmations
from .facts import message_facts, recipient_facts, with_in_app_counts, with_message_counts
from .stored_facts import stored_facts

ROUTE_PUBLIC_KEYS = ("policy_version", "steps", "excluded", "suppressed", "suppressed_reasons",
                     "requires", "confirmation", "trace")


def check_against_policy(policy: Policy, req: SendRequest, now: datetime, max_content_chars: int) -> None:
    if not policy.has_category(req.category):
        known = ", ".join(sorted(policy.categories))
        raise Invalid(ErrorCode.UNKNOWN_CATEGORY,
                      f"category: '{req.category}' is not a category of policy {policy.version}; "
                      f"known categories: {known}", field="category")
    if req.expires_at is not None and req.expires_at <= now:
        raise Invalid(ErrorCode.ALREADY_EXPIRED,
                      f"expires_at: {req.expires_at.isoformat()} is already in the past", field="expires_at")
    size = len(req.content.title) + len(req.content.body)
    if size > max_content_chars:
        raise Invalid(ErrorCode.CONTENT_TOO_LARGE,
                      f"content.body: title and body are {size} characters; the limit is {max_content_chars}",
                      field="content.body")


def decide_route(session: Session, policy: Policy, req: SendRequest, now: datetime, presence=None, *,
                 recipient_rows: list | None = None):
    """The plan for a request. The in-app counters cost a query; unless the policy's
    conditions read them they only feed the in-app cap, which can only remove in-app. So
    decide without them first, and count (and decide again) only when in-app is planned."""
    counted = policy.conditions_read_in_app_counts
    rfacts = recipient_facts(session, req.recipient, now, presence, counts=counted, rows=recipient_rows)
    mfacts = message_facts(req)
    plan = policies.decide(policy, mfacts, rfacts, now)
    if not counted and any(step.channel == Channel.IN_APP for step in plan.steps):
        rfacts = with_in_app_counts(session, rfacts, now)
        plan = policies.decide(policy, mfacts, rfacts, now)
    # The same for the cross-channel cap: counted only for a capped category whose plan sends.
    if policy.conditions_read_message_counts or (plan.steps and req.category in policy.capped_categories):
        rfacts = with_message_counts(session, policy, rfacts, now)
        plan = policies.decide(policy, mfacts, rfacts, now)
    return plan, mfacts, rfacts


def public_route(plan_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: plan_dict[k] for k in ROUTE_PUBLIC_KEYS if k in plan_dict}


@dataclass
class Planned:
    """One message decided now: its row, its attempt rows, the attempts due now (marked as
    announced) and the 202 body. Written by the caller, alone (accept) or many at once."""

    message: dict[str, Any] | None  # None: the row exists (a scheduled message coming due)
    attempts: list[dict[str, Any]]
    due: list[str]
    body: dict[str, Any]
    confirmation: dict[str, Any] | None = None  # a notice that requires read confirmation


def insert_planned(conn, planned: list[Planned]) -> None:
    """Writes decided messages (messages, attempts, confirmation rows) with one multi-row
    INSERT per table: a single send, a batch, or attempts of a scheduled message coming due
    (its message row exists: `Planned.message` is None)."""
    if messages := [p.message for p in planned if p.message is not None]:
        conn.execute(insert(Message.__table__), messages)
    if attempts := [a for p in planned for a in p.attempts]:
        conn.execute(insert(Attempt.__table__), attempts)
    if rows := [p.confirmation for p in planned if p.confirmation is not None]:
        confirmations.insert_rows(conn, rows)


def message_row(req: SendRequest, api_key_id: str | None, message_id: str, now: datetime, *, status: str,
                marketing: bool, policy_version: str, route: dict[str, Any],
                decision_facts: dict[str, Any]) -> dict[str, Any]:
    """The `messages` row of a request: decided now (plan_message) or scheduled (undecided)."""
    return {
        "id": message_id, "api_key_id": api_key_id, "user_id": req.recipient.user_id,
        "category": req.category, "urgency": req.urgency.value, "status": status, "marketing": marketing,
        "content": templates.stored_content(req.content), "metadata": req.metadata,
        "overrides": req.recipient.model_dump(exclude_none=True, exclude={"user_id"}),
        "expires_at": req.expires_at, "send_at": req.send_at, "policy_version": policy_version,
        "route": route, "decision_facts": decision_facts, "decided_at": now, "created_at": now, "updated_at": now,
    }


def plan_message(session: Session, policy: Policy, req: SendRequest, api_key_id: str | None, now: datetime,
                 deadline_seconds: int, presence=None, *, message_id: str | None = None,
                 recipient_rows: list | None = None) -> Planned:
    """Decides a request and builds its rows (nothing written). Shared by a single send, a
    batch and a scheduled message coming due (which keeps its id)."""
    plan, mfacts, rfacts = decide_route(session, policy, req, now, presence, recipient_rows=recipient_rows)
    plan_dict = plan.to_dict()
    message_id = message_id or new_id()
    attempts = build_attempts(message_id, req.recipient.user_id, req.expires_at, plan, rfacts, now,
                              deadline_seconds)
    status = MessageStatus.SUPPRESSED if plan.suppressed or not attempts else MessageStatus.ACCEPTED
    due = [a for a in attempts if a["released"] and a["due_at"] is not None and a["due_at"] <= now]
    for a in due:
        a["enqueued_at"] = now  # announced right after the commit (no second transaction)
    row = message_row(
        req, api_key_id, message_id, now, status=status.value,
        # The email carries one-click unsubscribe (the policy's `unsubscribable`).
        marketing=bool(plan.facts.get("category.unsubscribable", False)),
        policy_version=plan.policy_version, route=plan_dict,
        decision_facts=stored_facts(mfacts, rfacts, now.isoformat()),  # no addresses, no text
    )
    body = {"id": message_id, "status": status.value, "route": public_route(plan_dict)}
    confirmation = confirmations.plan_row(message_id, req.recipient.user_id, plan_dict, bool(attempts), now)
    return Planned(row, attempts, [a["id"] for a in due], body, confirmation)
