"""What a message keeps of the facts it was decided on: enough to re-explain and replay the
decision exactly (sending/decision_replay.py, compliance/simulation.py), nothing more.

The policy engine reads addresses only for presence (`bool(email)`, `bool(phone)`), devices
for platform and `active`, and the text only for its size and SMS encoding/segments
(policies/derive.py). So the stored facts carry:
- email, phone and device tokens masked (providers/masking.py): truthy exactly when the
  original was, never usable to reach the person;
- no title or body: `content_bytes` holds their UTF-8 size, and `sms_text` a shape of the SMS
  text that has the same encoding, length and unit sizes (every character replaced by a
  stand-in of the same class), hence the same segment count.

`redact_stored(facts)` applies the same to facts stored before this existed (erasure)."""

from __future__ import annotations

from typing import Any

from policies import MessageFacts, RecipientFacts
from policies.segments import count_segments, is_gsm7
from providers.masking import mask_email, mask_phone, mask_token
from providers.sms_text import sms_text

# Stand-ins by unit class: a basic GSM-7 character (1 septet), a GSM-7 extension character
# (2 septets), a BMP character outside GSM-7 (1 UTF-16 unit), one outside the BMP (2 units).
GSM_BASIC, GSM_EXTENDED, UCS2_BMP, UCS2_ASTRAL = "x", "{", "\uac00", "\U0001f600"


def text_shape(text: str) -> str:
    """Same encoding, same units per character, so the same segments; no content."""
    if is_gsm7(text):
        return "".join(GSM_EXTENDED if count_segments(ch).units == 2 else GSM_BASIC for ch in text)
    return "".join(UCS2_ASTRAL if ord(ch) > 0xFFFF else UCS2_BMP for ch in text)


def stored_message(m: MessageFacts | dict[str, Any]) -> dict[str, Any]:
    d = m.to_dict() if isinstance(m, MessageFacts) else dict(m)
    title, body = d.get("title") or "", d.get("body") or ""
    text = d.get("sms_text")
    d["content_bytes"] = int(d.get("content_bytes") or 0) or len(title.encode()) + len(body.encode())
    d["sms_text"] = text_shape(sms_text(title, body) if text is None else text)
    d["title"], d["body"] = "", ""
    return d


def stored_recipient(r: RecipientFacts | dict[str, Any]) -> dict[str, Any]:
    d = r.to_dict() if isinstance(r, RecipientFacts) else dict(r)
    d["email"] = _masked(d.get("email"), mask_email)
    d["phone"] = _masked(d.get("phone"), mask_phone)
    d["devices"] = [{**dev, "token": _masked(dev.get("token"), mask_token) or "…"} for dev in d.get("devices") or []]
    return d


def _masked(value: str | None, mask) -> str | None:
    # The masks are idempotent (a masked value masks to itself), so stored facts can be redacted again.
    return mask(value) or None if value else None


def stored_facts(message: MessageFacts, recipient: RecipientFacts, now_iso: str) -> dict[str, Any]:
    return {"message": stored_message(message), "recipient": stored_recipient(recipient), "now": now_iso}


def redact_stored(facts: dict[str, Any] | None) -> dict[str, Any]:
    """Facts stored in any form, reduced to what `stored_facts` keeps."""
    facts = dict(facts or {})
    if isinstance(facts.get("message"), dict):
        facts["message"] = stored_message(facts["message"])
    if isinstance(facts.get("recipient"), dict):
        facts["recipient"] = stored_recipient(facts["recipient"])
    return facts
