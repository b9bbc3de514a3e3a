"""Impact simulation: replay the stored facts of recent messages through a candidate policy
and through the active one, and report what would change, before the candidate goes live.

For every message of the period that was decided, its stored facts (``decision_facts``) run
through ``policies.decide`` under the ``baseline`` (the active version: "before") and under the
candidate ("after"). Without a baseline, "before" is the route stored on each message (what was
decided at the time). A message the baseline itself decided, whose replayed cap counts (below)
are the stored ones, is not decided again for "before": that replay is the stored facts under
the version that decided them, which reproduces the stored route (sending/decision_replay.py;
test_simulation_stored_before.py checks it on a varied history), so the stored route is used.
The two plans are compared step by step (compliance/plan_changes.py): a
message changed when a channel was added or removed, the first channel, the order, a step's
mode or delay changed, or it is newly suppressed or held back — not only when the set of
channels moved. Rows are streamed by keyset pagination on ``Message.id`` with only the
columns needed, so a 100,000-message history runs in constant memory
(bench/bench_simulation.py measures it).

Cross-channel frequency caps (`cap_messages`) depend on what else the user was sent, which a
version may change: for its capped categories the counts are replayed, i.e. counted from the
earlier messages of the same user in the replayed period that the version would send
(messages before `since` are not seen, so counts start at zero). Besides the channels, the mix
has a `(deferred)` row: messages with a step held back (quiet hours, a cap). A message that
cannot be replayed under either version counts in ``error_count`` and in no other figure.

Service API:
- ``simulate(db, policy, baseline=None, since=, until=None, batch_size=2000, max_changed=500,
  examples_per_kind=5, progress=None) -> SimulationResult`` (``progress(n)`` is called with the
  rows done after each batch)
- ``count_messages(db, since, until) -> int`` (for a progress bar's length)
- ``count_replays(db, policy, baseline, since, until) -> int`` (the messages that need a replay)
- ``SimulationResult.to_dict()``, ``format_channel_mix(result) -> str`` (a text table),
  ``format_changes(result) -> str`` (changes by kind and category, CLI)
"""

from __future__ import annotations

import time
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Text, cast, func, select

import policies
from policies import MessageFacts, Policy, RecipientFacts, StepMode
from policies.derive import cap_windows
from policies.plan import fast_new

from ..domain.statuses import ChangeKind
from ..storage.db import Database
from ..storage.models import Message
from .plan_changes import KIND_LABELS, PlanKey, classify, plan_key, stored_steps_key

CHANNEL_ORDER = ("in_app", "push", "sms", "email")
SUPPRESSED = "(suppressed)"
DEFERRED = "(deferred)"
STRAIGHT_AWAY = (StepMode.FIRST, StepMode.PARALLEL)


class _ReplayedCounts:
    """Per user, the times of the replayed messages the candidate sends in a capped
    category, sorted, pruned to the current ISO week: the `message_count_*` facts of the replay."""

    def __init__(self, policy: Policy) -> None:
        self.capped = policy.capped_categories
        self.seen: dict[str, list[datetime]] = {}

    def facts(self, r: RecipientFacts, category: str, now: datetime) -> RecipientFacts:
        """`r` itself when the replayed counts are the stored ones (or the category is not capped)."""
        if category not in self.capped:
            return r
        times = self.seen.get(r.user_id)
        if not times:
            day = week = 0
        else:
            day_start, week_start, _, _ = cap_windows(now, r.timezone)
            old = bisect_left(times, week_start)  # the week starts before the day
            if old:
                del times[:old]
            week = len(times)
            day = week - bisect_left(times, day_start)
        if day == r.message_count_day and week == r.message_count_week:
            return r
        return fast_new(RecipientFacts, {**r.__dict__, "message_count_day": day, "message_count_week": week})

    def record(self, r: RecipientFacts, category: str, now: datetime, sends: bool) -> None:
        if sends and category in self.capped:
            times = self.seen.get(r.user_id)
            if not times:
                self.seen[r.user_id] = [now]
            elif now >= times[-1]:
                times.append(now)
            else:  # kept sorted (rows come in id order, not always in time order)
                insort(times, now)


