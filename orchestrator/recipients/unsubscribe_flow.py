"""Applying a one-click unsubscribe: the token's category off by email for its user."""

from __future__ import annotations

import logging
from enum import StrEnum

from policies import Policy
from providers.base import Channel

from ..storage.db import Database
from ..storage.models import Recipient
from . import preferences

log = logging.getLogger("orchestrator.unsubscribe")


class UnsubscribeOutcome(StrEnum):
    UNSUBSCRIBED = "unsubscribed"      # the category is now off by email
    ALREADY = "already"                # it already was
    LOCKED = "locked"                  # the active policy locks the category: nothing changed
    NO_RECIPIENT = "no_recipient"      # the profile is gone: nothing to change


def unsubscribe(db: Database, policy: Policy, user_id: str, category: str) -> UnsubscribeOutcome:
    if category in policy.locked_categories:
        return UnsubscribeOutcome.LOCKED
    with db.session() as session:
        row = session.get(Recipient, user_id, with_for_update=True)
        if row is None:
            outcome = UnsubscribeOutcome.NO_RECIPIENT
        else:
            outcome = UnsubscribeOutcome.UNSUBSCRIBED if preferences.turn_off(row, category, Channel.EMAIL.value) \
                else UnsubscribeOutcome.ALREADY
    log.info("one-click unsubscribe", extra={"category": category, "outcome": outcome.value})
    return outcome
