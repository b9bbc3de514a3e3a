"""Impact simulation: replay the stored facts of recent messages through a candidate policy
and report what would change, before it goes live.

"Before" is what was decided and stored on each message (its route); "after" is
``policies.decide(candidate, stored message facts, stored recipient facts, stored now)``.
Rows are streamed by keyset pagination on ``Message.id`` with only the columns needed, so a
100,000-message history runs in constant memory (bench/bench_simulation.py measures it).

Cross-channel frequency caps (`cap_messages`) depend on what else the user was sent, which
the candidate may change: for its capped categories the counts are replayed, i.e. counted
from the earlier messages of the same user in the replayed period that the candidate would
send (messages before `since` are not seen, so counts start at zero). Besides the channels,
the mix has a `(deferred)` row: messages with a step held back (quiet hours, a cap).

Service API:
- ``simulate(db, policy, since=, until=None, batch_size=2000, max_changed=500, progress=None)
  -> SimulationResult`` (``progress(n)`` is called with the rows done after each batch)
- ``count_messages(db, since, until) -> int`` (for a progress bar's length)
- ``SimulationResult.to_dict()``, ``format_channel_mix(result) -> str`` (a text table)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

import policies
from policies import MessageFacts, Policy, RecipientFacts
from policies.derive import cap_windows

from ..storage.db import Database
from ..storage.models import Message

CHANNEL_ORDER = ("in_app", "push", "sms", "email")
SUPPRESSED = "(suppressed)"
DEFERRED = "(deferred)"


class _ReplayedCounts:
    """Per user, the times of the replayed messages the candidate sends in a capped
    category, pruned to the current ISO week: the `message_count_*` facts of the replay."""

    def __init__(self, policy: Policy) -> None:
        self.capped = policy.capped_categories
        self.seen: dict[str, list[datetime]] = {}

    def facts(self, r: RecipientFacts, category: str, now: datetime) -> RecipientFacts:
        if category not in self.capped:
            return r
        day_start, week_start, _, _ = cap_windows(now, r.timezone)
        times = self.seen.get(r.user_id)
        if times:
            since = min(day_start, week_start)
            times[:] = [t for t in times if t >= since]
        times = times or ()
        return replace(r, message_count_day=sum(t >= day_start for t in times),
                       message_count_week=sum(t >= week_start for t in times))

    def record(self, r: RecipientFacts, category: str, now: datetime, plan: policies.RoutePlan) -> None:
        if category in self.capped and plan.steps:
            self.seen.setdefault(r.user_id, []).append(now)


@dataclass
class MessageChange:
    message_id: str
    category: str
    created_at: str
    before: list[str]          # "channel/mode" per step
    after: list[str]
    rules: list[str]           # rule ids whose match or effect differs between the two traces
    newly_excluded: dict[str, str] = field(default_factory=dict)  # channel -> rule id

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "category": self.category, "created_at": self.created_at,
                "before": self.before, "after": self.after, "rules": self.rules,
                "newly_excluded": self.newly_excluded}


@dataclass
class SimulationResult:
    policy_version: str
    since: str
    until: str | None
    messages: int = 0
    changed_count: int = 0
    before: Counter = field(default_factory=Counter)   # channel -> messages with a step on it
    after: Counter = field(default_factory=Counter)
    changed: list[MessageChange] = field(default_factory=list)
    changed_truncated: bool = False
    rules_responsible: Counter = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0

    def channel_mix(self) -> list[dict[str, Any]]:
        keys = [c for c in CHANNEL_ORDER] + sorted((set(self.before) | set(self.after)) - set(CHANNEL_ORDER))
        return [{"channel": k, "before": self.before.get(k, 0), "after": self.after.get(k, 0),
                 "delta": self.after.get(k, 0) - self.before.get(k, 0)} for k in keys]

    def to_dict(self) -> dict[str, Any]:
        return {"policy_version": self.policy_version, "since": self.since, "until": self.until,
                "messages": self.messages, "changed_count": self.changed_count,
                "channel_mix": self.channel_mix(),
                "rules_responsible": dict(self.rules_responsible.most_common()),
                "changed": [c.to_dict() for c in self.changed], "changed_truncated": self.changed_truncated,
                "error_count": self.error_count, "errors": self.errors, "seconds": round(self.seconds, 3)}


def _period(query, since: datetime, until: datetime | None):
    query = query.where(Message.created_at >= since)
    return query.where(Message.created_at < until) if until is not None else query


def count_messages(db: Database, since: datetime, until: datetime | None = None) -> int:
    with db.session() as session:
        return session.scalar(_period(select(func.count()).select_from(Message), since, until)) or 0


def _step_keys(steps: list[dict[str, Any]]) -> list[str]:
    """"channel/mode", plus "/deferred" for a step held back (quiet hours, a cap)."""
    return [f"{s['channel']}/{s['mode']}" + ("/deferred" if s.get("not_before") else "") for s in steps]


def _channels(steps: list[dict[str, Any]]) -> set[str]:
    return {s["channel"] for s in steps}


def _responsible(old_route: dict[str, Any], new_plan: policies.RoutePlan) -> tuple[list[str], dict[str, str]]:
    old_trace = {(t["rule_id"], t["effect"]) for t in old_route.get("trace") or ()}
    new_trace = {(t.rule_id, t.effect) for t in new_plan.trace}
    rules = sorted({rule for rule, _ in old_trace ^ new_trace})
    old_excluded = {e["channel"]: e["rule"] for e in old_route.get("excluded") or ()}
    newly = {e.channel: e.rule for e in new_plan.excluded
             if e.channel not in old_excluded or old_excluded[e.channel] != e.rule}
    return rules, newly


def simulate(db: Database, policy: Policy, *, since: datetime, until: datetime | None = None,
             batch_size: int = 2000, max_changed: int = 500,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Replay every message created in [since, until) through ``policy``."""
    import time

    started = time.perf_counter()
    result = SimulationResult(policy.version, since.isoformat(), until.isoformat() if until else None)
    decide, from_message, from_recipient = policies.decide, MessageFacts.from_dict, RecipientFacts.from_dict
    parse_dt = datetime.fromisoformat
    last_id = ""
    columns = (Message.id, Message.category, Message.created_at, Message.decision_facts, Message.route)
    counts = _ReplayedCounts(policy) if policy.capped_categories else None
    while True:
        with db.session() as session:
            rows = session.execute(_period(select(*columns), since, until).where(Message.id > last_id)
                                   .order_by(Message.id).limit(batch_size)).all()
        if not rows:
            break
        for message_id, category, created_at, facts, route in rows:
            if not facts:
                continue  # never decided (scheduled, or cancelled before its send_at): nothing to replay
            result.messages += 1
            old_steps = (route or {}).get("steps") or []
            old_channels = _channels(old_steps)
            result.before.update(old_channels or (SUPPRESSED,))
            old_deferred = any(st.get("not_before") for st in old_steps)
            if old_deferred:
                result.before[DEFERRED] += 1
            try:
                if category not in policy.categories:
                    raise ValueError(f"category '{category}' is not in policy {policy.version}")
                recipient, now = from_recipient(facts["recipient"]), parse_dt(facts["now"])
                if counts is not None:
                    recipient = counts.facts(recipient, category, now)
                plan = decide(policy, from_message(facts["message"]), recipient, now)
            except (KeyError, TypeError, ValueError) as exc:
                result.error_count += 1
                if len(result.errors) < 50:
                    result.errors.append({"message_id": message_id, "error": str(exc) or type(exc).__name__})
                result.after.update(old_channels or (SUPPRESSED,))
                if old_deferred:
                    result.after[DEFERRED] += 1
                continue
            if counts is not None:
                counts.record(recipient, category, now, plan)
            new_steps = [{"channel": s.channel, "mode": s.mode, "not_before": s.not_before} for s in plan.steps]
            result.after.update(_channels(new_steps) or (SUPPRESSED,))
            new_deferred = any(st.not_before is not None for st in plan.steps)
            if new_deferred:
                result.after[DEFERRED] += 1
            before_keys, after_keys = _step_keys(old_steps), _step_keys(new_steps)
            if before_keys == after_keys and bool((route or {}).get("suppressed")) == plan.suppressed:
                continue
            result.changed_count += 1
            rules, newly = _responsible(route or {}, plan)
            result.rules_responsible.update(rules)
            if len(result.changed) < max_changed:
                result.changed.append(MessageChange(message_id, category, created_at.isoformat(), before_keys,
                                                    after_keys, rules, newly))
            else:
                result.changed_truncated = True
        last_id = rows[-1][0]
        if progress is not None:
            progress(len(rows))
        if len(rows) < batch_size:
            break
    result.seconds = time.perf_counter() - started
    return result


def format_channel_mix(result: SimulationResult) -> str:
    """The before/after table as text (CLI)."""
    lines = [f"{'channel':<14}{'before':>10}{'after':>10}{'delta':>10}"]
    for row in result.channel_mix():
        lines.append(f"{row['channel']:<14}{row['before']:>10}{row['after']:>10}{row['delta']:>+10}")
    return "\n".join(lines)
