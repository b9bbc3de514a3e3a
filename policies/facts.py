"""Input facts of a routing decision: who the recipient is and what the message is.

Frozen dataclasses so a decision can be replayed from stored facts: ``to_dict`` gives a
JSON-safe dict (datetimes as ISO 8601), ``from_dict`` reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Any

from .plan import fast_new
from .quoting import quote

_EMPTY: Mapping[str, bool] = MappingProxyType({})


def parse_datetime(value: Any, name: str) -> datetime | None:
    """ISO 8601 string or datetime -> timezone-aware UTC datetime. Naive values are UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"field '{name}': not an ISO 8601 datetime: {quote(value)}") from exc
    if not isinstance(value, datetime):
        raise ValueError(f"field '{name}': expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def _check_keys(cls: type, data: Mapping[str, Any]) -> None:
    known = _field_names(cls)
    if data.keys() <= known:
        return
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")


@dataclass(frozen=True)
class Device:
    token: str
    platform: str  # a push platform of providers/catalog.py: "fcm", "apns"
    active: bool = True  # False once the provider says the token is unregistered

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "platform": self.platform, "active": self.active}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Device:
        _check_keys(cls, d)
        return fast_new(cls, {"token": str(d["token"]), "platform": str(d["platform"]),
                              "active": bool(d.get("active", True))})


def _preferences(raw: Any) -> Mapping[str, Mapping[str, bool]]:
    if not raw:
        return _EMPTY
    if not isinstance(raw, Mapping) or not all(isinstance(v, Mapping) for v in raw.values()):
        raise ValueError("field 'preferences': expected {category: {channel: true/false}}")
    return MappingProxyType({str(c): MappingProxyType({str(ch): bool(on) for ch, on in chs.items()})
                             for c, chs in raw.items()})


@dataclass(frozen=True)
class RecipientFacts:
    user_id: str
    email: str | None = None
    email_valid: bool = True  # False after a hard bounce
    phone: str | None = None  # E.164
    phone_valid: bool = True  # False after invalid-number errors
    devices: tuple[Device, ...] = ()
    # Missing key -> the policy's consent_defaults (transactional channels True, marketing False).
    consents: Mapping[str, bool] = field(default_factory=lambda: _EMPTY)
    timezone: str = "UTC"  # IANA name
    quiet_hours: tuple[str, str] | None = None  # ("22:00", "08:00"); overrides the policy default
    last_active_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    connected: bool = False  # a live in-app stream is open right now
    in_app_count_day: int = 0
    in_app_count_week: int = 0
    # Messages of capped categories (every channel together) in the recipient's current local
    # day and ISO week: the inputs of a `cap_messages` rule. Counted only when one can apply.
    message_count_day: int = 0
    message_count_week: int = 0
    # {category: {channel: False}}: channels the user turned off for a category. Missing or
    # True = on. Ignored for the categories the policy locks (security, legal, codes).
    preferences: Mapping[str, Mapping[str, bool]] = field(default_factory=lambda: _EMPTY)

    def __hash__(self) -> int:  # consents is a mapping; hash what identifies the facts
        return hash((self.user_id, self.email, self.phone, self.devices,
                     tuple(sorted(self.consents.items()))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "email_valid": self.email_valid,
            "phone": self.phone,
            "phone_valid": self.phone_valid,
            "devices": [d.to_dict() for d in self.devices],
            "consents": dict(self.consents),
            "timezone": self.timezone,
            "quiet_hours": list(self.quiet_hours) if self.quiet_hours else None,
            "last_active_at": _iso(self.last_active_at),
            "last_heartbeat_at": _iso(self.last_heartbeat_at),
            "connected": self.connected,
            "in_app_count_day": self.in_app_count_day,
            "in_app_count_week": self.in_app_count_week,
            "message_count_day": self.message_count_day,
            "message_count_week": self.message_count_week,
            "preferences": {c: dict(chs) for c, chs in self.preferences.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecipientFacts:
        _check_keys(cls, d)
        quiet = d.get("quiet_hours")
        if quiet is not None:
            if len(quiet) != 2:
                raise ValueError("field 'quiet_hours': expected [start, end]")
            quiet = (str(quiet[0]), str(quiet[1]))
        # object.__new__ and one __dict__ update, not the frozen dataclass's __init__ (one
        # object.__setattr__ per field): replays of stored facts build one per message.
        return fast_new(cls, dict(
            user_id=str(d["user_id"]),
            email=d.get("email"),
            email_valid=bool(d.get("email_valid", True)),
            phone=d.get("phone"),
            phone_valid=bool(d.get("phone_valid", True)),
            devices=tuple(
                x if isinstance(x, Device) else Device.from_dict(x) for x in d.get("devices") or ()
            ),
            consents=MappingProxyType({str(k): bool(v) for k, v in (d.get("consents") or {}).items()}),
            timezone=str(d.get("timezone") or "UTC"),
            quiet_hours=quiet,
            last_active_at=parse_datetime(d.get("last_active_at"), "last_active_at"),
            last_heartbeat_at=parse_datetime(d.get("last_heartbeat_at"), "last_heartbeat_at"),
            connected=bool(d.get("connected", False)),
            in_app_count_day=int(d.get("in_app_count_day", 0)),
            in_app_count_week=int(d.get("in_app_count_week", 0)),
            message_count_day=int(d.get("message_count_day", 0)),
            message_count_week=int(d.get("message_count_week", 0)),
            preferences=_preferences(d.get("preferences")),
        ))


@dataclass(frozen=True)
class MessageFacts:
    category: str
    urgency: str = "normal"  # "low" | "normal" | "high" | "critical"
    title: str = ""
    body: str = ""
    expires_at: datetime | None = None
    has_rich_media: bool = False
    content_bytes: int = 0  # 0 -> computed from title + body as UTF-8
    # The exact text an SMS would carry, as the service's SMS provider builds it; None ->
    # `segments.sms_text(title, body)`. Segment facts are counted on this text.
    sms_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "category": self.category,
            "urgency": self.urgency,
            "title": self.title,
            "body": self.body,
            "expires_at": _iso(self.expires_at),
            "has_rich_media": self.has_rich_media,
            "content_bytes": self.content_bytes,
        }
        if self.sms_text is not None:
            d["sms_text"] = self.sms_text
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MessageFacts:
        _check_keys(cls, d)
        return fast_new(cls, dict(
            category=str(d["category"]),
            urgency=str(d.get("urgency") or "normal"),
            title=str(d.get("title") or ""),
            body=str(d.get("body") or ""),
            expires_at=parse_datetime(d.get("expires_at"), "expires_at"),
            has_rich_media=bool(d.get("has_rich_media", False)),
            content_bytes=int(d.get("content_bytes") or 0),
            sms_text=None if d.get("sms_text") is None else str(d["sms_text"]),
        ))
