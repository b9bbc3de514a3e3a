"""Golden scenarios: a YAML table of cases (facts in, expected plan out) run against a policy.

Compliance staff add a case by copying one; no code. Format::

    defaults:                       # merged under every case (recipient and message shallowly)
      now: "2026-03-04T03:00:00Z"
      recipient: {user_id: u-1, email: a@example.com, last_active_at: -1d}
      message: {category: reminder, body: "Hi"}
    cases:
      - name: OTP goes by SMS
        message: {category: otp, body: "Your code is 123456"}
        recipient: {connected: true}
        expect:
          steps: ["sms first", "email fallback"]       # describe_step() form, in order
          excluded: {in_app: otp-by-sms, push: otp-by-sms}   # channel -> rule id, all of them
          suppressed: false
          requires: []
          confirmation: {remind_after: 3d, escalate_after: 7d}   # legal notices: reminder, escalation
          reasons_contain: "expired"                   # a substring of the suppressed reasons

Datetimes in recipient/message may be relative to the case's ``now``: "-45d", "+2h", "-30s".
A long title/body can be written as ``{repeat: "가", times: 202}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .document import Policy
from .effects import parse_duration
from .engine import decide, describe_step
from .facts import MessageFacts, RecipientFacts, parse_datetime

GOLDEN_DEFAULT_PATH = Path(__file__).parent / "golden" / "default.yaml"
_RELATIVE = re.compile(r"^([+-])(\d+[smhdw])$")
_EXPECT_KEYS = ("steps", "excluded", "suppressed", "requires", "reasons_contain", "confirmation")


@dataclass(frozen=True)
class GoldenResult:
    name: str
    passed: bool
    diff: str  # empty when passed


def _resolve_times(data: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    out = dict(data)
    for key in ("title", "body"):
        value = out.get(key)
        if isinstance(value, Mapping) and set(value) == {"repeat", "times"}:
            out[key] = str(value["repeat"]) * int(value["times"])  # long bodies stay readable
    for key in ("last_active_at", "last_heartbeat_at", "expires_at"):
        value = out.get(key)
        if isinstance(value, str) and (m := _RELATIVE.match(value)):
            delta = parse_duration(m.group(2))
            out[key] = now + delta if m.group(1) == "+" else now - delta  # type: ignore[operator]
    return out


def _merge(base: Mapping[str, Any] | None, over: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(base or {})
    for key, value in (over or {}).items():
        if key == "consents" and isinstance(value, Mapping):
            merged[key] = {**(merged.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def _check(case: Mapping[str, Any], defaults: Mapping[str, Any], policy: Policy) -> list[str]:
    now = parse_datetime(case.get("now", defaults.get("now")), "now")
    if now is None:
        return ["no 'now' in the case or in defaults"]
    message = _resolve_times(_merge(defaults.get("message"), case.get("message")), now)
    recipient = _resolve_times(_merge(defaults.get("recipient"), case.get("recipient")), now)
    plan = decide(policy, MessageFacts.from_dict(message), RecipientFacts.from_dict(recipient), now)
    expect = case.get("expect") or {}
    problems = [f"unknown expectation '{k}'" for k in expect if k not in _EXPECT_KEYS]
    if not expect:
        problems.append("no expectations")
    got_steps = [describe_step(s) for s in plan.steps]
    if "steps" in expect and list(expect["steps"] or []) != got_steps:
        problems.append(f"steps: expected {expect['steps']}, got {got_steps}")
    got_excluded = {e.channel: e.rule for e in plan.excluded}
    if "excluded" in expect and dict(expect["excluded"] or {}) != got_excluded:
        problems.append(f"excluded: expected {dict(expect['excluded'] or {})}, got {got_excluded}")
    if "suppressed" in expect and bool(expect["suppressed"]) != plan.suppressed:
        problems.append(f"suppressed: expected {expect['suppressed']}, got {plan.suppressed}")
    if "requires" in expect and list(expect["requires"] or []) != list(plan.requires):
        problems.append(f"requires: expected {expect['requires']}, got {list(plan.requires)}")
    if "confirmation" in expect:
        # {remind_after: 3d, escalate_after: 7d}, or null for none
        want = expect["confirmation"]
        want = None if not want else {f"{k}_seconds": int(parse_duration(v).total_seconds())  # type: ignore[union-attr]
                                      for k, v in want.items()}
        if want != plan.confirmation:
            problems.append(f"confirmation: expected {expect['confirmation']}, got {plan.confirmation}")
    if "reasons_contain" in expect:
        joined = " | ".join(plan.suppressed_reasons)
        if str(expect["reasons_contain"]) not in joined:
            problems.append(
                f"suppressed reasons: expected to contain {expect['reasons_contain']!r}, got {joined!r}")
    if problems:
        details = "; ".join(e.reason for e in plan.excluded)
        problems.append(f"(trace: {', '.join(m.rule_id for m in plan.trace)}; exclusion reasons: {details})")
    return problems


def run_golden(policy: Policy, path: str | Path | None = None) -> list[GoldenResult]:
    """Run every case of a golden file; one result per case, in file order."""
    doc = yaml.safe_load(Path(path or GOLDEN_DEFAULT_PATH).read_text(encoding="utf-8")) or {}
    defaults = doc.get("defaults") or {}
    results = []
    for i, case in enumerate(doc.get("cases") or []):
        name = str(case.get("name") or f"case #{i + 1}")
        try:
            problems = _check(case, defaults, policy)
        except (ValueError, KeyError, TypeError) as exc:
            problems = [f"error: {type(exc).__name__}: {exc}"]
        results.append(GoldenResult(name, not problems, "\n".join(problems)))
    return results
