"""Re-explain a past decision exactly: the route stored on the message, and the same stored
facts run again through the policy version that decided it. The two must match; when they
do not (an engine change since), ``differences`` names the parts that moved.

Service API: ``explain_message(session, store, message_id) -> dict`` (NotFound ``not_found``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

import policies
from policies import MessageFacts, RecipientFacts

from ..domain.errors import ErrorCode, NotFound
from ..storage.models import Message

COMPARED_KEYS = ("policy_version", "steps", "excluded", "suppressed", "suppressed_reasons", "trace", "requires",
                 "facts")


def replay(store: Any, message: Message) -> dict[str, Any]:
    """The plan for the message's stored facts under its stored policy version, as JSON."""
    facts = message.decision_facts or {}
    policy = store.get(message.policy_version)
    plan = policies.decide(policy, MessageFacts.from_dict(facts["message"]),
                           RecipientFacts.from_dict(facts["recipient"]), datetime.fromisoformat(facts["now"]))
    return json.loads(json.dumps(plan.to_dict(), default=str))  # the same JSON shape as the stored route


def explain_message(session: Session, store: Any, message_id: str) -> dict[str, Any]:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(ErrorCode.NOT_FOUND, f"no message with id '{message_id}'", field="id")
    stored = message.route or {}
    try:
        replayed = replay(store, message)
        error = None
    except (LookupError, KeyError, TypeError, ValueError) as exc:
        replayed, error = None, f"cannot replay: {exc}"
    differences = [] if replayed is None else [k for k in COMPARED_KEYS if stored.get(k) != replayed.get(k)]
    return {
        "message_id": message.id,
        "category": message.category,
        "created_at": message.created_at.isoformat(),
        "decided_at": message.decided_at.isoformat() if message.decided_at else None,
        "policy_version": message.policy_version,
        "facts": message.decision_facts,
        "stored": stored,
        "replayed": replayed,
        "matches": replayed is not None and not differences,
        "differences": differences,
        "error": error,
    }
