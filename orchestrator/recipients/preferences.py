"""Per-category channel preferences: what a user turned off (e.g. `social` by email), and
the only place they are checked, merged and shown.

Stored on the recipient as ``{category: {channel: false}}``: only what is off is kept, so
"on" is the absence of an entry and a new channel or category starts on. The policy says
which categories are locked (security, legal, codes): turning one of those off is refused,
and the engine ignores whatever may be stored for it. Consents stay the channel-wide
switch (SMS STOP, email opt-out); a preference is per category.

Written by: PUT /v1/recipients/{id} (`preferences`), the in-app preference center
(api/preferences.py) and one-click unsubscribe (recipients/unsubscribe.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies import Policy
from policies.constants import CHANNELS

from ..domain.errors import ErrorCode, Invalid
from ..schemas import ChannelSwitches
from ..storage.models import Recipient


def check(policy: Policy, changes: Mapping[str, ChannelSwitches], field: str = "preferences") -> None:
    """Unknown categories and turning off a locked category are Invalid, naming the field."""
    for category, switches in changes.items():
        where = f"{field}.{category}"
        if not policy.has_category(category):
            raise Invalid(ErrorCode.UNKNOWN_CATEGORY,
                          f"{where}: '{category}' is not a category of policy {policy.version}", field=where)
        if category in policy.locked_categories:
            off = [ch for ch, on in switches.model_dump(exclude_unset=True).items() if on is False]
            if off:
                raise Invalid(ErrorCode.PREFERENCE_LOCKED,
                              f"{where}.{off[0]}: {category} messages cannot be turned off "
                              f"(locked by policy {policy.version})", field=f"{where}.{off[0]}")


def merged(current: Mapping[str, Any] | None, changes: Mapping[str, ChannelSwitches]) -> dict[str, dict[str, bool]]:
    """`current` with `changes` applied: false turns a channel off, true or null turns it on."""
    result = {c: dict(chs) for c, chs in (current or {}).items() if isinstance(chs, Mapping)}
    for category, switches in changes.items():
        channels = result.setdefault(category, {})
        for channel, on in switches.model_dump(exclude_unset=True).items():
            if on is False:
                channels[channel] = False
            else:
                channels.pop(channel, None)
        if not channels:
            del result[category]
    return result


def update(row: Recipient, policy: Policy, changes: Mapping[str, ChannelSwitches],
           field: str = "preferences") -> None:
    check(policy, changes, field)
    row.preferences = merged(row.preferences, changes)  # a new dict, so the JSON column sees it


def turn_off(row: Recipient, category: str, channel: str) -> bool:
    """One channel of one category off (one-click unsubscribe). True when it changed."""
    current = row.preferences or {}
    if (current.get(category) or {}).get(channel) is False:
        return False
    row.preferences = {**current, category: {**(current.get(category) or {}), channel: False}}
    return True


def view(policy: Policy, stored: Mapping[str, Any] | None, locale: str = "en") -> list[dict[str, Any]]:
    """Every category of the policy with its channels on or off, locked ones marked (and
    always on), labelled in `locale`: what the preference center shows."""
    stored = stored or {}
    labels = policy.labels
    out = []
    for category in policy.categories:
        locked = category in policy.locked_categories
        off = {} if locked else (stored.get(category) or {})
        out.append({"category": category, "label": labels.category(category, locale),
                    "description": labels.description(category, locale), "locked": locked,
                    "unsubscribable": category in policy.unsubscribable_categories,
                    "channels": {ch: off.get(ch) is not False for ch in CHANNELS}})
    return out


def channel_labels(policy: Policy, locale: str = "en") -> list[dict[str, str]]:
    """The channels as the preference center heads its columns, in the policy's order."""
    return [{"id": ch, "label": policy.labels.channel(ch, locale)} for ch in policy.labels.channel_order]
