"""Address and consent signals, in one place.

Providers tell us two kinds of things about a recipient, at send time (a refused send) or
later (a receipt webhook):

- the ADDRESS is dead: an invalid or disconnected phone number, a hard-bounced email
  address, an unregistered push token. The address is flagged so the policy stops choosing
  it (`reachable.<channel>` becomes false); a user who has since changed address keeps the
  new one.
- the PERSON said no: an SMS opt-out (Twilio 21610, STOP), an email unsubscribe, a spam
  report or complaint. What they withdrew is exactly what they said no to:
  * an SMS STOP withdraws SMS consent (the carrier blocks every SMS to that number anyway);
  * an email unsubscribe, spam report or complaint withdraws MARKETING consent only. Email
    stays available for security alerts, legal notices and the OTP fallback, which the user
    cannot unsubscribe from (seed 000 #2/#3: critical and regulatory messages must reach
    the user outside the app). A SendGrid group unsubscribe names its group; every group we
    send with is a marketing group, so it is the same withdrawal.
  Hard bounces are about the address, not the person: they mark the address invalid and
  leave consents alone.
- the PERSON wrote to us (inbound SMS, `apply_to_phone`): STOP and its synonyms withdraw SMS
  consent, START / YES / UNSTOP grant it again, for every recipient with that number (the
  carrier's block is per number). HELP changes nothing.

`attempt` is any object with `channel`, `user_id` and `address` attributes: an ORM
`Attempt`, or a deliver-path `plans.Row`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

import channels
from channels import Reach
from providers import catalog
from providers.base import AttemptStatus, Channel, ProviderError
from providers.spec import AddressReading, AddressSignal

from ..storage.models import Device, Recipient

# What a marketing opt-out (an email unsubscribe or spam complaint) withdraws.
MARKETING_CONSENT = "marketing"


class AttemptLike(Protocol):
    channel: str
    user_id: str
    address: str | None


@dataclass(frozen=True)
class Signal:
    """What one provider answer says about the recipient."""

    address_dead: bool = False
    withdraw: str | None = None   # a consent key ("sms", "marketing") the person withdrew
    why: str = ""
    grant: str | None = None      # a consent key the person gave (back): an SMS START

    def __bool__(self) -> bool:
        return self.address_dead or self.withdraw is not None or self.grant is not None


NOTHING = Signal()


def _signal(channel: str, reading: AddressReading | None) -> Signal:
    """A provider's reading of its code (providers/catalog.py) as what changes here."""
    if reading is None:
        return NOTHING
    if reading.signal == AddressSignal.OPT_OUT:
        return Signal(withdraw=str(channel), why=reading.why)
    if reading.signal == AddressSignal.MARKETING_OPT_OUT:
        return Signal(withdraw=MARKETING_CONSENT, why=reading.why)
    return Signal(address_dead=True, why=reading.why)


def signal_for_error(channel: str, error: ProviderError) -> Signal:
    """A refused send (ProviderError at send time): an opt-out in the channel's providers'
    error tables, else a dead address when the provider says so."""
    signal = _signal(channel, catalog.address_signal(channel, error.code, AttemptStatus.FAILED))
    if signal.withdraw is not None:
        return signal
    if error.deactivate_address:
        return Signal(address_dead=True, why=f"provider error {error.code}")
    return NOTHING


def signal_for_receipt(channel: str, status: str | AttemptStatus | None, error_code: str | None) -> Signal:
    """A receipt (or a stored receipt event): its status and provider error code, read by the
    error tables of the channel's providers."""
    code = str(error_code) if error_code is not None else None
    return _signal(channel, catalog.address_signal(channel, code, status))


SMS_OPT_OUT = Signal(withdraw=Channel.SMS.value, why="sms keyword STOP")
SMS_OPT_IN = Signal(grant=Channel.SMS.value, why="sms keyword START")


def apply_to_phone(session: Session, phone: str, signal: Signal) -> int:
    """An inbound SMS keyword: the consent change for every recipient with that number.
    Returns how many profiles changed."""
    if not signal or not phone:
        return 0
    changed = 0
    for recipient in session.scalars(select(Recipient).where(Recipient.phone == phone).with_for_update()):
        consents = recipient.consents or {}
        if signal.withdraw is not None and consents.get(signal.withdraw) is not False:
            recipient.consents = {**consents, signal.withdraw: False}
            changed += 1
        elif signal.grant is not None and consents.get(signal.grant) is not True:
            recipient.consents = {**consents, signal.grant: True}
            changed += 1
    return changed


def _same_address(a: str | None, b: str | None) -> bool:
    """Email addresses compare without case; a phone number is stored in E.164, where case and
    surrounding space cannot differ."""
    return bool(a and b) and a.strip().lower() == b.strip().lower()  # type: ignore[union-attr]


def apply(session: Session, attempt: Any, signal: Signal, now: datetime) -> bool:
    """Applies a signal to the attempt's recipient (or push device). True if anything changed."""
    if not signal:
        return False
    channel = attempt.channel
    changed = False
    spec = channels.spec(channel)
    if signal.address_dead and spec.reach == Reach.DEVICES:
        for device in session.scalars(select(Device).where(Device.user_id == attempt.user_id,
                                                           Device.token == attempt.address)):
            if device.active:
                device.active, device.deactivated_at = False, now
                changed = True
        if signal.withdraw is None:
            return changed
    recipient = session.get(Recipient, attempt.user_id)
    if recipient is None:
        return changed
    if signal.address_dead:
        # Only the address we sent to is dead; a user who has since changed address keeps the new one.
        valid_field = spec.address_valid_field
        if (valid_field and _same_address(spec.address_of(recipient), attempt.address)
                and getattr(recipient, valid_field) is not False):
            setattr(recipient, valid_field, False)
            changed = True
    if signal.withdraw is not None and (recipient.consents or {}).get(signal.withdraw) is not False:
        # A new dict, so the JSON column sees the change.
        recipient.consents = {**(recipient.consents or {}), signal.withdraw: False}
        changed = True
    return changed


def apply_send_error(session: Session, attempt: Any, error: ProviderError, now: datetime) -> bool:
    """Send-time: the provider refused the send."""
    return apply(session, attempt, signal_for_error(attempt.channel, error), now)


def apply_receipt(session: Session, attempt: Any, status: str | AttemptStatus | None,
                  error_code: str | None, now: datetime) -> bool:
    """A receipt webhook (or a parked receipt event applied later)."""
    return apply(session, attempt, signal_for_receipt(attempt.channel, status, error_code), now)