class _Replay:
    """One policy over the replayed messages, with its own replayed cap counts."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.counts = _ReplayedCounts(policy) if policy.capped_categories else None

    def counted(self, category: str, recipient: RecipientFacts, now: datetime) -> RecipientFacts:
        """The recipient facts with this replay's cap counts: `recipient` itself when they are
        the stored counts (then the facts are exactly those stored)."""
        if category not in self.policy.categories:
            raise ValueError(f"category '{category}' is not in policy {self.policy.version}")
        return recipient if self.counts is None else self.counts.facts(recipient, category, now)

    def decide(self, category: str, message: MessageFacts, counted: RecipientFacts,
               now: datetime) -> policies.RoutePlan:
        """Decide on facts from `counted` and count what the plan sends."""
        plan = policies.decide(self.policy, message, counted, now)
        if self.counts is not None:
            self.counts.record(counted, category, now, bool(plan.steps))
        return plan

    def plan(self, category: str, message: MessageFacts, recipient: RecipientFacts,
             now: datetime) -> policies.RoutePlan:
        return self.decide(category, message, self.counted(category, recipient, now), now)

    def adopt(self, category: str, recipient: RecipientFacts, now: datetime, sends: bool) -> None:
        """Take a plan made elsewhere (the stored route, or an alike version's: see
        `_alike_categories`) as this one's; `sends`: the plan has a step."""
        if self.counts is not None:
            self.counts.record(recipient, category, now, sends)


_NOT_DECIDING = ("version", "description", "rules")


def _alike_categories(a: Policy, b: Policy) -> frozenset[str]:
    """Categories whose messages `a` and `b` route identically whatever the facts, so one replay
    serves both: every part of the documents but the rules is the same (thresholds, consent
    defaults, categories, preferences...), and so is the ordered list of rules that can match
    the category (compared as written). Capped categories also depend on what the other capped
    categories send (the replayed counts), so they count only when all of them are alike."""
    def rest(p: Policy) -> dict[str, Any]:
        return {k: v for k, v in p.document.items() if k not in _NOT_DECIDING}

    if rest(a) != rest(b):
        return frozenset()
    raw_a = {r.get("id"): r for r in a.document.get("rules") or () if isinstance(r, dict)}
    raw_b = {r.get("id"): r for r in b.document.get("rules") or () if isinstance(r, dict)}
    alike = set()
    for category in set(a.categories) & set(b.categories):
        ids_a = [rule.id for _, rule, _, _ in a.rules_by_category.get(category, ())]
        ids_b = [rule.id for _, rule, _, _ in b.rules_by_category.get(category, ())]
        if ids_a == ids_b and all(raw_a.get(i) == raw_b.get(i) for i in ids_a):
            alike.add(category)
    capped = a.capped_categories | b.capped_categories
    if a.capped_categories != b.capped_categories or not capped <= alike:
        alike -= capped
    return frozenset(alike)


@dataclass
class MessageChange:
    message_id: str
    category: str
    created_at: str
    before: list[str]          # "channel/mode" per step ("/deferred" when held back)
    after: list[str]
    rules: list[str]           # rule ids whose match or effect differs between the two traces
    newly_excluded: dict[str, str] = field(default_factory=dict)  # channel -> rule id
    kinds: list[str] = field(default_factory=list)       # ChangeKind values, in the order found
    changes: list[str] = field(default_factory=list)     # one sentence per change

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "category": self.category, "created_at": self.created_at,
                "before": self.before, "after": self.after, "rules": self.rules,
                "newly_excluded": self.newly_excluded, "kinds": self.kinds, "changes": self.changes}


