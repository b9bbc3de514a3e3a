"""What to do with an *uncertain send*: a send that started (the request may have reached the
provider) but whose worker died before the outcome was recorded, on a channel whose provider
cannot tell us afterwards whether it took the message (APNs, FCM, SMTP; Twilio can, and is
reconciled instead of asking this).

The policy document may say, per category attribute or per category:

    uncertain_sends:
      default: fallback              # resend | fallback | fail
      critical: resend               # categories with the `critical` attribute
      marketing: fail
      categories: {otp: resend}      # a category by name beats its attributes
      cites: ["…"]

When the document says nothing, `DEFAULT` applies, with this reasoning:
- critical (OTP, security alert, payment failure, outage) → **resend**: seed 000, "when not to
  use in-app" #2: a critical, time-sensitive message must reach the user; a duplicate of the
  same text (the same code) costs less than a missing one. The duplicate is recorded and counted.
- marketing → **fail**: seed 000 #6 (overuse causes banner blindness and annoyance): a second
  promotion is the harm, a missing one is not.
- everything else → **fallback**: DESIGN §8 "uncertain sends are a state … never silently
  repeated": do not repeat on the same channel; the plan's next step (if any) carries it.

Pure: no Flask, no database, no clock reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .quoting import quote


class UncertainAction(StrEnum):
    RESEND = "resend"        # send again on the same channel (a possible duplicate, counted)
    FALLBACK = "fallback"    # end this attempt as uncertain; the plan's next step takes over
    FAIL = "fail"            # end this attempt as uncertain; nothing more on its behalf


ATTRIBUTE_KEYS = ("critical", "marketing", "bulk", "legal", "in_app_native")
DEFAULT: dict[str, Any] = {
    "default": UncertainAction.FALLBACK,
    "critical": UncertainAction.RESEND,
    "marketing": UncertainAction.FAIL,
    "categories": {},
    "cites": ["seed 000, when not to use in-app #2 (critical, time-sensitive)",
              "seed 000, when not to use in-app #6 (overuse and annoyance)",
              "DESIGN §8 (uncertain sends are a state, never silently repeated)"],
}
_ALLOWED = ("default", *ATTRIBUTE_KEYS, "categories", "cites", "reasoning")


def check(raw: Any, category_names: set[str], errors: list[str]) -> dict[str, Any]:
    """The `uncertain_sends` section, validated (errors name the field), defaults filled in."""
    if raw is None:
        return dict(DEFAULT)
    where = "field 'uncertain_sends'"
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping (default, critical, marketing, …, categories, cites)")
        return dict(DEFAULT)
    out: dict[str, Any] = {"default": DEFAULT["default"], "categories": {}, "cites": []}
    choices = ", ".join(a.value for a in UncertainAction)
    for key, value in raw.items():
        if key not in _ALLOWED:
            errors.append(f"{where}: field {quote(key)}: unknown (allowed: {', '.join(_ALLOWED)})")
        elif key == "categories":
            if not isinstance(value, Mapping):
                errors.append(f"{where}: field 'categories': expected a mapping of category -> action")
                continue
            for name, action in value.items():
                if name not in category_names:
                    errors.append(f"{where}: field 'categories.{name}': unknown category")
                elif action not in set(UncertainAction):
                    errors.append(f"{where}: field 'categories.{name}': expected one of {choices}")
                else:
                    out["categories"][str(name)] = UncertainAction(action)
        elif key == "cites":
            if not isinstance(value, list) or not value or not all(isinstance(c, str) and c for c in value):
                errors.append(f"{where}: field 'cites': expected a non-empty list of citations")
            else:
                out["cites"] = list(value)
        elif key == "reasoning":
            if not isinstance(value, str):
                errors.append(f"{where}: field 'reasoning': expected text")
        elif value not in set(UncertainAction):
            errors.append(f"{where}: field '{key}': expected one of {choices}")
        else:
            out[key] = UncertainAction(value)
    if not out["cites"]:
        errors.append(f"{where}: field 'cites': required (every rule cites the guideline it implements)")
    return out


def action_for(section: Mapping[str, Any], category: str, attributes: Mapping[str, bool]) -> UncertainAction:
    """The category by name, else the first of its attributes the section names (in
    ATTRIBUTE_KEYS order: critical first), else the default."""
    if category in section.get("categories", {}):
        return UncertainAction(section["categories"][category])
    for attr in ATTRIBUTE_KEYS:
        if attributes.get(attr) and attr in section:
            return UncertainAction(section[attr])
    return UncertainAction(section.get("default", UncertainAction.FALLBACK))
