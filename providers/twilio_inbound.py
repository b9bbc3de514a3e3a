"""Twilio inbound messages (the "A message comes in" webhook): which opt-out keyword, if
any, a reply carries.

Twilio's own Advanced Opt-Out handles the standard keywords at the carrier level: after
STOP it blocks every further SMS to that number (error 21610) and auto-replies the
confirmation, START/YES/UNSTOP lifts the block, HELP/INFO gets the configured help text.
So the webhook answers an empty TwiML ``<Response/>`` (a reply of ours would be a second
one) and only keeps our consent in step with the carrier's block. When Advanced Opt-Out is
on, Twilio names the keyword's class in `OptOutType` (STOP / START / HELP); it is used
when present, the message text otherwise.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from twilio.twiml.messaging_response import MessagingResponse

from . import event_fields
from .base import EventFault, MalformedEvent


class InboundKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    OTHER = "other"


# Twilio's default keyword lists (Advanced Opt-Out, "Default" configuration).
KEYWORDS: dict[str, InboundKind] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), InboundKind.OPT_OUT),
    **dict.fromkeys(("START", "YES", "UNSTOP"), InboundKind.OPT_IN),
    **dict.fromkeys(("HELP", "INFO"), InboundKind.HELP),
}
_OPT_OUT_TYPES = {"STOP": InboundKind.OPT_OUT, "START": InboundKind.OPT_IN, "HELP": InboundKind.HELP}
_TRIM = string.whitespace + string.punctuation

# The form fields read, and the longest accepted: a sender is an E.164 number (at most 16
# characters) or a channel address such as "whatsapp:+14155238886"; SIDs are 34 characters.
INBOUND_LIMITS: dict[str, int] = {"From": 64, "MessageSid": 64, "OptOutType": 32}


@dataclass(frozen=True)
class InboundMessage:
    sender: str          # E.164, the number that wrote to us
    kind: InboundKind
    message_sid: str


def classify(text: str) -> InboundKind:
    """A keyword is the whole message, any case, surrounding spaces and punctuation ignored
    ("Stop", " stop. "); a sentence that merely contains one is not a keyword."""
    return KEYWORDS.get(text.strip(_TRIM).upper(), InboundKind.OTHER)


def parse_inbound(form: Mapping[str, Any]) -> InboundMessage:
    """The parts of a (verified) inbound-message webhook we act on. MalformedEvent (a
    ValueError) names a missing or malformed field."""
    event_fields.check_values(dict(form), [])
    event_fields.check_texts(form, INBOUND_LIMITS)
    sender = str(form.get("From") or "").strip()
    if not sender:
        raise MalformedEvent("From", EventFault.INVALID_VALUE, "missing: the number that wrote")
    opt_out_type = str(form.get("OptOutType") or "").strip().upper()
    kind = _OPT_OUT_TYPES.get(opt_out_type) or classify(str(form.get("Body") or ""))
    return InboundMessage(sender, kind, str(form.get("MessageSid") or ""))


def empty_twiml() -> str:
    """``<Response/>``: no reply of ours; Twilio sends the standard keyword replies itself."""
    return str(MessagingResponse())
