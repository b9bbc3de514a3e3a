"""Request and response shapes. Pydantic validates requests (errors name the field) and its
JSON Schemas feed /openapi.json, so the documented contract is the code's own."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from channels import DECLARED, ChannelSpec, ContentField, FieldKind
from providers.base import Channel
from providers.catalog import PUSH_PLATFORMS, device_token_problem

from .domain.addresses import check_email, check_hhmm, check_timezone, to_e164
from .domain.locales import LOCALE_PATTERN
from .domain.locales import check as check_locale

Phone = Annotated[str, Field(max_length=32, examples=["+447400123456"]), AfterValidator(to_e164)]
Email = Annotated[str, Field(max_length=320, examples=["ada@example.com"]), AfterValidator(check_email)]
Timezone = Annotated[str, Field(max_length=64, examples=["Europe/London"]), AfterValidator(check_timezone)]
HHMM = Annotated[str, AfterValidator(check_hhmm)]
UserId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@\-]+$")]
Locale = Annotated[str, Field(max_length=35, pattern=LOCALE_PATTERN, examples=["ko-KR"]), AfterValidator(check_locale)]
TemplateId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$",
                                  examples=["order_shipped"])]
VariableName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


# A device's push platform: one per push provider of the catalog ("fcm", "apns").
Platform = StrEnum("Platform", {platform.upper(): platform for platform in PUSH_PLATFORMS})


# Timestamps we accept, in UTC: wide enough for any real date, narrow enough that converting
# between offsets never leaves the range Python (and SQLite's storage) can represent.
MIN_YEAR, MAX_YEAR = 1970, 9000


def check_datetime_range(value: datetime) -> datetime:
    """`value` (aware) converted to UTC, or ValueError("date_out_of_range: ...")."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"date_out_of_range: must be between {MIN_YEAR} and {MAX_YEAR} (UTC)")
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return value
    if value.tzinfo is None:
        raise ValueError("validation_error: timestamp needs a timezone offset, e.g. 2026-01-01T09:00:00Z")
    return check_datetime_range(value)


# Context key under which the API passes the extra link schemes allowed (app deep links).
LINK_SCHEMES_CONTEXT = "action_url_schemes"


def check_link(value: str | None, allowed_schemes: tuple[str, ...] | frozenset[str]) -> str | None:
    if value is None:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    scheme = parts.scheme.lower() if parts else ""
    if scheme not in allowed_schemes or (scheme in ("http", "https") and not parts.netloc):
        raise ValueError(f"invalid_url: must be a URL with scheme {' or '.join(sorted(allowed_schemes))}")
    if any(ord(c) < 0x20 or c.isspace() for c in value):
        raise ValueError("invalid_url: must not contain spaces or control characters")
    return value


class DeviceIn(Strict):
    token: str = Field(min_length=1, max_length=4096)
    platform: Platform


MAX_DEVICE_TOKEN_CHARS = 4096  # devices.token


def _printable(token: str) -> str:
    if any(not ch.isprintable() for ch in token):
        raise ValueError("must be printable text: no control characters, tabs or line breaks")
    return token


DeviceToken = Annotated[str, Field(min_length=1, max_length=MAX_DEVICE_TOKEN_CHARS), AfterValidator(_printable)]


class ClientDeviceIn(Strict):
    """A push device (or browser push subscription) the in-app client registers for its user:
    the platform is one the provider catalog declares, the token is checked by its provider."""

    platform: Platform
    token: DeviceToken

    @field_validator("token")
    @classmethod
    def _token_fits_platform(cls, token: str, info: ValidationInfo) -> str:
        platform = info.data.get("platform")  # absent when the platform itself was refused
        problem = device_token_problem(platform.value, token) if platform is not None else None
        if problem:
            raise ValueError(problem)
        return token


class ClientDeviceRemove(Strict):
    token: DeviceToken


# One optional switch per channel spec (channels/), in declaration order.
Consents = create_model("Consents", __base__=Strict,
                        **{spec.name: (bool | None, None) for spec in DECLARED}, marketing=(bool | None, None))
ChannelSwitches = create_model(
    "ChannelSwitches", __base__=Strict,
    __doc__="One category's channels: false turns the channel off for it, true or null turns it\n"
            "back on (recipients/preferences.py).",
    **{spec.name: (StrictBool | None, None) for spec in DECLARED})


CategoryName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
# {category: {channel: bool}}; categories are checked against the active policy.
Preferences = Annotated[dict[CategoryName, ChannelSwitches], Field(max_length=100)]


class PreferencesIn(Strict):
    """The in-app client's preference center: the same map, for the token's own user."""

    preferences: Preferences


class RecipientRef(Strict):
    """Who the message is for. Optional fields override the stored profile for this
    message only."""

    user_id: UserId
    email: Email | None = None
    phone: Phone | None = None
    timezone: Timezone | None = None
    locale: Locale | None = None  # picks the template translation instead of the profile's locale


