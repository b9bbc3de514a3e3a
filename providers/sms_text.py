"""The text an SMS carries. One function, used by the SMS provider when it sends and by the
orchestrator when it counts segments for the policy (`MessageFacts.sms_text`), so the policy's
segment limit is checked against exactly what goes on the wire.

SMS has no subject line: the title, when there is one, is the first line of the text."""

from __future__ import annotations


def sms_text(title: str | None, body: str | None) -> str:
    """Title and body on separate lines, whichever exist (the same rule as the pure policy
    package's `policies.segments.sms_text`, which cannot import this module)."""
    title, body = title or "", body or ""
    if title and body:
        return f"{title}\n{body}"
    return title or body
