"""Turns a RoutePlan into attempt rows. Every timer is a row with `due_at`:
- first/parallel steps are due now (or at `not_before` when deferred for quiet hours);
- escalate steps are due `after` their group starts; the watched status cancels them;
- fallback steps wait unreleased until every attempt of the group before them has failed;
- an in-app step held for the user's next session waits with `hold_until`; a fallback after
  it keeps its sending window from the end of the hold (it cannot start before then).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from policies import RecipientFacts, RoutePlan, Step, StepMode
from providers.base import AttemptStatus, Channel

from ..storage.models import new_id


def addresses_for(channel: str, facts: RecipientFacts) -> list[tuple[str | None, str | None]]:
    """(address, platform) pairs a step on `channel` delivers to; push fans out per device."""
    if channel == Channel.SMS:
        return [(facts.phone, None)] if facts.phone else []
    if channel == Channel.EMAIL:
        return [(facts.email, None)] if facts.email else []
    if channel == Channel.PUSH:
        return [(d.token, d.platform) for d in facts.devices if d.active]
    return [(None, None)]  # in-app: the inbox is the address


def step_groups(steps: tuple[Step, ...]) -> list[int]:
    """Group number per step: a parallel step joins the group before it."""
    groups: list[int] = []
    for i, step in enumerate(steps):
        if i > 0 and step.mode == StepMode.PARALLEL:
            groups.append(groups[-1])
        else:
            groups.append(len(set(groups)))
    return groups


def build_attempts(message_id: str, user_id: str, expires_at: datetime | None, plan: RoutePlan,
                   facts: RecipientFacts, now: datetime, deadline_seconds: int) -> list[dict]:
    """Attempt rows (column -> value) for a plan; written with one multi-row INSERT."""
    window = timedelta(seconds=deadline_seconds)

    def deadline_from(start: datetime) -> datetime:
        # Each attempt gets the same sending window from when it may start, never past expiry.
        end = start + window
        return min(end, expires_at) if expires_at else end

    attempts: list[dict] = []
    groups = step_groups(plan.steps)
    group_start: dict[int, datetime | None] = {}
    group_hold_end: dict[int, datetime] = {}
    for index, (step, group) in enumerate(zip(plan.steps, groups, strict=True)):
        released = True
        due: datetime | None = now
        if step.mode == StepMode.FALLBACK or (
            step.mode == StepMode.PARALLEL and group in group_start and group_start[group] is None
        ):
            released, due = False, None
        elif step.mode == StepMode.ESCALATE:
            base = group_start.get(group - 1) or now
            due = base + (step.after or timedelta(0))
        if due is not None and step.not_before is not None:
            due = max(due, step.not_before)
        group_start.setdefault(group, due)
        hold_until = now + step.hold_ttl if step.hold_ttl else None
        if hold_until is not None:
            group_hold_end[group] = max(hold_until, group_hold_end.get(group, hold_until))
        # A fallback after a held step waits at least until the hold ends: its window starts
        # there, so the sweeper does not look at it again and again while the user is away.
        waits_from = group_hold_end.get(group - 1) if step.mode == StepMode.FALLBACK else None
        for address, platform in addresses_for(step.channel, facts):
            attempts.append({
                "id": new_id(),  # known before the INSERT, so the caller can announce it after commit
                "message_id": message_id,
                "user_id": user_id,
                "step_index": index,
                "step_group": group,
                "channel": step.channel,
                "mode": StepMode(step.mode).value,
                "provider": step.provider,
                "address": address,
                "platform": platform,
                "status": AttemptStatus.QUEUED.value,
                "released": released,
                # A held in-app step is due when the user's next session starts.
                "due_at": None if hold_until else due,
                "hold_until": hold_until,
                "created_at": now,
                "updated_at": now,
                # Unreleased fallback steps keep the window from now: if the step before them
                # neither fails nor delivers within it, they are cancelled as not needed.
                "deadline_at": hold_until if hold_until else deadline_from(due or waits_from or now),
                "escalate_after_seconds": int(step.after.total_seconds()) if step.after else None,
                "unless_status": step.unless_status,
                "quiet": step.quiet,
                "tries": 0,
                "send_count": 0,
                "sandboxed": False,
                "enqueued_at": None,
                "lease_until": None,
            })
    return attempts
