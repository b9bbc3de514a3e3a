"""Masks for addresses that may appear in logs and API answers: enough to correlate, not to
harvest. One place for providers and the orchestrator alike (providers import nothing from
the orchestrator, so it lives here)."""

from __future__ import annotations


def mask_phone(number: str | None) -> str:
    """+447700900789 -> +44******789. Fixed-width mask, so the length is not revealed either."""
    if not number:
        return ""
    if len(number) <= 6:
        return "*" * len(number)
    return f"{number[:3]}******{number[-3:]}"


def mask_email(address: str | None) -> str:
    """`jane@example.com` -> `j***@example.com`."""
    if not address:
        return ""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return address[:1] + "***"
    return f"{local[:1]}***@{domain}"


def mask_token(token: str | None) -> str:
    """Push device tokens: the first six characters identify one in a list."""
    return f"{token[:6]}…" if token else ""
