"""Fixed vocabularies shared by the policy document, the engine and the plan.

Kept in one place so the schema validator, the engine and the golden runner cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum

IN_APP = "in_app"
PUSH = "push"
SMS = "sms"
EMAIL = "email"

# Canonical order: used whenever the engine must enumerate channels deterministically
# (exclusion lists, fallback ordering when no rule chose a route).
CHANNELS: tuple[str, ...] = (IN_APP, PUSH, EMAIL, SMS)
OUT_OF_APP_CHANNELS: frozenset[str] = frozenset({PUSH, EMAIL, SMS})


class StepMode(StrEnum):
    """How a plan step starts relative to the step before it. The one definition: the policy
    documents spell these values in YAML, the engine assigns them, attempt rows store them."""

    FIRST = "first"          # the plan's first step: sent straight away (assigned by the engine)
    PARALLEL = "parallel"    # with the step before
    FALLBACK = "fallback"    # only if every attempt of the step before failed
    ESCALATE = "escalate"    # `after` the step before started, unless it reached `unless_status`
    # Not a policy step: an attempt the orchestrator adds to send a legal notice again
    # (sending/confirmations.py). Attempt rows carry it in the same `mode` column.
    REMINDER = "reminder"


# Modes a plan step can have.
MODES: tuple[StepMode, ...] = (StepMode.FIRST, StepMode.PARALLEL, StepMode.FALLBACK, StepMode.ESCALATE)
# A route entry may ask for these; FIRST is assigned by the engine to whichever step survives first.
ROUTE_MODES: tuple[StepMode, ...] = (StepMode.PARALLEL, StepMode.FALLBACK, StepMode.ESCALATE)


class WatchedStatus(StrEnum):
    """What an escalation step watches on the step before (`unless:`): reached in time, the
    escalation is cancelled."""

    SEEN = "seen"
    READ = "read"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"


ESCALATION_STATUSES: tuple[WatchedStatus, ...] = tuple(WatchedStatus)
CONFIRMATIONS: tuple[str, ...] = ("delivery_confirmation", "read_confirmation")

URGENCIES: tuple[str, ...] = ("low", "normal", "high", "critical")
PRESENCE_VALUES: tuple[str, ...] = ("online", "offline")
LIFECYCLE_VALUES: tuple[str, ...] = ("active", "dormant", "churned", "unknown")
SMS_ENCODINGS: tuple[str, ...] = ("GSM-7", "UCS-2")
PLATFORMS: tuple[str, ...] = ("fcm", "apns")

CONSENT_KEYS: tuple[str, ...] = (IN_APP, PUSH, SMS, EMAIL, "marketing")

# The taxonomy every policy must define (the HTTP API accepts these category names).
REQUIRED_CATEGORIES: tuple[str, ...] = (
    "security_alert", "payment_failure", "otp", "legal_notice", "winback", "transactional",
    "onboarding", "feature_announcement", "promotion", "social", "reminder", "support",
    "trial_expiry", "survey", "invitation", "system_outage",
)
REQUIRED_CATEGORY_ATTRIBUTES: tuple[str, ...] = ("critical", "marketing", "bulk")

# Rule ids used by the engine's own safety floor. They are not in any document; they show up
# only when a policy forgot a guard the engine will not do without.
ENGINE_AVAILABILITY = "engine:availability"
ENGINE_PRESENCE = "engine:presence"
ENGINE_EXPIRED = "engine:expired"
ENGINE_CRITICAL = "engine:critical-out-of-app"
ENGINE_ROUTE = "engine:route"
ENGINE_NO_CHANNEL = "engine:no-channel"
# A channel the recipient turned off for the message's category (a preference, not a rule).
ENGINE_PREFERENCE = "engine:preference"

# What a cross-channel frequency cap does to a message over the cap (effect `cap_messages`).
OVER_CAP_DEFER = "defer"        # not before the start of the next window (local day / ISO week)
OVER_CAP_SUPPRESS = "suppress"  # not sent at all
OVER_CAP_MODES: tuple[str, ...] = (OVER_CAP_DEFER, OVER_CAP_SUPPRESS)
# What over the in-app cap (effect `cap_in_app`, `over_cap`) means for a user in the app.
IN_APP_OVER_CAP_EXCLUDE = "exclude"  # no in-app at all
IN_APP_OVER_CAP_QUIET = "quiet"      # a quiet inbox entry, no live display
IN_APP_OVER_CAP_MODES: tuple[str, ...] = (IN_APP_OVER_CAP_EXCLUDE, IN_APP_OVER_CAP_QUIET)
