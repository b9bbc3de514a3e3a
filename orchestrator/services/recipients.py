"""Recipient profiles and presence. A PUT replaces the fields it names and leaves the rest;
devices given replace the device list (tokens already known keep their history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from providers.masking import mask_email, mask_phone, mask_token

from ..schemas import RecipientUpsert
from ..storage.models import Device, Recipient
from . import preferences
from .facts import load_recipient


def upsert(session: Session, user_id: str, data: RecipientUpsert, policy=None) -> tuple[Recipient, bool]:
    """`policy` (the active one) is needed only to check `preferences`."""
    if data.preferences is not None and policy is not None:
        preferences.check(policy, data.preferences)  # before any write: a 422 leaves no half-update
    row = load_recipient(session, user_id)
    created = row is None
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
