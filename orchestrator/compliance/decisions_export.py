"""CSV export of routing decisions for a period: one row per message (its user and title) with
the channels planned (`channels`, channel/mode in plan order), the channels it went out on
(`channels_used`: an attempt sent on them) and, for every channel not planned, the rule that
excluded it. Streamed in keyset pages so an export of any size runs in constant memory.

Service API: ``iter_csv(db, since, until, batch_size=2000) -> Iterator[str]`` (CSV text chunks,
header first); ``COLUMNS``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from ..lifecycle import attempts
from ..sending import message_view
from ..storage.db import Database
from ..storage.models import Message

COLUMNS = ("message_id", "created_at", "user_id", "category", "urgency", "status", "title", "policy_version",
           "channels", "channels_used", "excluded", "suppressed", "suppressed_reasons")


def spreadsheet_cell(text: str) -> str:
    """A spreadsheet must not read a cell as a formula (CSV injection): user ids and titles
    are the sender's strings."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(m, used: list[str]) -> list[str]:
    route = m.route or {}
    steps = route.get("steps") or []
    excluded = route.get("excluded") or []
    return [m.id, m.created_at.isoformat(), spreadsheet_cell(m.user_id), m.category, m.urgency, m.status,
            spreadsheet_cell(message_view.title_of(m.content)), m.policy_version,
            ";".join(f"{s['channel']}/{s['mode']}" for s in steps), ";".join(used),
            ";".join(f"{e['channel']}:{e['rule']}" for e in excluded),
            "true" if route.get("suppressed") else "false",
            " | ".join(route.get("suppressed_reasons") or [])]


def iter_csv(db: Database, since: datetime, until: datetime, batch_size: int = 2000) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(COLUMNS)
    yield flush()
    columns = (Message.id, Message.created_at, Message.user_id, Message.category, Message.urgency, Message.status,
               Message.content, Message.policy_version, Message.route)
    last_id = ""
    while True:
        with db.session() as session:
            rows = session.execute(select(*columns).where(Message.created_at >= since, Message.created_at <= until,
                                                          Message.id > last_id)
                                   .order_by(Message.id).limit(batch_size)).all()
            used = attempts.channels_used(session, [m.id for m in rows])
        if not rows:
            return
        for m in rows:
            writer.writerow(_row(m, used.get(m.id, [])))
        yield flush()
        last_id = rows[-1].id
        if len(rows) < batch_size:
            return