class _Links(Strict):
    @field_validator("image_url", check_fields=False)
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return check_link(value, ("https",))

    @field_validator("action_url", check_fields=False)
    @classmethod
    def _action_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        extra = (info.context or {}).get(LINK_SCHEMES_CONTEXT, ())
        return check_link(value, ("https", *extra))


# Longest inline override value per field kind (a template's sources: content/schemas.py).
OVERRIDE_MAX_CHARS = {FieldKind.SHORT: 500, FieldKind.TEXT: 100_000, FieldKind.HTML: 500_000,
                      FieldKind.IMAGE_URL: 2000, FieldKind.LINK: 2000}
_URL_KINDS = frozenset({FieldKind.IMAGE_URL, FieldKind.LINK})


def _override_field(f: ContentField) -> tuple[Any, Any]:
    if f.kind == FieldKind.EMAIL:
        return Email | None, None
    return str | None, Field(default=None, min_length=1 if f.required else None, max_length=OVERRIDE_MAX_CHARS[f.kind])


def _override_model(spec: ChannelSpec) -> type[BaseModel]:
    """`<Channel>Override`: every field of the channel's variant, each optional; the links
    checked (`_Links`: image https, action https or an allowed app scheme)."""
    base = _Links if any(f.kind in _URL_KINDS for f in spec.content_fields) else Strict
    return create_model(f"{spec.model_name}Override", __base__=base,
                        **{f.key: _override_field(f) for f in spec.content_fields})


# Per-channel content: each field given replaces the message's base content on that channel
# only (orchestrator/content/channels.py). One field per channel spec.
ChannelOverrides = create_model(
    "ChannelOverrides", __base__=Strict,
    __doc__="Per-channel content: each field given replaces the message's base content on that\n"
            "channel only (orchestrator/content/channels.py).",
    **{spec.name: (_override_model(spec) | None, None) for spec in DECLARED})


class Content(Strict):
    title: str = Field(default="", max_length=500)
    body: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=500_000)
    image_url: str | None = Field(default=None, max_length=2000)
    action_url: str | None = Field(default=None, max_length=2000)
    data: dict[str, str] = Field(default_factory=dict, max_length=50)
    channels: ChannelOverrides | None = None
    # Where rendered content came from ({id, version, locale}); set by the server, never sent.
    _source: dict[str, Any] | None = PrivateAttr(default=None)

    @field_validator("image_url")
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return check_link(value, ("https",))

    @field_validator("action_url")
    @classmethod
    def _action_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        extra = (info.context or {}).get(LINK_SCHEMES_CONTEXT, ())
        return check_link(value, ("https", *extra))


class TemplateRef(Strict):
    """Send with a stored template instead of inline content."""

    id: TemplateId
    version: int | None = Field(default=None, ge=1, le=2_147_483_647, description="default: the latest")
    variables: dict[VariableName, Any] = Field(default_factory=dict, max_length=100)
    reply_to: Email | None = None  # email Reply-To for this message; default: the template's
    # Link schemes allowed in rendered action URLs (the parse context's), for rendering later.
    _link_schemes: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _keep_link_schemes(self, info: ValidationInfo) -> TemplateRef:
        self._link_schemes = tuple((info.context or {}).get(LINK_SCHEMES_CONTEXT, ()))
        return self


class SendRequest(Strict):
    recipient: RecipientRef
    category: str = Field(min_length=1, max_length=64, examples=["security_alert"])
    urgency: Urgency = Urgency.NORMAL
    content: Content | None = Field(default=None, description="exactly one of content and template")
    template: TemplateRef | None = None
    expires_at: datetime | None = None
    # Decide and send at this time instead of now (sending/scheduling.py checks its range).
    send_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=50)

    _expires_aware = field_validator("expires_at", "send_at")(classmethod(lambda cls, v: _aware(v)))

    @field_validator("send_at", mode="before")
    @classmethod
    def _send_at_text(cls, value: Any) -> Any:
        # A number would be read as seconds since 1970 and silently sent now.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("validation_error: an ISO 8601 datetime with an offset, e.g. 2026-01-01T09:00:00Z")
        return value


class RecipientUpsert(Strict):
    email: Email | None = None
    phone: Phone | None = None
    timezone: Timezone | None = None
    locale: str | None = Field(default=None, max_length=35)
    consents: Consents | None = None
    devices: list[DeviceIn] | None = Field(default=None, max_length=20)
    last_active_at: datetime | None = None
    quiet_hours: tuple[HHMM, HHMM] | None = None
    preferences: Preferences | None = None

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
    route: Route | None = None  # null while the message is scheduled (decided at send_at)
    send_at: datetime | None = None
