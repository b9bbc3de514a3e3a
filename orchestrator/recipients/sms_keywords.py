"""Inbound SMS keywords (STOP / START / HELP and synonyms) -> consent, through the one
place for address and consent signals."""

from __future__ import annotations

from providers.twilio_inbound import InboundKind, InboundMessage

from ..lifecycle import address_signals
from ..storage.db import Database

_SIGNALS = {InboundKind.OPT_OUT: address_signals.SMS_OPT_OUT, InboundKind.OPT_IN: address_signals.SMS_OPT_IN}


def apply(db: Database, inbound: InboundMessage) -> int:
    """Profiles whose SMS consent changed (0 for HELP and for ordinary replies)."""
    signal = _SIGNALS.get(inbound.kind)
    if signal is None:
        return 0
    with db.session() as session:
        return address_signals.apply_to_phone(session, inbound.sender, signal)