@dataclass
class _Tally:
    """What one side (before or after) sends, over all replayed messages: how many messages
    got each distinct plan, and their SMS segments; the mixes are read from these at the end
    (a few hundred distinct plans, against one dictionary update per message)."""

    plans: Counter = field(default_factory=Counter)      # PlanKey -> messages
    segments: Counter = field(default_factory=Counter)   # PlanKey -> SMS segments of those messages

    def add(self, key: PlanKey, segments: int) -> None:
        self.plans[key] += 1
        if segments:
            self.segments[key] += segments

    def update(self, other: _Tally) -> None:
        self.plans.update(other.plans)
        self.segments.update(other.segments)

    @property
    def channels(self) -> Counter:
        """channel -> messages with a step on it; (suppressed); (deferred): a step held back."""
        out: Counter = Counter()
        for key, n in self.plans.items():
            if not key.steps:
                out[SUPPRESSED] += n
                continue
            for channel in {s.channel for s in key.steps}:
                out[channel] += n
            if any(s.deferred for s in key.steps):
                out[DEFERRED] += n
        return out

    @property
    def first(self) -> Counter:
        """channel -> messages whose plan starts on it (or (suppressed))."""
        out: Counter = Counter()
        for key, n in self.plans.items():
            out[key.steps[0].channel if key.steps else SUPPRESSED] += n
        return out

    def sms_segments(self) -> tuple[int, int]:
        """(segments on every plan with an SMS step, those sent straight away: SMS first or
        in parallel with the first step, not as a fallback or escalation)."""
        total = straight = 0
        for key, n in self.segments.items():
            modes = [s.mode for s in key.steps]
            channels = [s.channel for s in key.steps]
            if "sms" not in channels:
                continue
            total += n
            if all(m in STRAIGHT_AWAY for m in modes[:channels.index("sms") + 1]):
                straight += n
        return total, straight


def _mix(before: Counter, after: Counter) -> list[dict[str, Any]]:
    keys = list(CHANNEL_ORDER) + sorted((set(before) | set(after)) - set(CHANNEL_ORDER))
    return [{"channel": k, "before": before.get(k, 0), "after": after.get(k, 0),
             "delta": after.get(k, 0) - before.get(k, 0)} for k in keys]


@dataclass
class SimulationResult:
    policy_version: str
    since: str
    until: str | None
    baseline_version: str | None = None   # None: "before" is the route stored on each message
    messages: int = 0
    changed_count: int = 0
    before_tally: _Tally = field(default_factory=_Tally)
    after_tally: _Tally = field(default_factory=_Tally)
    changed: list[MessageChange] = field(default_factory=list)
    changed_truncated: bool = False
    rules_responsible: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)              # ChangeKind -> messages
    examples: dict[str, list[str]] = field(default_factory=dict)   # ChangeKind -> a few message ids
    by_category: dict[str, dict[str, Any]] = field(default_factory=dict)  # {messages, changed, kinds}
    errors: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0
    # Messages whose "before" is their stored route, not a replay (the cost saved; not in to_dict).
    before_from_stored: int = 0

    @property
    def before(self) -> Counter:
        return self.before_tally.channels

    @property
    def after(self) -> Counter:
        return self.after_tally.channels

    def channel_mix(self) -> list[dict[str, Any]]:
        return _mix(self.before_tally.channels, self.after_tally.channels)

    def first_channel_mix(self) -> list[dict[str, Any]]:
        return _mix(self.before_tally.first, self.after_tally.first)

    def changes_by_kind(self) -> list[dict[str, Any]]:
        """Every kind in a fixed order (zeros included), with its label and example ids."""
        return [{"kind": k.value, "label": KIND_LABELS[k], "messages": self.by_kind.get(k.value, 0),
                 "examples": self.examples.get(k.value, [])} for k in ChangeKind]

    def sms_segments(self) -> dict[str, int]:
        (before, before_straight), (after, after_straight) = self.before_tally.sms_segments(), \
            self.after_tally.sms_segments()
        return {"before": before, "after": after, "delta": after - before,
                "straight_away_before": before_straight, "straight_away_after": after_straight}

    def to_dict(self) -> dict[str, Any]:
        return {"policy_version": self.policy_version, "baseline_version": self.baseline_version,
                "since": self.since, "until": self.until,
                "messages": self.messages, "changed_count": self.changed_count,
                "channel_mix": self.channel_mix(), "first_channel_mix": self.first_channel_mix(),
                "changes_by_kind": self.changes_by_kind(),
                "changes_by_category": {c: dict(v, kinds=dict(v["kinds"]))
                                        for c, v in sorted(self.by_category.items())},
                "sms_segments": self.sms_segments(),
                "rules_responsible": dict(self.rules_responsible.most_common()),
                "changed": [c.to_dict() for c in self.changed], "changed_truncated": self.changed_truncated,
                "error_count": self.error_count, "errors": self.errors, "seconds": round(self.seconds, 3)}


