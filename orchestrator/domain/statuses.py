"""Status vocabularies. Attempt statuses and engagement come from `providers.base` (providers
map their receipts onto them); message-level statuses and derivation live here."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from providers.base import AttemptStatus, Engagement, is_terminal

__all__ = [
    "AttemptStatus",
    "CallbackOutcome",
    "ChangeKind",
    "DeliveryOutcome",
    "DispatchErrorCode",
    "Engagement",
    "ImpactRunStatus",
    "MessageStatus",
    "PolicyStatus",
    "Scope",
    "derive_message_status",
    "is_terminal",
]


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"  # send_at in the future: decided when it comes (sending/scheduling.py)
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    SENT = "sent"  # handed to a provider that will not confirm delivery (push, sandbox)
    DELIVERED = "delivered"
    READ = "read"
    ACKNOWLEDGED = "acknowledged"
    # A notice that requires read confirmation (legal) was not acknowledged by the policy's
    # escalation time: final, unless an acknowledgement still arrives (sending/confirmations).
    UNACKNOWLEDGED = "unacknowledged"
    FAILED = "failed"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"




class ConfirmationStage(StrEnum):
    """Where a notice that requires read confirmation stands (sending/confirmations)."""

    AWAITING = "awaiting"          # sent; the reminder is due at `due_at`
    REMINDED = "reminded"          # reminder sent; escalation due at `due_at`
    ESCALATED = "escalated"        # not acknowledged in time; the message is `unacknowledged`
    ACKNOWLEDGED = "acknowledged"
    UNDELIVERABLE = "undeliverable"  # the policy could not deliver it at all (the message is suppressed)


class ReadChannel(StrEnum):
    """How a notice that requires confirmation was first read (never by "read all")."""

    INBOX_OPEN = "inbox_open"      # POST /v1/inbox/{id}/read (or clicked) for that one item, with the user's token
    EMAIL_OPEN = "email_open"      # the email provider reported an open (shown from the email attempt)


class AckChannel(StrEnum):
    """Through which channel a notice was acknowledged."""

    EMAIL_LINK = "email_link"      # the signed link in the email
    INBOX = "inbox"                # POST /v1/inbox/{id}/acknowledged with the user's in-app token


class DeliveryOutcome(StrEnum):
    """What one run of the deliver task did with its attempt (dispatch/deliver.py, uncertain.py)."""

    NOT_CLAIMED = "not_claimed"  # not due, not queued, or another worker holds it: nothing done
    SENT = "sent"
    RETRY_LATER = "retry_later"  # transient failure: queued again with a later due_at
    FAILED = "failed"
    EXPIRED = "expired"          # the message expired before the send
    CANCELLED = "cancelled"      # an escalation whose watched status arrived in time


class DispatchErrorCode(StrEnum):
    """Error codes the dispatcher itself gives an attempt (providers give theirs; API `error.code`)."""

    CIRCUIT_OPEN = "circuit_open"            # every provider's breaker is open: retried later
    NO_PROVIDER = "no_provider"              # none configured for the channel
    UNCERTAIN_SEND = "uncertain_send"        # the send's outcome is unknown and the policy said fail/fall back
    SEARCH_INCOMPLETE = "search_incomplete"  # the provider's search could not cover the window (logs only)


class CallbackOutcome(StrEnum):
    """What one delivery run of a status webhook did (dispatch/callbacks.py)."""

    NOT_CLAIMED = "not_claimed"  # not pending, not due, or leased by another run
    DELIVERED = "delivered"      # the receiver answered 2xx
    RETRY_LATER = "retry_later"  # 5xx, 429 or a network error: due again after a backoff
    FAILED = "failed"            # another 4xx, or out of tries: given up


class ReceiptOutcome(StrEnum):
    APPLIED = "applied"        # moved the attempt forward or set an engagement time
    IGNORED = "ignored"        # late or out of order: recorded, status not moved back
    DUPLICATE = "duplicate"    # same provider event id seen before
    PARKED = "parked"          # arrived before its send was committed; applied later
    REJECTED = "rejected"      # signed but malformed: kept (parked, no provider id) to inspect, never applied


class UncertainResolution(StrEnum):
    """How a send whose outcome was unknown (its worker stopped mid-send) was settled."""

    RECONCILED = "reconciled"  # the provider had the message: recorded as sent, not sent again
    NOT_SENT = "not_sent"      # the provider had no such message: sent now (not a duplicate)
    RESENT = "resent"          # the provider cannot tell; the policy said resend (maybe a duplicate)
    FELL_BACK = "fell_back"    # the provider cannot tell; ended, the plan's next step takes over
    FAILED = "failed"          # the provider cannot tell; ended, nothing more on its behalf


class TokenState(StrEnum):
    """Where an in-app user token stands (inapp/tokens.py)."""

    VALID = "valid"
    EXPIRED = "expired"    # past expires_at: the app asks its backend for a new one
    REVOKED = "revoked"    # revoked by the product backend: the app signs the user out
    UNKNOWN = "unknown"    # never issued (or erased with its user)


class PolicyStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    ACTIVE = "active"
    RETIRED = "retired"


class ChangeKind(StrEnum):
    """How a message's plan differs between two policy versions (compliance/plan_changes.py)."""

    NEWLY_SUPPRESSED = "newly_suppressed"
    NO_LONGER_SUPPRESSED = "no_longer_suppressed"
    CHANNEL_ADDED = "channel_added"
    CHANNEL_REMOVED = "channel_removed"
    FIRST_CHANNEL_CHANGED = "first_channel_changed"
    ORDER_CHANGED = "order_changed"
    MODE_CHANGED = "mode_changed"
    DELAY_CHANGED = "delay_changed"
    NEWLY_DEFERRED = "newly_deferred"
    NO_LONGER_DEFERRED = "no_longer_deferred"
    PROVIDER_CHANGED = "provider_changed"


