"""WhatsApp through Twilio's WhatsApp sender: the same Messages API, account and status
callbacks (`/webhooks/twilio`, signed with the account's auth token) as Twilio SMS, with
`whatsapp:` addresses.

WhatsApp lets a business start a conversation only with a pre-approved template; free-form
text is allowed within 24 hours of the user's last message to the business, and otherwise
fails after Twilio's 201 with error 63016. Notifications are business-initiated, so with
TWILIO_WHATSAPP_CONTENT_SID set every message goes as that template (Content API: `ContentSid`,
with the title and the text as its variables {{1}} and {{2}}); without it the text goes
free-form, which reaches only users inside their 24-hour window, and the policy's fallback
(SMS or email) takes the rest. Twilio reports `delivered` and `read`; a number that is not on
WhatsApp (63003) reads as the person not being reachable there: their WhatsApp opt-in is
withdrawn, and their phone number stays valid for SMS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import AttemptStatus, Channel, Delivery
from .spec import AddressReading, AddressSignal, ProviderSpec
from .twilio_sms import TwilioSettings, TwilioSMSProvider
from .twilio_sms import address_signal as sms_address_signal

ENV_FROM = "TWILIO_WHATSAPP_FROM"
ENV_CONTENT_SID = "TWILIO_WHATSAPP_CONTENT_SID"
PREFIX = "whatsapp:"
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
TEMPLATE_VARIABLE_CHARS = 1024  # Twilio's limit for one content variable's value
# Codes only WhatsApp gives (twilio_errors has the account-wide and SMS ones).
NOT_ON_WHATSAPP = "63003"     # the channel could not find the To address
OUTSIDE_WINDOW = "63016"      # free-form text outside the 24-hour window: this message only


@dataclass(frozen=True)
class WhatsAppSettings:
    twilio: TwilioSettings
    sender: str                     # E.164, without the prefix
    content_sid: str | None = None  # the approved template every notification is sent as

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WhatsAppSettings | None:
        """None without TWILIO_WHATSAPP_FROM; the Twilio account's variables are required with it."""
        sender = (env.get(ENV_FROM) or "").strip().removeprefix(PREFIX)
        if not sender:
            return None
        if not re.fullmatch(r"\+[1-9][0-9]{6,14}", sender):
            raise ValueError(f"{ENV_FROM}: expected an E.164 number such as +14155238886 (optionally whatsapp:+...)")
        content_sid = (env.get(ENV_CONTENT_SID) or "").strip() or None
        if content_sid is not None and not CONTENT_SID.match(content_sid):
            raise ValueError(f"{ENV_CONTENT_SID}: expected a Content SID, HX followed by 32 hexadecimal digits")
        # The sender given stands for TWILIO_FROM_NUMBER, which SMS may not have.
        twilio = TwilioSettings.from_env({**env, "TWILIO_FROM_NUMBER": sender})
        if twilio is None:
            raise ValueError(f"{ENV_FROM} is set but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not")
        return cls(twilio, sender, content_sid)

    def __repr__(self) -> str:  # never show the token
        return f"WhatsAppSettings(account_sid={self.twilio.account_sid!r}, template={self.content_sid is not None})"


class TwilioWhatsAppProvider(TwilioSMSProvider):
    name = "twilio-whatsapp"
    channel = Channel.WHATSAPP

    def __init__(self, settings: WhatsAppSettings, *, timeout: float = 10.0) -> None:
        t = settings.twilio
        super().__init__(t.account_sid, t.auth_token, from_number=PREFIX + settings.sender,
                         base_url=t.api_base_url, status_callback_url=t.status_callback_url, timeout=timeout)
        self.content_sid = settings.content_sid

    def message_params(self, delivery: Delivery) -> dict[str, Any]:
        params = super().message_params(delivery)
        params["to"] = PREFIX + delivery.to
        params.pop("validity_period", None)  # an SMS queue setting; WhatsApp ignores it
        if self.content_sid:
            del params["body"]
            params["content_sid"] = self.content_sid
            params["content_variables"] = json.dumps(
                {"1": delivery.title[:TEMPLATE_VARIABLE_CHARS] or "-",
                 "2": delivery.body[:TEMPLATE_VARIABLE_CHARS] or "-"}, ensure_ascii=False)
        return params

    def __repr__(self) -> str:  # never show the token
        return f"TwilioWhatsAppProvider(account_sid={self.account_sid!r}, base_url={self.base_url!r})"


def address_signal(code: str, status: AttemptStatus | str | None) -> AddressReading | None:
    """A number not on WhatsApp: the person cannot be reached there (their opt-in goes, the
    number stays valid for SMS). Otherwise Twilio's account-wide reading, except that a dead
    number on WhatsApp says nothing certain about SMS: it is not read as a dead address."""
    if status not in (AttemptStatus.UNDELIVERED, AttemptStatus.FAILED) or not code:
        return None
    if code == NOT_ON_WHATSAPP:
        return AddressReading(AddressSignal.OPT_OUT, f"not on WhatsApp ({code})")
    reading = sms_address_signal(code, status)
    return reading if reading is not None and reading.signal != AddressSignal.DEAD else None


SPEC = ProviderSpec(name=TwilioWhatsAppProvider.name, channel=Channel.WHATSAPP, rank=15,
                    settings=WhatsAppSettings.from_env, build=TwilioWhatsAppProvider, signals=address_signal)
