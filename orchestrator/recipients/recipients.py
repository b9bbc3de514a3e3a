"""Recipient profiles and presence. A PUT replaces the fields it names and leaves the rest;
devices given replace the device list (tokens already known keep their history).

Where messages go (email, phone, devices) and whether they may go at all (consents,
preferences) of an existing recipient change only with the `recipients` scope: a `send`-only
key may create a recipient with them, repeat what is stored, and override an address for one
message (`recipient.email`/`phone` of a send, kept on that message only), but not redirect
the messages every other key sends to the user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from providers.masking import mask_email, mask_phone, mask_token

from ..domain.errors import ErrorCode, Forbidden
from ..schemas import RecipientUpsert
from ..sending.facts import load_recipient
from ..storage.models import Device, Recipient
from . import preferences


def upsert(session: Session, user_id: str, data: RecipientUpsert, policy=None, *,
           contact_changes_allowed: bool = True) -> tuple[Recipient, bool]:
    """`policy` (the active one) is needed only to check `preferences`. Without
    `contact_changes_allowed` (a key lacking the `recipients` scope), changing an existing
    recipient's addresses, devices, consents or preferences is Forbidden, naming the field."""
    if data.preferences is not None and policy is not None:
        preferences.check(policy, data.preferences)  # before any write: an Invalid leaves no half-update
    row = load_recipient(session, user_id)
    created = row is None
    if row is not None and not contact_changes_allowed:
        refuse_contact_changes(row, data)  # before any write, too
    if row is None:
        row = Recipient(user_id=user_id, consents={}, devices=[])
        session.add(row)
    given = data.model_fields_set
    if "email" in given:
        if data.email != row.email:
            row.email_valid = True  # a new address gets a fresh start
        row.email = data.email
    if "phone" in given:
        if data.phone != row.phone:
            row.phone_valid = True
        row.phone = data.phone
    if "timezone" in given:
        row.timezone = data.timezone or "UTC"
    if "locale" in given:
        row.locale = data.locale
    if "last_active_at" in given:
        row.last_active_at = data.last_active_at
    if "quiet_hours" in given:
        row.quiet_hours = list(data.quiet_hours) if data.quiet_hours else None
    if data.consents is not None:
        merged = dict(row.consents or {})
        merged.update(data.consents.model_dump(exclude_unset=True))
        row.consents = merged
    if data.preferences is not None:
        row.preferences = preferences.merged(row.preferences, data.preferences)
    if data.devices is not None:
        # Keyed by token: a token is one device, whatever platform it was filed under. Listing
        # a token again re-registers it (the app just handed it to the backend), so it is active.
        known = {d.token: d for d in row.devices}
        keep: dict[str, Device] = {}
        for dev in data.devices:
            device = keep.get(dev.token) or known.get(dev.token) or Device(token=dev.token)
            device.platform, device.active, device.deactivated_at = dev.platform.value, True, None
            keep[dev.token] = device
        row.devices = list(keep.values())
    session.flush()
    return row, created


def refuse_contact_changes(row: Recipient, data: RecipientUpsert) -> None:
    """Forbidden, naming the first protected field `data` would change on `row`; values equal to
    what is stored are no change (a backend may repeat the profile it registered)."""
    field = _changed_contact_field(row, data)
    if field is not None:
        raise Forbidden(ErrorCode.FORBIDDEN,
                        f"{field}: changing an existing recipient's addresses, devices, consents or preferences "
                        f"needs the 'recipients' scope; a 'send' key may override an address for one message "
                        f"with recipient.email or recipient.phone of POST /v1/messages", field=field)


def _changed_contact_field(row: Recipient, data: RecipientUpsert) -> str | None:
    given = data.model_fields_set
    for name in ("email", "phone"):
        if name in given and getattr(data, name) != getattr(row, name):
            return name
    if data.devices is not None:
        stored = {(d.token, d.platform) for d in row.devices}
        wanted = {(d.token, d.platform.value) for d in data.devices}
        if wanted != stored or not all(d.active for d in row.devices):  # listing re-activates
            return "devices"
    if data.consents is not None:
        current = row.consents or {}
        for channel, value in data.consents.model_dump(exclude_unset=True).items():
            if current.get(channel) != value:
                return f"consents.{channel}"
    if data.preferences is not None:
        current = row.preferences or {}
        for category, switches in data.preferences.items():
            for channel, on in switches.model_dump(exclude_unset=True).items():
                if ((current.get(category) or {}).get(channel) is False) != (on is False):
                    return f"preferences.{category}.{channel}"
    return None


# As many devices as a profile PUT may list (schemas.RecipientUpsert.devices).
MAX_DEVICES = 20


def register_device(session: Session, user_id: str, platform: str, token: str, now: datetime) -> bool:
    """A device (or browser push subscription) the user's own client registers: active from
    now, filed under `platform`; a known token is re-activated. A user past MAX_DEVICES loses
    the oldest device, inactive ones first (a browser re-subscribes with a new token each time
    its subscription is renewed). True when the token is new for the user."""
    row = load_recipient(session, user_id)
    if row is None:
        row = Recipient(user_id=user_id, consents={}, devices=[])
        session.add(row)
    device = next((d for d in row.devices if d.token == token), None)
    created = device is None
    if device is None:
        others = sorted(row.devices, key=lambda d: (d.active, d.created_at or now, d.id or 0))
        for old in others[:max(0, len(others) - MAX_DEVICES + 1)]:
            row.devices.remove(old)
        device = Device(token=token, created_at=now)
        row.devices.append(device)
    device.platform, device.active, device.deactivated_at = platform, True, None
    session.flush()
    return created


def remove_device(session: Session, user_id: str, token: str) -> bool:
    """The user's client unsubscribed: the device is forgotten. False when it was not known."""
    row = load_recipient(session, user_id)
    device = next((d for d in row.devices if d.token == token), None) if row is not None else None
    if device is None:
        return False
    row.devices.remove(device)
    session.flush()
    return True


def heartbeat(session: Session, user_id: str, now: datetime) -> Recipient:
    row = load_recipient(session, user_id)
    if row is None:
        row = Recipient(user_id=user_id, consents={}, devices=[])
        session.add(row)
    row.last_heartbeat_at = now
    row.last_active_at = now
    session.flush()
    return row


def to_dict(row: Recipient) -> dict[str, Any]:
    """Profile as the API shows it: addresses masked, tokens shortened."""
    return {
        "user_id": row.user_id,
        "email": mask_email(row.email) or None,
        "email_valid": row.email_valid,
        "phone": mask_phone(row.phone) or None,
        "phone_valid": row.phone_valid,
        "timezone": row.timezone,
        "locale": row.locale,
        "consents": row.consents or {},
        "preferences": row.preferences or {},
        "quiet_hours": row.quiet_hours,
        "devices": [
            {"platform": d.platform, "token": mask_token(d.token), "active": d.active} for d in row.devices
        ],
        "last_active_at": row.last_active_at.isoformat() if row.last_active_at else None,
        "last_heartbeat_at": row.last_heartbeat_at.isoformat() if row.last_heartbeat_at else None,
    }
