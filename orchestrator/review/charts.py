"""The two pictures on the review pages, computed and drawn on the server as inline SVG.

- ``category_flows``: for each category, the channels a policy picks for a representative
  online and offline recipient (``policies.decide`` on fixed facts); ``flow_svg`` draws them.
- ``channel_mix``: messages per day per channel over the last days, from ``Message.route``
  steps; ``mix_svg`` draws grouped bars.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select

import policies
from policies import Device, MessageFacts, Policy, RecipientFacts

from ..storage.db import Database
from ..storage.models import Message

CHANNELS = ("in_app", "push", "sms", "email")
CHANNEL_LABELS = {"in_app": "In-app", "push": "Push", "sms": "SMS", "email": "Email"}
COLOURS = {"in_app": "#2b6cb0", "push": "#6b46c1", "sms": "#c05621", "email": "#2f855a"}
PRESENCES = ("online", "offline")

# The representative recipient, stated on the page so a reviewer knows what the diagram assumes.
EXAMPLE_FACTS = ("a recipient with an email address, a valid mobile number and one push device, who consented "
                 "to every channel including marketing, in UTC, with a short message (one SMS segment) of "
                 "normal urgency at 12:00 UTC (outside quiet hours). Online: in the app now (live stream, "
                 "heartbeat 10 s ago). Offline: last active 2 days ago, no heartbeat.")


@dataclass
class Flow:
    category: str
    attributes: dict[str, Any]
    steps: dict[str, list[tuple[str, str]]] = field(default_factory=dict)   # presence -> [(channel, mode)]
    suppressed: dict[str, list[str]] = field(default_factory=dict)          # presence -> reasons
    rules: dict[str, list[str]] = field(default_factory=dict)               # presence -> matched rule ids


def _recipient(presence: str, now: datetime) -> RecipientFacts:
    online = presence == "online"
    return RecipientFacts(
        user_id=f"example-{presence}", email="reviewer-example@example.com", phone="+447400123456",
        devices=(Device(token="example-device-token", platform="fcm"),),
        consents={c: True for c in (*CHANNELS, "marketing")}, timezone="UTC",
        last_active_at=now - (timedelta(minutes=1) if online else timedelta(days=2)),
        last_heartbeat_at=now - timedelta(seconds=10) if online else None, connected=online)


def category_flows(policy: Policy, today: date) -> list[Flow]:
    now = datetime.combine(today, time(12, 0), tzinfo=UTC)
    categories = policy.document.get("categories") or {}
    flows = []
    for category, attributes in categories.items():
        flow = Flow(str(category), dict(attributes or {}))
        message = MessageFacts(category=str(category), urgency="normal", title="Example",
                               body="A short example message.")
        for presence in PRESENCES:
            plan = policies.decide(policy, message, _recipient(presence, now), now)
            flow.steps[presence] = [(s.channel, s.mode) for s in plan.steps]
            flow.suppressed[presence] = list(plan.suppressed_reasons) if plan.suppressed else []
            flow.rules[presence] = [t.rule_id for t in plan.trace]
        flows.append(flow)
    return flows


def flow_svg(flows: list[Flow]) -> Markup:
    """Categories on the left, channels on the right; a solid line for the online recipient,
    a dashed one for the offline recipient; a ✕ after a category means suppressed."""
    row, top, left_w, gap, right_x = 26, 40, 190, 260, 190 + 260
    height = top + max(len(flows), len(CHANNELS)) * row + 20
    ch_y = {c: top + (i + 0.5) * (len(flows) * row / len(CHANNELS)) for i, c in enumerate(CHANNELS)}
    out = [f'<svg class="flow" viewBox="0 0 {right_x + 130} {height}" role="img" '
           f'aria-labelledby="flow-title flow-desc" xmlns="http://www.w3.org/2000/svg">',
           '<title id="flow-title">Categories to channels</title>',
           '<desc id="flow-desc">For each category, lines to the channels the policy uses: solid for an online '
           'recipient, dashed for an offline one. The table below lists the same data.</desc>',
           f'<text x="{left_w - 10}" y="20" text-anchor="end" class="head">Category</text>',
           f'<text x="{right_x + 10}" y="20" class="head">Channel</text>']
    for i, flow in enumerate(flows):
        y = top + i * row + row / 2
        out.append(f'<text x="{left_w - 10}" y="{y + 4:.0f}" text-anchor="end">{escape(flow.category)}</text>')
        for presence, dash, offset in (("online", "", -3), ("offline", ' stroke-dasharray="6 4"', 3)):
            if flow.suppressed[presence]:
                out.append(f'<text x="{left_w}" y="{y + 4 + offset:.0f}" class="supp">✕</text>')
            for channel, mode in flow.steps[presence]:
                cy = ch_y[channel] + offset
                out.append(f'<path d="M{left_w},{y + offset:.1f} C{left_w + gap / 2},{y + offset:.1f} '
                           f'{left_w + gap / 2},{cy:.1f} {right_x},{cy:.1f}" fill="none" '
                           f'stroke="{COLOURS[channel]}" stroke-width="1.6"{dash} opacity="0.8">'
                           f'<title>{escape(flow.category)} → {CHANNEL_LABELS[channel]} ({presence}, {mode})'
                           f'</title></path>')
    for channel, cy in ch_y.items():
        out.append(f'<rect x="{right_x}" y="{cy - 12:.0f}" width="110" height="24" rx="4" '
                   f'fill="{COLOURS[channel]}"/>'
                   f'<text x="{right_x + 55}" y="{cy + 5:.0f}" text-anchor="middle" class="chan">'
                   f'{CHANNEL_LABELS[channel]}</text>')
    out.append("</svg>")
    return Markup("".join(out))


# -- channel mix ------------------------------------------------------------------------------
@dataclass
class Mix:
    days: list[date]
    counts: dict[date, Counter]   # day -> channel -> messages with a step on that channel
    messages: Counter             # day -> messages
    suppressed: Counter           # day -> messages without any step


def channel_mix(db: Database, now: datetime, days: int = 7) -> Mix:
    today = now.astimezone(UTC).date()
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    since = datetime.combine(day_list[0], time(0), tzinfo=UTC)
    counts: dict[date, Counter] = {d: Counter() for d in day_list}
    messages: Counter = Counter()
    suppressed: Counter = Counter()
    with db.session() as session:
        rows = session.execute(select(Message.created_at, Message.route)
                               .where(Message.created_at >= since, Message.created_at <= now)
                               .execution_options(yield_per=2000))
        for created_at, route in rows:
            day = created_at.astimezone(UTC).date()
            if day not in counts or not route:  # no route yet: scheduled, decided at its send_at
                continue
            messages[day] += 1
            channels = {s.get("channel") for s in route.get("steps") or []}
            if not channels:
                suppressed[day] += 1
            for channel in channels & set(CHANNELS):
                counts[day][channel] += 1
    return Mix(day_list, counts, messages, suppressed)


def mix_svg(mix: Mix) -> Markup:
    width, height, pad_l, pad_b, pad_t = 760, 300, 44, 40, 30
    plot_h = height - pad_b - pad_t
    peak = max([c for day in mix.counts.values() for c in day.values()] + [1])
    step = max(1, -(-peak // 5))
    ticks = list(range(0, peak + step, step))
    scale = plot_h / ticks[-1]
    slot = (width - pad_l - 10) / len(mix.days)
    bar = (slot - 16) / len(CHANNELS)
    out = [f'<svg class="mix" viewBox="0 0 {width} {height + 24}" role="img" aria-labelledby="mix-title mix-desc" '
           'xmlns="http://www.w3.org/2000/svg">',
           '<title id="mix-title">Channel mix per day</title>',
           '<desc id="mix-desc">Bars per day: how many messages had a step on each channel. '
           'The table below lists the same numbers.</desc>']
    for t in ticks:
        y = pad_t + plot_h - t * scale
        out.append(f'<line x1="{pad_l}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{t}</text>')
    for i, day in enumerate(mix.days):
        x0 = pad_l + i * slot + 8
        for j, channel in enumerate(CHANNELS):
            n = mix.counts[day][channel]
            h = n * scale
            out.append(f'<rect x="{x0 + j * bar:.1f}" y="{pad_t + plot_h - h:.1f}" width="{bar - 2:.1f}" '
                       f'height="{h:.1f}" fill="{COLOURS[channel]}"><title>{day.isoformat()}: '
                       f'{CHANNEL_LABELS[channel]} {n}</title></rect>')
        out.append(f'<text x="{x0 + (slot - 16) / 2:.1f}" y="{height - pad_b + 18}" text-anchor="middle" '
                   f'class="tick">{day.strftime("%a %d %b")}</text>')
    for j, channel in enumerate(CHANNELS):
        x = pad_l + j * 120
        out.append(f'<rect x="{x}" y="{height + 6}" width="12" height="12" fill="{COLOURS[channel]}"/>'
                   f'<text x="{x + 18}" y="{height + 16}" class="tick">{CHANNEL_LABELS[channel]}</text>')
    out.append("</svg>")
    return Markup("".join(out))