def _period(query, since: datetime, until: datetime | None):
    query = query.where(Message.created_at >= since)
    return query.where(Message.created_at < until) if until is not None else query


def count_messages(db: Database, since: datetime, until: datetime | None = None) -> int:
    with db.session() as session:
        return session.scalar(_period(select(func.count()).select_from(Message), since, until)) or 0


def count_replays(db: Database, policy: Policy, baseline: Policy | None, since: datetime,
                  until: datetime | None = None) -> int:
    """How many messages of the period need replaying (the others take their stored route):
    what decides whether worker processes pay (compliance/simulation_workers.py)."""
    query = _period(select(func.count()).select_from(Message), since, until)
    alike = _alike_categories(baseline, policy) if baseline is not None else frozenset()
    if baseline is not None and alike:
        query = query.where(~(Message.category.in_(sorted(alike)) & (Message.policy_version == baseline.version)))
    with db.engine.connect() as conn:
        return conn.execute(query).scalar() or 0


def _step_keys(key: PlanKey) -> list[str]:
    """"channel/mode", plus "/deferred" for a step held back (quiet hours, a cap)."""
    return [f"{s.channel}/{s.mode}" + ("/deferred" if s.deferred else "") for s in key.steps]


def _trace(route_or_plan: dict[str, Any] | policies.RoutePlan) -> tuple[set, dict[str, str]]:
    if isinstance(route_or_plan, dict):
        return ({(t["rule_id"], t["effect"]) for t in route_or_plan.get("trace") or ()},
                {e["channel"]: e["rule"] for e in route_or_plan.get("excluded") or ()})
    return ({(t.rule_id, t.effect) for t in route_or_plan.trace},
            {e.channel: e.rule for e in route_or_plan.excluded})


def _responsible(old: dict[str, Any] | policies.RoutePlan, new: policies.RoutePlan) -> tuple[list[str], dict[str, str]]:
    old_trace, old_excluded = _trace(old)
    new_trace, new_excluded = _trace(new)
    rules = sorted({rule for rule, _ in old_trace ^ new_trace})
    newly = {ch: rule for ch, rule in new_excluded.items() if old_excluded.get(ch) != rule}
    return rules, newly


def _count(by_category: dict[str, dict[str, Any]], category: str) -> dict[str, Any]:
    cat = by_category.get(category)
    if cat is None:
        cat = by_category[category] = {"messages": 0, "changed": 0, "kinds": Counter()}
    cat["messages"] += 1
    return cat


