"""Routing policy: YAML rule documents and the pure engine that turns facts into a route plan.

No Flask, no database, no clock reads: ``now`` is always an argument. Never imports
``orchestrator`` or ``providers``.
"""

from .constants import StepMode, WatchedStatus
from .document import (
    CATEGORIES_DEFAULT_PATH,
    Policy,
    PolicyError,
    lint_document,
    load_default_policy,
    load_policy,
)
from .engine import decide, explain
from .facts import Device, MessageFacts, RecipientFacts
from .golden import GoldenResult, run_golden
from .plan import Exclusion, RoutePlan, RuleMatch, Step
from .segments import SegmentInfo, count_segments

__all__ = [
    "CATEGORIES_DEFAULT_PATH",
    "Device",
    "Exclusion",
    "GoldenResult",
    "MessageFacts",
    "Policy",
    "PolicyError",
    "RecipientFacts",
    "RoutePlan",
    "RuleMatch",
    "SegmentInfo",
    "Step",
    "StepMode",
    "WatchedStatus",
    "count_segments",
    "decide",
    "explain",
    "lint_document",
    "load_default_policy",
    "load_policy",
    "run_golden",
]
