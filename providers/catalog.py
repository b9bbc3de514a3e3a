"""Every provider the service can use, by name: each module declares its `SPEC`
(providers/spec.py) and is listed here once. The orchestrator's registry builds the
configured ones from this list (orchestrator/dispatch/registry.py), the push platforms a
device may name are the platforms listed here, and address signals are read through each
spec's error table. Adding a provider: write its module, add its SPEC below, document its
variables in README.md."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from . import apns, fcm, sendgrid_events, ses_events, smtp_email, twilio_sms
from .spec import AddressReading, ProviderSpec

# Order matters where several serve one channel: the first configured is tried first.
PROVIDERS: tuple[ProviderSpec, ...] = (
    twilio_sms.SPEC,
    smtp_email.SPEC,
    sendgrid_events.SPEC,
    ses_events.SPEC,
    fcm.SPEC,
    apns.SPEC,
)
BY_NAME: dict[str, ProviderSpec] = {spec.name: spec for spec in PROVIDERS}
# The push platforms a device can be registered on ("fcm", "apns").
PUSH_PLATFORMS: tuple[str, ...] = tuple(spec.platform for spec in PROVIDERS if spec.platform)

if len(BY_NAME) != len(PROVIDERS) or len(set(PUSH_PLATFORMS)) != len(PUSH_PLATFORMS):
    raise RuntimeError("providers: names and push platforms must be unique")


def for_channel(channel: str) -> Iterator[ProviderSpec]:
    return (spec for spec in PROVIDERS if spec.channel == channel)


def settings_of(name: str, env: Mapping[str, str]) -> Any | None:
    """The named provider's typed settings from env-style variables (None: not configured;
    ValueError: configured wrongly)."""
    return BY_NAME[name].settings(env)


def address_signal(channel: str, code: str | None, status: Any) -> AddressReading | None:
    """What a provider code on `channel` says about the recipient, by the error tables of the
    channel's providers (the first that knows the code)."""
    if not code:
        return None
    for spec in for_channel(channel):
        reading = spec.signals(code, status)
        if reading is not None:
            return reading
    return None
