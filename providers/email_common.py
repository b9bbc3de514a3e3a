"""Helpers shared by the email provider and its receipt parsers.

The SMTP provider stamps every message with ids the receipt parsers can read back:
`Message-ID: <{attempt_id}.{message_id}@{domain}>` and `X-Orchestrator-Message-Id`.
Both directions live here so the format is written once, and so does how the parsers'
receipt codes read as address signals (bounces, opt-outs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import AttemptStatus
from .spec import AddressReading, AddressSignal

ORCHESTRATOR_MESSAGE_ID_HEADER = "X-Orchestrator-Message-Id"
ORCHESTRATOR_ATTEMPT_ID_HEADER = "X-Orchestrator-Attempt-Id"
# SendGrid custom args ("unique_args" in the SMTP relay's X-SMTPAPI header) echoed on every
# event, engagement events included (those carry no smtp-id).
SENDGRID_ARG_MESSAGE_ID = "orchestrator_message_id"
SENDGRID_ARG_PROVIDER_MESSAGE_ID = "orchestrator_provider_message_id"
DEFAULT_MESSAGE_ID_DOMAIN = "orchestrator.local"

# Ids are ULIDs/UUIDs in practice; restricting the alphabet keeps the Message-ID a valid
# dot-atom and makes the split on the first "." unambiguous when it is read back. Read back,
# an id longer than the orchestrator's (ULIDs, 26 characters) is not one we minted.
_ID_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_MESSAGE_ID = re.compile(
    r"^<?(?P<attempt>[A-Za-z0-9_-]{1,26})\.(?P<message>[A-Za-z0-9_-]{1,26})@(?P<domain>[^<>@\s]+)>?$"
)


@dataclass(frozen=True)
class OrchestratorMessageId:
    attempt_id: str
    message_id: str
    domain: str

    @property
    def header_value(self) -> str:
        """The value for the Message-ID header, angle brackets included."""
        return f"<{self.attempt_id}.{self.message_id}@{self.domain}>"

    @property
    def bare(self) -> str:
        """The Message-ID without angle brackets: what `SendResult.provider_message_id` holds."""
        return f"{self.attempt_id}.{self.message_id}@{self.domain}"


def make_message_id(attempt_id: str, message_id: str, domain: str) -> OrchestratorMessageId:
    for label, value in (("attempt_id", attempt_id), ("message_id", message_id)):
        if not _ID_PART.match(value):
            raise ValueError(f"{label} must match [A-Za-z0-9_-]+ to fit in a Message-ID")
    return OrchestratorMessageId(attempt_id, message_id, domain)


def parse_message_id(value: str | None, *, domain: str | None = None) -> OrchestratorMessageId | None:
    """Read our ids back from a Message-ID header value (with or without <>).

    Returns None for Message-IDs we did not mint. When `domain` is given only that domain
    is accepted, so a foreign `<abc.def@mail.example>` is not mistaken for ours.
    """
    if not value:
        return None
    match = _MESSAGE_ID.match(value.strip())
    if not match:
        return None
    if domain is not None and match["domain"].lower() != domain.lower():
        return None
    return OrchestratorMessageId(match["attempt"], match["message"], match["domain"])


# Receipt codes the email receipt parsers (SendGrid, SES) give, read as address signals.
HARD_BOUNCE_CODES = frozenset({"hard_bounce", "bounce"})
OPT_OUT_CODES = frozenset({"spamreport", "unsubscribe", "complaint"})  # withdraw marketing consent


def email_address_signal(code: str, status: AttemptStatus | str | None) -> AddressReading | None:
    """An unsubscribe or spam complaint withdraws marketing consent (a transactional email
    still goes); only a hard bounce kills the address."""
    if code in OPT_OUT_CODES:
        return AddressReading(AddressSignal.MARKETING_OPT_OUT, f"email {code}")
    if status == AttemptStatus.BOUNCED and code in HARD_BOUNCE_CODES:
        return AddressReading(AddressSignal.DEAD, f"email {code}")
    return None
