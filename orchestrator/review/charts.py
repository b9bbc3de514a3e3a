"""The channel mix picture on the review pages, computed and drawn on the server as inline SVG:
``channel_mix`` counts messages per day per channel over the last days, from ``Message.route``
steps; ``mix_svg`` draws grouped bars. (What a policy does per category is a table in words:
policy_reading.py.)"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from markupsafe import Markup

from channels import DECLARED, NAMES

from ..lifecycle import messages as message_rows
from ..storage.db import Database

CHANNELS = NAMES  # every channel spec, in declaration order
CHANNEL_LABELS = {spec.name: spec.label for spec in DECLARED}
COLOURS = {spec.name: spec.colour for spec in DECLARED}


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
        rows = message_rows.created_routes(session, since, now)
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
