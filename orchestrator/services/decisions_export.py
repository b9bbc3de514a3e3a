"""CSV export of routing decisions for a period: one row per message with the channels used
and, for every channel not used, the rule that excluded it. Streamed in keyset pages so an
export of any size runs in constant memory.

Service API: ``iter_csv(db, since, until, batch_size=2000) -> Iterator[str]`` (CSV text chunks,
header first); ``COLUMNS``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from ..storage.db import Database
from ..storage.models import Message

COLUMNS = ("message_id", "created_at", "category", "urgency", "status", "policy_version", "channels",
           "excluded", "suppressed", "suppressed_reasons")


def _row(m) -> list[str]:
    route = m.route or {}
    steps = route.get("steps") or []
    excluded = route.get("excluded") or []
    return [m.id, m.created_at.isoformat(), m.category, m.urgency, m.status, m.policy_version,
            ";".join(f"{s['channel']}/{s['mode']}" for s in steps),
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
    columns = (Message.id, Message.created_at, Message.category, Message.urgency, Message.status,
               Message.policy_version, Message.route)
    last_id = ""
    while True:
        with db.session() as session:
            rows = session.execute(select(*columns).where(Message.created_at >= since, Message.created_at <= until,
                                                          Message.id > last_id)
                                   .order_by(Message.id).limit(batch_size)).all()
        if not rows:
            return
        for m in rows:
            writer.writerow(_row(m))
        yield flush()
        last_id = rows[-1].id
        if len(rows) < batch_size:
            return
