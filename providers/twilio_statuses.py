"""Twilio's message statuses and what each means for our attempt.

One table serves both the REST response of a send (usually `queued`, or `accepted` when a
Messaging Service picks the sender) and the `MessageStatus` of status callbacks.
"""

from __future__ import annotations

from enum import StrEnum

from .base import AttemptStatus, Engagement


class TwilioMessageStatus(StrEnum):
    ACCEPTED = "accepted"        # Messaging Service took it, sender not chosen yet
    SCHEDULED = "scheduled"      # send_at in the future
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"                # handed to the carrier
    DELIVERED = "delivered"      # carrier delivery receipt
    UNDELIVERED = "undelivered"  # carrier reported failure (ErrorCode says why)
    FAILED = "failed"            # Twilio could not send it at all
    CANCELED = "canceled"        # Twilio's spelling
    READ = "read"                # WhatsApp/RCS read receipt
    PARTIALLY_DELIVERED = "partially_delivered"  # some segments/recipients only
    RECEIVING = "receiving"      # inbound only
    RECEIVED = "received"        # inbound only


# status -> (attempt status to record, engagement to timestamp).
# `read` also carries DELIVERED: a read message was delivered, and if the `delivered`
# callback was lost or arrives late this keeps the attempt from staying at `sent`.
# Status only moves forward (providers.base.moves_forward), so a duplicate is harmless.
# Inbound states belong to messages sent *to* us, never to an attempt: (None, None), so
# the receipt is recorded but changes nothing.
STATUS_MAP: dict[TwilioMessageStatus, tuple[AttemptStatus | None, Engagement | None]] = {
    TwilioMessageStatus.ACCEPTED: (AttemptStatus.QUEUED, None),
    TwilioMessageStatus.SCHEDULED: (AttemptStatus.QUEUED, None),
    TwilioMessageStatus.QUEUED: (AttemptStatus.QUEUED, None),
    TwilioMessageStatus.SENDING: (AttemptStatus.SENDING, None),
    TwilioMessageStatus.SENT: (AttemptStatus.SENT, None),
    TwilioMessageStatus.DELIVERED: (AttemptStatus.DELIVERED, None),
    TwilioMessageStatus.UNDELIVERED: (AttemptStatus.UNDELIVERED, None),
    TwilioMessageStatus.FAILED: (AttemptStatus.FAILED, None),
    TwilioMessageStatus.CANCELED: (AttemptStatus.CANCELLED, None),
    TwilioMessageStatus.READ: (AttemptStatus.DELIVERED, Engagement.READ),
    # Part of a concatenated message arrived: the recipient has something, but not all of
    # it. Reported as delivered; the raw payload keeps Twilio's word.
    TwilioMessageStatus.PARTIALLY_DELIVERED: (AttemptStatus.DELIVERED, None),
    TwilioMessageStatus.RECEIVING: (None, None),
    TwilioMessageStatus.RECEIVED: (None, None),
}

# Statuses after which Twilio's ErrorCode explains a failure.
FAILURE_STATUSES = frozenset({TwilioMessageStatus.UNDELIVERED, TwilioMessageStatus.FAILED})


def map_status(raw: str | None) -> tuple[AttemptStatus | None, Engagement | None]:
    """Our (status, engagement) for a Twilio status string; unknown -> (None, None), so a
    status Twilio adds later is recorded without moving the attempt."""
    try:
        return STATUS_MAP[TwilioMessageStatus((raw or "").strip().lower())]
    except ValueError:
        return None, None
