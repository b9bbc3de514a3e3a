"""The contract every provider client meets.

A provider turns one `Delivery` into a `SendResult`, or raises `ProviderError` carrying an
`ErrorClass`. The orchestrator decides what to do with each class (retry, fall back, fail
over); providers only classify. Providers import nothing from `orchestrator` or `policies`;
the channel vocabulary comes from `channels/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from channels import Channel  # the channel vocabulary lives with the channel specs (channels/)


class AttemptStatus(StrEnum):
    """Ordered delivery states of one attempt; terminal failures rank above `delivered`
    only in the sense that they end the attempt (see `is_terminal`)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    BOUNCED = "bounced"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Engagement(StrEnum):
    """Engagement is recorded as timestamps beside the status, never as a status."""

    SEEN = "seen"
    READ = "read"
    CLICKED = "clicked"
    ACKNOWLEDGED = "acknowledged"


PROGRESS_RANK: dict[AttemptStatus, int] = {
    AttemptStatus.QUEUED: 0,
    AttemptStatus.SENDING: 1,
    AttemptStatus.SENT: 2,
    AttemptStatus.DELIVERED: 3,
}
TERMINAL_FAILURES = frozenset(
    {
        AttemptStatus.UNDELIVERED,
        AttemptStatus.BOUNCED,
        AttemptStatus.FAILED,
        AttemptStatus.EXPIRED,
        AttemptStatus.CANCELLED,
    }
)


def is_terminal(status: AttemptStatus) -> bool:
    return status == AttemptStatus.DELIVERED or status in TERMINAL_FAILURES


def moves_forward(current: AttemptStatus, new: AttemptStatus) -> bool:
    """True when `new` may replace `current`. Status never moves back: a terminal state
    (delivered included) is final, and among progress states only a higher rank wins."""
    if is_terminal(current):
        return False
    if new in TERMINAL_FAILURES:
        return True
    return PROGRESS_RANK[new] > PROGRESS_RANK[current]


class ErrorClass(StrEnum):
    TRANSIENT = "transient"          # timeouts, connection errors, 5xx, 429: retry with backoff
    PERMANENT = "permanent"          # bad address/token, unsubscribed, hard bounce: next step now
    CONFIGURATION = "configuration"  # bad credentials, sender not allowed: fail over, alert


class ProviderError(Exception):
    def __init__(
        self,
        error_class: ErrorClass,
        code: str,
        detail: str = "",
        *,
        provider: str = "",
        retry_after: float | None = None,
        deactivate_address: bool = False,
    ) -> None:
        super().__init__(f"{provider or 'provider'} {error_class}: {code} {detail}".strip())
        self.error_class = ErrorClass(error_class)
        self.code = str(code)
        self.detail = detail
        self.provider = provider
        self.retry_after = retry_after
        # True when the address itself is dead (unregistered token, invalid number, hard
        # bounce): the orchestrator flags the address so the policy stops choosing it.
        self.deactivate_address = deactivate_address




@dataclass(frozen=True)
class Delivery:
    """What one attempt asks a provider to deliver. `to` is the channel's address:
    E.164 phone, email address, or push device token (with `platform`)."""

    message_id: str
    attempt_id: str
    channel: Channel
    to: str
    title: str = ""
    body: str = ""
    html: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    category: str = ""
    urgency: str = "normal"
    expires_at: datetime | None = None
    platform: str | None = None          # push: "fcm" or "apns"
    status_callback_url: str | None = None
    image_url: str | None = None
    action_url: str | None = None
    marketing: bool = False              # email: adds List-Unsubscribe
    unsubscribe_url: str | None = None
    reply_to: str | None = None          # email: Reply-To


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str
    status: AttemptStatus = AttemptStatus.SENT
    sandboxed: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


class SearchIncomplete(Exception):
    """A provider's search for an earlier send (`find_sent`) could not read everything since
    the send started (more messages than its bounds allow): `found` holds the matches it did
    read, and the caller must not take "not found" for "not sent"."""

    def __init__(self, detail: str, found: list[SendResult], *, provider: str = "") -> None:
        super().__init__(f"{provider or 'provider'}: search incomplete: {detail}")
        self.detail = detail
        self.found = found
        self.provider = provider


@dataclass(frozen=True)
class Receipt:
    """A provider's word about one earlier send, parsed from a verified webhook."""

    provider: str
    provider_message_id: str
    status: AttemptStatus | None
    event_id: str                        # provider's own id for dedup
    occurred_at: datetime | None
    raw: dict[str, Any]
    engagement: Engagement | None = None
    error_code: str | None = None
    message_id: str | None = None        # ours, when the provider echoes it back


class SignatureError(Exception):
    """A webhook whose signature, timestamp or certificate does not verify."""


class EventFault(StrEnum):
    """Why a signed webhook event cannot be taken. The values are the orchestrator's error
    codes for the same faults (orchestrator.errors.ErrorCode)."""

    NESTING_TOO_DEEP = "nesting_too_deep"      # JSON nested beyond what is read
    INVALID_CHARACTER = "invalid_character"    # NUL, or a lone UTF-16 surrogate
    INVALID_NUMBER = "invalid_number"          # NaN, Infinity, an integer beyond 64 bits
    DATE_OUT_OF_RANGE = "date_out_of_range"    # a time no calendar we store can hold
    INVALID_VALUE = "validation_error"         # wrong type, too long


class MalformedEvent(ValueError):
    """A field of a (verified) webhook event that cannot be stored or read; `field` names it
    as the provider's payload does ("MessageSid", "0.timestamp", "Message.mail.headers")."""

    def __init__(self, field: str, fault: EventFault, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.fault = fault
        self.reason = reason


@dataclass(frozen=True)
class RejectedEvent:
    """A signed event refused for a malformed field, in a form that can be stored: `raw` is
    the event with every value made storable (see `providers.event_fields.storable`) and
    `event_id` is stable across the provider's redeliveries of the same event."""

    provider: str
    event_id: str
    error: MalformedEvent
    raw: dict[str, Any]


@runtime_checkable
class Provider(Protocol):
    name: str
    channel: Channel

    def send(self, delivery: Delivery) -> SendResult: ...
