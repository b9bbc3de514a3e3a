"""Request and response shapes. Pydantic validates requests (errors name the field) and its
JSON Schemas feed /openapi.json, so the documented contract is the code's own."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from providers.base import Channel

from .domain.addresses import check_email, check_hhmm, check_timezone, to_e164

Phone = Annotated[str, Field(max_length=32, examples=["+447700900123"]), AfterValidator(to_e164)]
Email = Annotated[str, Field(max_length=320, examples=["ada@example.com"]), AfterValidator(check_email)]
Timezone = Annotated[str, Field(max_length=64, examples=["Europe/London"]), AfterValidator(check_timezone)]
HHMM = Annotated[str, AfterValidator(check_hhmm)]
UserId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@\-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Platform(StrEnum):
    FCM = "fcm"
    APNS = "apns"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("validation_error: timestamp needs a timezone offset, e.g. 2026-01-01T09:00:00Z")
    return value


class DeviceIn(Strict):
    token: str = Field(min_length=1, max_length=4096)
    platform: Platform


class Consents(Strict):
    in_app: bool | None = None
    push: bool | None = None
    sms: bool | None = None
    email: bool | None = None
    marketing: bool | None = None


class RecipientRef(Strict):
    """Who the message is for. Optional fields override the stored profile for this
    message only."""

    user_id: UserId
    email: Email | None = None
    phone: Phone | None = None
    timezone: Timezone | None = None


class Content(Strict):
    title: str = Field(default="", max_length=500)
    body: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=500_000)
    image_url: str | None = Field(default=None, max_length=2000)
    action_url: str | None = Field(default=None, max_length=2000)
    data: dict[str, str] = Field(default_factory=dict, max_length=50)


class SendRequest(Strict):
    recipient: RecipientRef
    category: str = Field(min_length=1, max_length=64, examples=["security_alert"])
    urgency: Urgency = Urgency.NORMAL
    content: Content
    expires_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=50)

    _expires_aware = field_validator("expires_at")(classmethod(lambda cls, v: _aware(v)))


class RecipientUpsert(Strict):
    email: Email | None = None
    phone: Phone | None = None
    timezone: Timezone | None = None
    locale: str | None = Field(default=None, max_length=35)
    consents: Consents | None = None
    devices: list[DeviceIn] | None = Field(default=None, max_length=20)
    last_active_at: datetime | None = None
    quiet_hours: tuple[HHMM, HHMM] | None = None

    _active_aware = field_validator("last_active_at")(classmethod(lambda cls, v: _aware(v)))


class PresenceIn(Strict):
    connected: bool | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class RouteStep(BaseModel):
    channel: Channel
    mode: str
    provider: str | None = None
    after_seconds: int | None = None
    unless_status: str | None = None
    not_before: datetime | None = None
    hold_ttl_seconds: int | None = None
    reason: str = ""


class RouteExclusion(BaseModel):
    channel: Channel
    rule: str
    reason: str


class Route(BaseModel):
    policy_version: str
    steps: list[RouteStep]
    excluded: list[RouteExclusion]
    suppressed: bool = False
    suppressed_reasons: list[str] = []
    requires: list[str] = []


class MessageAccepted(BaseModel):
    id: str
    status: str
    route: Route