def simulate(db: Database, policy: Policy, *, baseline: Policy | None = None, since: datetime,
             until: datetime | None = None, batch_size: int = 2000, max_changed: int = 500,
             examples_per_kind: int = 5, progress: Callable[[int], None] | None = None,
             users: tuple[str | None, str | None] = (None, None), stored_routes: bool = True) -> SimulationResult:
    """Replay every message created in [since, until) through ``policy`` and ``baseline``;
    only the users in [users[0], users[1]) when given (one worker's share, so that each
    user's cap counts are replayed whole: compliance/simulation_workers.py). ``stored_routes``:
    a message the baseline decided takes its stored route as the baseline's plan when its
    replayed cap counts are the stored ones (the replay would reproduce it); False replays it."""
    started = time.perf_counter()
    loads = orjson.loads
    # Stored steps repeat (same route, same reasons) across messages: one key per distinct
    # text, bounded (a deferral's time makes its text unique).
    stored_keys: dict[tuple[bool, str | None], PlanKey] = {}

    def stored_key(suppressed: bool | None, steps_text: str | None) -> PlanKey:
        found = stored_keys.get((bool(suppressed), steps_text))
        if found is None:
            if len(stored_keys) > 20_000:
                stored_keys.clear()
            found = stored_keys[(bool(suppressed), steps_text)] = stored_steps_key(
                suppressed, loads(steps_text) if steps_text else None)
        return found

    result = SimulationResult(policy.version, since.isoformat(), until.isoformat() if until else None,
                              baseline_version=baseline.version if baseline is not None else None)
    from_message, from_recipient, parse_dt = MessageFacts.from_dict, RecipientFacts.from_dict, datetime.fromisoformat
    after_replay = _Replay(policy)
    before_replay = _Replay(baseline) if baseline is not None else None
    alike = _alike_categories(baseline, policy) if baseline is not None else frozenset()
    # JSON as text, decoded here only when needed (a stored route alone serves the messages of
    # alike categories decided by the baseline; see below).
    # Of a stored route, only the parts its plan key needs are decoded for every message (the
    # whole route, trace and reasons included, is three times the size): the full text only
    # for a changed message (the rules responsible).
    columns = [Message.id, Message.category, Message.created_at, cast(Message.decision_facts, Text),
               cast(Message.route, Text), Message.policy_version, cast(Message.route["steps"], Text),
               Message.route["suppressed"].as_boolean(), Message.route[("facts", "sms_segments")].as_integer()]
    stored_serves = baseline.version if baseline is not None and alike else None
    # The stored route stands for the baseline's replay of the messages it decided (see below);
    # `stored_routes=False` replays them all (the tests compare the two).
    stored_before = baseline.version if baseline is not None and stored_routes else None
    before_tally, after_tally, by_category = result.before_tally, result.after_tally, result.by_category
    query = _period(select(*columns), since, until)
    if users[0] is not None:
        query = query.where(Message.user_id >= users[0])
    if users[1] is not None:
        query = query.where(Message.user_id < users[1])
    last_id = ""
    while True:
        with db.engine.connect() as conn:  # Core rows: no ORM loading for a read-only scan
            rows = conn.execute(query.where(Message.id > last_id).order_by(Message.id).limit(batch_size)).all()
        if not rows:
            break
        for message_id, category, created_at, facts_text, route_text, decided_by, steps_text, suppressed, segments \
                in rows:
            if not facts_text or facts_text == "{}":
                continue  # never decided (scheduled, or cancelled before its send_at): nothing to replay
            result.messages += 1
            try:
                if category in alike and decided_by == stored_serves and route_text:
                    # Both versions route this category alike, and the baseline decided it: its
                    # stored route is the plan on both sides; nothing to replay. (A capped category
                    # is alike only when all are, so no replayed cap count is missing elsewhere.)
                    key = stored_key(suppressed, steps_text)
                    before_tally.add(key, segments or 0)
                    after_tally.add(key, segments or 0)
                    _count(by_category, category)
                    continue
                facts = loads(facts_text)
                message, recipient, now = (from_message(facts["message"]), from_recipient(facts["recipient"]),
                                           parse_dt(facts["now"]))
                old: str | policies.RoutePlan
                if before_replay is None:
                    old = route_text or "{}"  # decoded only if the plan changed
                    old_key = stored_key(suppressed, steps_text)
                    old_segments = segments or 0
                else:
                    counted = before_replay.counted(category, recipient, now)
                    if counted is recipient and decided_by == stored_before and route_text:
                        # The baseline decided it and the replayed cap counts are the stored
                        # ones: the replay would be these very facts under the version that
                        # decided them, i.e. the stored route (decision_replay's guarantee,
                        # tested in test_simulation_stored_before.py); no need to decide again.
                        old = route_text  # decoded only if the plan changed
                        old_key = stored_key(suppressed, steps_text)
                        old_segments = segments or 0
                        before_replay.adopt(category, recipient, now, bool(old_key.steps))
                        result.before_from_stored += 1
                    else:
                        old = before_replay.decide(category, message, counted, now)
                        old_key, old_segments = plan_key(old), old.facts["sms_segments"]
                    if category in alike:
                        after_replay.adopt(category, recipient, now, bool(old_key.steps))
                        before_tally.add(old_key, old_segments)
                        after_tally.add(old_key, old_segments)
                        _count(by_category, category)
                        continue
                plan = after_replay.plan(category, message, recipient, now)
            except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
                result.error_count += 1
                if len(result.errors) < 50:
                    result.errors.append({"message_id": message_id, "error": str(exc) or type(exc).__name__})
                continue
            new_key = plan_key(plan)
            before_tally.add(old_key, old_segments)
            after_tally.add(new_key, plan.facts["sms_segments"])
            cat = _count(by_category, category)
            if old_key == new_key:
                continue
            found = classify(old_key, new_key)
            kinds = list(dict.fromkeys(k.value for k, _ in found))
            result.changed_count += 1
            cat["changed"] += 1
            cat["kinds"].update(kinds)
            result.by_kind.update(kinds)
            for kind in kinds:
                ids = result.examples.setdefault(kind, [])
                if len(ids) < examples_per_kind:
                    ids.append(message_id)
            rules, newly = _responsible(loads(old) or {} if isinstance(old, str) else old, plan)
            result.rules_responsible.update(rules)
            if len(result.changed) < max_changed:
                result.changed.append(MessageChange(message_id, category, created_at.isoformat(), _step_keys(old_key),
                                                    _step_keys(new_key), rules, newly, kinds,
                                                    [sentence for _, sentence in found]))
            else:
                result.changed_truncated = True
        last_id = rows[-1][0]
        if progress is not None:
            progress(len(rows))
        if len(rows) < batch_size:
            break
    result.seconds = time.perf_counter() - started
    return result


