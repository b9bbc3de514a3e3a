"""The channels the service knows, read from their modules. Adding a channel: write its
module (a `SPEC`), list it in DECLARED and name it in `Channel`."""

from __future__ import annotations

from enum import StrEnum

from . import email, in_app, push, sms, whatsapp
from .spec import ChannelSpec

# Declaration order: the order of per-channel facts and consent keys (stored data relies on
# none of it, but recorded plans list facts in it).
DECLARED: tuple[ChannelSpec, ...] = (in_app.SPEC, push.SPEC, sms.SPEC, email.SPEC, whatsapp.SPEC)


class Channel(StrEnum):
    """The stored channel values ("in_app", "push", "sms", "email", "whatsapp")."""

    IN_APP = in_app.SPEC.name
    PUSH = push.SPEC.name
    SMS = sms.SPEC.name
    EMAIL = email.SPEC.name
    WHATSAPP = whatsapp.SPEC.name


SPECS: dict[str, ChannelSpec] = {spec.name: spec for spec in DECLARED}
# Canonical routing order: exclusion lists, the default route when no rule chose one.
ROUTE_ORDER: tuple[str, ...] = tuple(s.name for s in sorted(DECLARED, key=lambda s: s.route_rank))
NAMES: tuple[str, ...] = tuple(SPECS)

if set(Channel) != set(SPECS) or len({s.route_rank for s in DECLARED}) != len(DECLARED):
    raise RuntimeError("channels: Channel must name every declared spec, and route ranks must differ")


def spec(channel: str) -> ChannelSpec:
    """The spec of a channel value (KeyError for an unknown one)."""
    return SPECS[str(channel)]
