"""The message status table (lifecycle/transitions.py): every pair of statuses is either
allowed (the change is applied) or refused (IllegalTransition, the status untouched)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import product

import pytest

from orchestrator.domain.statuses import MessageStatus as S
from orchestrator.lifecycle.transitions import TRANSITIONS, IllegalTransition, after_advance, change_status, checked

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PAIRS = [(old, new) for old, new in product(S, S) if old != new]
ALLOWED = [(old, new) for old, new in PAIRS if new in TRANSITIONS[old]]
REFUSED = [(old, new) for old, new in PAIRS if new not in TRANSITIONS[old]]


class _Message:
    def __init__(self, status: S) -> None:
        self.id, self.api_key_id, self.category, self.status = "m-1", None, "c", status


def test_every_status_has_a_row():
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(("old", "new"), ALLOWED, ids=[f"{o}->{n}" for o, n in ALLOWED])
def test_allowed_transition_is_applied(old, new):
    message = _Message(old)
    assert change_status(None, message, new, NOW) is True
    assert message.status == new


@pytest.mark.parametrize(("old", "new"), REFUSED, ids=[f"{o}->{n}" for o, n in REFUSED])
def test_refused_transition_raises_and_keeps_the_status(old, new):
    message = _Message(old)
    with pytest.raises(IllegalTransition):
        change_status(None, message, new, NOW)
    assert message.status == old
    with pytest.raises(IllegalTransition):
        checked(old, new)


@pytest.mark.parametrize("status", list(S))
def test_staying_put_changes_nothing(status):
    message = _Message(status)
    assert change_status(None, message, status, NOW) is False
    assert message.status == status


# Pinned independently of the table: the rules the rest of the service relies on.
@pytest.mark.parametrize(("old", "new", "ok"), [
    (S.SCHEDULED, S.ACCEPTED, True),      # the scheduling claim
    (S.SCHEDULED, S.CANCELLED, True),     # cancelled or erased before its time
    (S.SCHEDULED, S.DELIVERED, False),    # never planned: no attempt could deliver it
    (S.ACCEPTED, S.IN_PROGRESS, True),
    (S.SENT, S.FAILED, True),             # a late bounce
    (S.SENT, S.IN_PROGRESS, True),        # ... that releases a fallback
    (S.DELIVERED, S.FAILED, False),       # a delivered attempt is final
    (S.DELIVERED, S.READ, True),
    (S.FAILED, S.READ, True),             # a late open of a bounced email
    (S.READ, S.DELIVERED, False),         # engagement is never undone
    (S.READ, S.UNACKNOWLEDGED, True),     # read but not acknowledged in time
    (S.UNACKNOWLEDGED, S.ACKNOWLEDGED, True),
    (S.UNACKNOWLEDGED, S.SENT, False),
    (S.ACKNOWLEDGED, S.UNACKNOWLEDGED, False),
    (S.SUPPRESSED, S.ACCEPTED, False),
    (S.IN_PROGRESS, S.SCHEDULED, False),  # nothing goes back to scheduled
])
def test_pinned_rules(old, new, ok):
    assert (new in TRANSITIONS[old]) is ok


def test_unacknowledged_is_final_unless_acknowledged():
    assert after_advance(S.UNACKNOWLEDGED, S.SENT) == S.UNACKNOWLEDGED
    assert after_advance(S.UNACKNOWLEDGED, S.ACKNOWLEDGED) == S.ACKNOWLEDGED
    assert after_advance(S.SENT, S.DELIVERED) == S.DELIVERED