def merge(parts: list[SimulationResult], *, max_changed: int = 500, examples_per_kind: int = 5) -> SimulationResult:
    """One result from the results of disjoint sets of users (the same as one run over all)."""
    first = parts[0]
    out = SimulationResult(first.policy_version, first.since, first.until, baseline_version=first.baseline_version)
    for part in parts:
        out.messages += part.messages
        out.changed_count += part.changed_count
        out.error_count += part.error_count
        out.before_from_stored += part.before_from_stored
        out.errors.extend(part.errors)
        out.rules_responsible.update(part.rules_responsible)
        out.by_kind.update(part.by_kind)
        out.changed.extend(part.changed)
        out.changed_truncated = out.changed_truncated or part.changed_truncated
        out.before_tally.update(part.before_tally)
        out.after_tally.update(part.after_tally)
        for kind, ids in part.examples.items():
            out.examples.setdefault(kind, []).extend(ids)
        for category, row in part.by_category.items():
            cat = out.by_category.setdefault(category, {"messages": 0, "changed": 0, "kinds": Counter()})
            cat["messages"] += row["messages"]
            cat["changed"] += row["changed"]
            cat["kinds"].update(row["kinds"])
        out.seconds = max(out.seconds, part.seconds)
    out.errors = sorted(out.errors, key=lambda e: e["message_id"])[:50]
    out.examples = {kind: sorted(ids)[:examples_per_kind] for kind, ids in out.examples.items()}
    out.changed.sort(key=lambda c: c.message_id)
    if len(out.changed) > max_changed:
        out.changed, out.changed_truncated = out.changed[:max_changed], True
    return out


def format_channel_mix(result: SimulationResult) -> str:
    """The before/after table as text (CLI)."""
    lines = [f"{'channel':<14}{'before':>10}{'after':>10}{'delta':>10}"]
    for row in result.channel_mix():
        lines.append(f"{row['channel']:<14}{row['before']:>10}{row['after']:>10}{row['delta']:>+10}")
    return "\n".join(lines)


def format_changes(result: SimulationResult) -> str:
    """Messages changed by kind of change and by category, and SMS segments (CLI)."""
    lines = ["changed plans by kind of change:"]
    for row in result.changes_by_kind():
        if row["messages"]:
            lines.append(f"  {row['label']:<48}{row['messages']:>8}   e.g. {', '.join(row['examples'][:3])}")
    lines.append("changed plans by category:")
    for category, row in sorted(result.by_category.items()):
        if row["changed"]:
            lines.append(f"  {category:<24}{row['changed']:>8} of {row['messages']}")
    seg = result.sms_segments()
    lines.append(f"SMS segments on the plans: {seg['before']} before, {seg['after']} after ({seg['delta']:+}); "
                 f"sent straight away: {seg['straight_away_before']} -> {seg['straight_away_after']}")
    return "\n".join(lines)
