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


class Outcome(StrEnum):
    UNSUBSCRIBED = "unsubscribed"      # the category is now off by email
    ALREADY = "already"                # it already was
    LOCKED = "locked"                  # the active policy locks the category: nothing changed
    NO_RECIPIENT = "no_recipient"      # the profile is gone: nothing to change


def unsubscribe(db: Database, policy: Policy, user_id: str, category: str) -> Outcome:
    if category in policy.locked_categories:
        return Outcome.LOCKED
    with db.session() as session:
        row = session.get(Recipient, user_id, with_for_update=True)
        if row is None:
            outcome = Outcome.NO_RECIPIENT
        else:
            outcome = Outcome.UNSUBSCRIBED if preferences.turn_off(row, category, Channel.EMAIL.value) \
                else Outcome.ALREADY
    log.info("one-click unsubscribe", extra={"category": category, "outcome": outcome.value})
    return outcome
