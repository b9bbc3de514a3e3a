"""Impact simulation over a 100,000-message history (SQLite file in a temp dir).

    .venv/bin/python bench/bench_simulation.py [--messages 100000] [--batch 2000] [--templates 2000]
        [--db /tmp/sim.sqlite3 (keep and reuse the history)] [--runs 3 (the best counts)]

Inserts N synthetic messages created over the last 7 days (bulk INSERTs): varied categories
and urgencies, recipients with and without phone/email/devices/consents, online and offline,
active, dormant and churned, quiet-hours times, short and long (multi-segment, Korean) bodies.
Each message stores what the service stores: ``decision_facts`` and the ``route`` decided by
the shipped default policy. Facts come from ``--templates`` distinct scenarios spread over the
N rows with their own ids (a scenario's rows share its time), which keeps setup fast while
every row is replayed for real; the cross-channel cap counts are those the accept path would
have stored for each row in insertion order (its user's earlier sent messages of capped
categories in the local day and ISO week), with the route decided on them. Then it times
``orchestrator.compliance.simulation.simulate`` with a
draft that takes SMS away from one-time codes against the shipped default as the active
version, and prints wall and CPU seconds, rows/s, the channel mix and the
changes by kind. The target (issue #20): under 10 s for 100,000 messages on a 2-core box;
the last line gives the figure scaled to 100,000 and as a ratio of the target.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

import policies  # noqa: E402
from orchestrator.compliance import simulation, simulation_workers  # noqa: E402
from orchestrator.sending.stored_facts import stored_facts  # noqa: E402
from orchestrator.storage.db import Database  # noqa: E402
from orchestrator.storage.migrate import upgrade  # noqa: E402
from orchestrator.storage.models import Message, new_id  # noqa: E402
from policies import Device, MessageFacts, RecipientFacts  # noqa: E402
from policies.derive import cap_windows  # noqa: E402

TARGET_SECONDS = 10.0
QUIET = 'quiet_hours: ["22:00", "08:00"]'
OTP_ROUTE = "      route: [sms, email]\n    reason: one-time codes go by SMS, email as fallback"
BODIES = ["Your code is 123456", "Your parcel has shipped and will arrive tomorrow.",
          "안녕하세요, 새 기기에서 로그인했습니다." * 3, "x" * 600, "Payment failed: please update your card 💳",
          "Welcome aboard! Here is a tour of what's new."]


def draft_policy(worst: bool = False) -> policies.Policy:
    """OTP by email, never SMS. `worst`: quiet hours an hour longer too, a policy-wide change
    after which no category routes alike: every message is replayed under both versions."""
    text = policies.CATEGORIES_DEFAULT_PATH.read_text(encoding="utf-8")
    version = policies.load_default_policy().version
    text = text.replace(f'version: "{version}"', 'version: "bench-draft"', 1)
    text = text.replace(OTP_ROUTE, "      route: [email]\n      exclude: sms\n    reason: codes by email", 1)
    if worst:
        assert QUIET in text
        text = text.replace(QUIET, QUIET.replace("08:00", "09:00"), 1)
    return policies.load_policy(text)


def scenario(rng: random.Random, policy: policies.Policy,
             now: datetime) -> tuple[MessageFacts, RecipientFacts, datetime]:
    category = rng.choice(sorted(policy.categories))
    urgency = rng.choice(["low", "normal", "normal", "high", "critical"])
    m = MessageFacts(category=category, urgency=urgency, title="Hello", body=rng.choice(BODIES),
                     has_rich_media=rng.random() < 0.1)
    active = rng.choice([None, 0.01, 2, 40, 120])
    r = RecipientFacts(
        user_id=f"u-{rng.randrange(5000)}",
        email=f"user{rng.randrange(5000)}@example.com" if rng.random() < 0.85 else None,
        phone="+447400123456" if rng.random() < 0.7 else None,
        devices=(Device("tok", rng.choice(["fcm", "apns"])),) if rng.random() < 0.6 else (),
        consents={"sms": rng.random() < 0.9, "marketing": rng.random() < 0.4},
        timezone=rng.choice(["UTC", "Europe/London", "Asia/Seoul", "America/New_York"]),
        last_active_at=None if active is None else now - timedelta(days=active),
        last_heartbeat_at=now - timedelta(seconds=rng.choice([5, 30, 600, 86400])),
        connected=rng.random() < 0.2,
        in_app_count_day=rng.randrange(5), in_app_count_week=rng.randrange(12),
    )
    return m, r, now


class _AcceptCounts:
    """The cross-channel cap counts the accept path stores (sending/facts.message_counts):
    the user's earlier messages of capped categories that were not suppressed, created in the
    local day / ISO week of this one; counted only for a capped category whose plan sends."""

    def __init__(self, policy: policies.Policy) -> None:
        self.policy, self.sent = policy, {}

    def decide(self, m: MessageFacts, r: RecipientFacts, at: datetime, cache: dict) -> tuple[dict, dict]:
        plan = policies.decide(self.policy, m, r, at)
        if plan.steps and m.category in self.policy.capped_categories:
            day_start, week_start, _, _ = cap_windows(at, r.timezone)
            times = self.sent.get(r.user_id, ())
            counts = (sum(t >= day_start for t in times), sum(t >= week_start for t in times))
            key = (id(r), counts)
            if key not in cache:
                r = replace(r, message_count_day=counts[0], message_count_week=counts[1])
                cache[key] = (r, policies.decide(self.policy, m, r, at))
            r, plan = cache[key]
            if plan.steps:
                self.sent.setdefault(r.user_id, []).append(at)
        return stored_facts(m, r, at.isoformat()), plan.to_dict()  # as accept stores them


def populate(db: Database, n: int, templates: int, now: datetime) -> float:
    """`templates` distinct scenarios spread over the n rows (in insertion order, as accepted);
    each row stores the cap counts its user had at that point, and the route decided on them."""
    rng = random.Random(42)
    policy = policies.load_default_policy()
    pool = []
    for _ in range(templates):
        at = now - timedelta(seconds=rng.randrange(7 * 86400))
        pool.append(scenario(rng, policy, at))
    started = time.perf_counter()
    chunk = 5000
    counts, cache, decided = _AcceptCounts(policy), {}, {}
    with db.engine.begin() as conn:
        for start in range(0, n, chunk):
            rows = []
            for i in range(start, min(n, start + chunk)):
                m, r, created = pool[i % templates]
                if m.category in policy.capped_categories:
                    facts, route = counts.decide(m, r, created, cache)
                else:  # counts are neither read nor stored: one decision per scenario
                    if i % templates not in decided:
                        decided[i % templates] = counts.decide(m, r, created, cache)
                    facts, route = decided[i % templates]
                rows.append({"id": new_id(), "user_id": r.user_id, "category": m.category,
                             "urgency": m.urgency, "status": "delivered", "content": {},
                             "meta": {}, "overrides": {}, "policy_version": policy.version, "route": route,
                             "decision_facts": facts, "decided_at": created, "created_at": created,
                             "updated_at": created})
            conn.execute(Message.__table__.insert(), [{("metadata" if k == "meta" else k): v for k, v in r.items()}
                                                      for r in rows])
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--templates", type=int, default=2000)
    ap.add_argument("--db", help="keep the history in this SQLite file and reuse it on the next run "
                                 "(default: a temporary one)")
    ap.add_argument("--runs", type=int, default=1, help="simulate this many times; the best run counts")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: one per core, at most 4)")
    ap.add_argument("--worst", action="store_true", help="a draft that changes every category (quiet hours): "
                                                         "no stored route can stand in, all is replayed twice")
    args = ap.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "bench.sqlite3"
        db = Database(f"sqlite:///{path}")
        if path.exists() and args.db:
            with db.engine.connect() as conn:
                newest = conn.execute(select(func.max(Message.created_at), func.count())).one()
            now = datetime.fromisoformat(str(newest[0])).replace(tzinfo=UTC) + timedelta(seconds=1)
            print(f"reusing {path}: {newest[1]} messages")
        else:
            upgrade(db)
            insert_s = populate(db, args.messages, args.templates, now)
            print(f"inserted {args.messages} messages in {insert_s:.1f}s (db {path.stat().st_size / 1e6:.0f} MB)")
        draft, active = draft_policy(args.worst), policies.load_default_policy()
        best = None
        for _ in range(args.runs):
            cpu0, children0 = time.process_time(), _children_cpu()
            result = simulation_workers.simulate_auto(db, draft, active, since=now - timedelta(days=8),
                                                      workers=args.workers, batch_size=args.batch)
            cpu = time.process_time() - cpu0 + _children_cpu() - children0
            rate = result.messages / result.seconds if result.seconds else 0
            print(f"simulate: {result.messages} messages in {result.seconds:.2f}s wall, {cpu:.2f}s CPU "
                  f"(all processes) = {rate:,.0f} messages/s (batch {args.batch}, "
                  f"{args.workers or simulation_workers._workers(None)} workers); changed {result.changed_count}; "
                  f"errors {result.error_count}; baseline from stored routes {result.before_from_stored}; "
                  f"load average {os.getloadavg()[0]:.1f}")
            if best is None or result.seconds < best.seconds:
                best = result
        print(simulation.format_channel_mix(best))
        print(simulation.format_changes(best))
        scaled = best.seconds * 100_000 / max(best.messages, 1)
        verdict = "met" if scaled < TARGET_SECONDS else "NOT met"
        print(f"target: 100,000 messages in under {TARGET_SECONDS:.0f} s: {verdict}: {scaled:.2f} s scaled to 100k "
              f"= {scaled / TARGET_SECONDS:.2f} of the target")
        db.dispose()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
