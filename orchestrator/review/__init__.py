"""Compliance review pages: server-rendered HTML (Flask + Jinja2, no front-end build) over the
compliance services. A reviewer signs in with an API key; every page re-checks the key's
scopes (``compliance:read`` to view, ``policy:approve`` to approve and activate).

Registered by the app factory: ``app.register_blueprint(review.bp)``."""

from __future__ import annotations

from . import (  # noqa: F401  (each module attaches its routes to bp)
    drafts,
    guidelines,
    impact,
    invitations,
    legal,
    oidc,
    search,
    views,
)
from .session import bp

__all__ = ["bp"]
