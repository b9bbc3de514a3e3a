"""What one provider module declares about itself: the `ProviderSpec` the catalog
(providers/catalog.py) lists and the orchestrator's registry builds from.

A spec names the provider, the channel (and push platform) it serves, how its typed settings
are read from environment-style variables (None: not configured, ValueError: configured
wrongly, naming the variables), how a client is built from them, and how its error codes
read as address signals: the recipient's address is dead, or the person opted out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .base import AttemptStatus, Channel, Provider


class AddressSignal(StrEnum):
    """What a provider's code says about the recipient rather than about this one send."""

    DEAD = "address_dead"                  # the address can never receive: stop choosing it
    OPT_OUT = "opt_out"                    # the person withdrew consent for this channel
    MARKETING_OPT_OUT = "marketing_opt_out"  # the person withdrew consent to marketing messages


@dataclass(frozen=True)
class AddressReading:
    signal: AddressSignal
    why: str  # for the log and the audit trail: "sms opt-out (21610)", never an address


# (provider code, the attempt status it came with) -> what it says, if anything. A refused send
# is read with AttemptStatus.FAILED.
SignalReader = Callable[[str, "AttemptStatus | str | None"], "AddressReading | None"]


def _no_signals(code: str, status: AttemptStatus | str | None) -> AddressReading | None:
    return None


# A push platform's device token as a client registered it -> what is wrong with it (one
# sentence for a 422, never echoing the token), or None when it can be sent to.
TokenCheck = Callable[[str], "str | None"]


def _any_token(token: str) -> str | None:
    return None


@dataclass(frozen=True)
class ProviderSpec:
    name: str                                         # breakers, attempts, /readyz, receipts' source
    channel: Channel
    # Its place in the catalog: the registry tries a channel's providers in this order, and
    # /readyz and the startup line list them in it.
    rank: int
    # Typed settings from env-style variables: None when the provider is not configured.
    settings: Callable[[Mapping[str, str]], Any | None]
    # A client from its settings; None for a provider that only reports receipts (a webhook).
    build: Callable[[Any], Provider] | None = None
    platform: str | None = None                       # push: the device platform it serves
    backup_prefix: str | None = None                  # "TWILIO": a second account from TWILIO_BACKUP_*
    signals: SignalReader = _no_signals               # its error table, read as address signals
    check_token: TokenCheck = _any_token              # push: a device token's shape, checked on registration


__all__ = ["AddressReading", "AddressSignal", "ProviderSpec", "SignalReader", "TokenCheck"]
