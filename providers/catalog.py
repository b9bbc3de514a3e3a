"""Every provider the service can use, by name: each module of `providers/` that declares a
`SPEC` (a providers.spec.ProviderSpec) is in the catalog, in the order of the specs' ranks.
The orchestrator's registry builds the configured ones from it (orchestrator/dispatch/
registry.py), the push platforms a device may name are its platforms, and address signals
are read through each spec's error table. Adding a provider: write its module with its SPEC,
and pass and document its variables (docker/compose.yaml, README.md)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from typing import Any

from .spec import AddressReading, ProviderSpec


def _declared() -> tuple[ProviderSpec, ...]:
    package = __name__.rpartition(".")[0]
    modules = [importlib.import_module(f"{package}.{m.name}")
               for m in pkgutil.iter_modules(importlib.import_module(package).__path__) if m.name != "catalog"]
    specs = [m.SPEC for m in modules if isinstance(getattr(m, "SPEC", None), ProviderSpec)]
    return tuple(sorted(specs, key=lambda spec: spec.rank))


# Order matters where several serve one channel: the first configured is tried first.
PROVIDERS: tuple[ProviderSpec, ...] = _declared()
BY_NAME: dict[str, ProviderSpec] = {spec.name: spec for spec in PROVIDERS}
# The push platforms a device can be registered on ("fcm", "apns").
PUSH_PLATFORMS: tuple[str, ...] = tuple(spec.platform for spec in PROVIDERS if spec.platform)
BY_PLATFORM: dict[str, ProviderSpec] = {spec.platform: spec for spec in PROVIDERS if spec.platform}

if (len(BY_NAME) != len(PROVIDERS) or len(set(PUSH_PLATFORMS)) != len(PUSH_PLATFORMS)
        or len({spec.rank for spec in PROVIDERS}) != len(PROVIDERS)):
    raise RuntimeError("providers: names, ranks and push platforms must be unique")


def for_channel(channel: str) -> Iterator[ProviderSpec]:
    return (spec for spec in PROVIDERS if spec.channel == channel)


def device_token_problem(platform: str, token: str) -> str | None:
    """What is wrong with a device token a client registers on `platform` (by its provider's
    `check_token`), or None."""
    return BY_PLATFORM[platform].check_token(token)


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
