"""Shared builders for the policy tests (a uniquely named module, so it cannot clash with any
other conftest on sys.path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from policies import Device, MessageFacts, RecipientFacts

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # 12:00 in Seoul, outside quiet hours


def recipient(**overrides) -> RecipientFacts:
    base = dict(
        user_id="u-1",
        email="minji@example.com",
        phone="+821012345678",
        devices=(Device("fcm-1", "fcm"),),
        timezone="Asia/Seoul",
        last_active_at=NOW - timedelta(days=1),
        connected=True,
    )
    base.update(overrides)
    return RecipientFacts(**base)


def message(category="reminder", **overrides) -> MessageFacts:
    return MessageFacts(category=category, **{"body": "Hello", **overrides})