class ImpactRunStatus(StrEnum):
    """A policy impact computation for the review pages (compliance/impact_runs.py)."""

    QUEUED = "queued"      # waiting for the computation before it
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Scope(StrEnum):
    SEND = "send"
    READ = "read"
    RECIPIENTS = "recipients"
    COMPLIANCE_READ = "compliance:read"
    POLICY_WRITE = "policy:write"
    POLICY_APPROVE = "policy:approve"
    INAPP_TOKENS = "inapp:tokens"  # mint and revoke per-user in-app tokens
    TEMPLATES_WRITE = "templates:write"  # create templates and new versions (audited)
    ADMIN = "admin"


class ReviewerSource(StrEnum):
    """How a reviewer (compliance/reviewers.py) came to sign in to the review pages."""

    INVITATION = "invitation"  # a one-time link an admin issued
    SSO = "sso"  # OpenID Connect at the organisation's identity provider


class InvitationState(StrEnum):
    USABLE = "usable"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class AttemptView:
    """The attempt fields status derivation needs (a Protocol in spirit; any object works)."""

    status: str
    read_at: object
    acknowledged_at: object


def derive_message_status(attempts: Iterable[AttemptView]) -> MessageStatus:
    """Message status from its attempts. Engagement beats delivery; while any attempt is
    queued or sending (an escalation waiting for its time included) the message is in
    progress; `sent` means handed over with no confirmation (push ends there unless the
    client reports more); failure only once nothing can deliver it any more."""
    attempts = list(attempts)
    if not attempts:
        return MessageStatus.SUPPRESSED
    if any(a.acknowledged_at for a in attempts):
        return MessageStatus.ACKNOWLEDGED
    if any(a.read_at for a in attempts):
        return MessageStatus.READ
    statuses = {AttemptStatus(a.status) for a in attempts}
    if AttemptStatus.DELIVERED in statuses:
        return MessageStatus.DELIVERED
    if statuses & {AttemptStatus.QUEUED, AttemptStatus.SENDING}:
        return MessageStatus.IN_PROGRESS
    if AttemptStatus.SENT in statuses:
        return MessageStatus.SENT
    if statuses == {AttemptStatus.CANCELLED}:
        return MessageStatus.CANCELLED
    if AttemptStatus.EXPIRED in statuses and not statuses & {
        AttemptStatus.FAILED, AttemptStatus.BOUNCED, AttemptStatus.UNDELIVERED
    }:
        return MessageStatus.EXPIRED
    return MessageStatus.FAILED
