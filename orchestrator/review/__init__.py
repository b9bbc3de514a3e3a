"""Compliance review pages: server-rendered HTML (Flask + Jinja2, no front-end build) over the
compliance services. A reviewer signs in with an API key; every page re-checks the key's
scopes (``compliance:read`` to view, ``policy:approve`` to approve and activate).

Registered by the app factory: ``app.register_blueprint(review.bp)``."""

from __future__ import annotations

from . import views  # noqa: F401  (attaches the routes to bp)
from . import impact  # noqa: F401,E402  (the impact of a draft against the active version)
from .session import bp

__all__ = ["bp"]
