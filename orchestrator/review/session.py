"""Sign-in, the session cookie, CSRF and scope checks for the review pages.

The browser never holds the API key after sign-in: the key is checked once with
``orchestrator.access.auth.authenticate``; Flask's signed session cookie then carries only the id
of a server-side session row (`ReviewSession`). Every page loads that row and its key again,
so logout (which ends the row), a session past REVIEW_SESSION_MAX_AGE_SECONDS, a revoked key
or a removed scope takes effect at the next click, even for a copied cookie.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, g, jsonify, make_response, redirect, render_template, request, session, url_for

from ..access.auth import authenticate
from ..app_state import EXTENSION_KEY, state
from ..domain.statuses import Scope
from ..errors import HTML_ERROR_PAGES, DomainError, error_body, http_headers, http_status
from ..storage.models import ApiKey, ReviewSession
from . import forms

log = logging.getLogger(__name__)

bp = Blueprint("review", __name__, url_prefix="/review", template_folder="templates",
               static_folder="static", static_url_path="/static")

SESSION_ID = "review_session"
SESSION_CSRF = "review_csrf"
MAX_KEY_CHARS = 200


@bp.record_once
def _setup(setup_state) -> None:
    """The session cookie is signed with SECRET_KEY. Without one, a random key per process:
    sessions then end at restart and do not work across several processes."""
    app = setup_state.app
    settings = app.extensions[EXTENSION_KEY].settings
    secret = settings.secret_key
    if not secret:
        log.warning("SECRET_KEY is not set: review sessions use a random per-process key; "
                    "set SECRET_KEY for sessions that survive restarts and span processes")
        secret = secrets.token_urlsafe(32)
    app.secret_key = secret
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    # Served over HTTPS (as PUBLIC_BASE_URL says): the cookie must never travel in clear.
    if settings.public_base_url.startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    # An unknown address, a wrong method or a failure under /review: a page, not the API's JSON.
    app.extensions.setdefault(HTML_ERROR_PAGES, {})[bp.url_prefix + "/"] = _error_page


# -- CSRF -----------------------------------------------------------------------------------
# A per-session random token in a hidden field, compared on every POST. Written by hand: one
# hidden field does not justify another dependency (Flask-WTF), and the check is five lines.
def csrf_token() -> str:
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


@bp.before_request
def _check_csrf():
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get(SESSION_CSRF, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return render_template("review/error.html", title="Form expired",
                                   message="The form's security token is missing or does not match this "
                                           "session. Reload the page and try again."), 400
    return None


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    key = g.get("review_key")
    return {"csrf_token": csrf_token, "current_key": key, "can_read_messages": holds(key, Scope.COMPLIANCE_READ)}


# -- who is signed in -----------------------------------------------------------------------
def current_key() -> ApiKey | None:
    """The signed-in key, reloaded from the database; None when the session is absent,
    ended, too old, or its key revoked."""
    session_id = session.get(SESSION_ID)
    if not session_id:
        return None
    st = state()
    max_age = timedelta(seconds=st.settings.review_session_max_age_seconds)
    with st.db.session() as s:
        row = s.get(ReviewSession, session_id)
        live = row is not None and row.ended_at is None and row.created_at + max_age > st.clock()
        key = s.get(ApiKey, row.key_id) if live else None
    if key is None or key.revoked_at is not None:
        session.pop(SESSION_ID, None)
        return None
    return key


def holds(key: ApiKey | None, scope: Scope) -> bool:
    return key is not None and (Scope.ADMIN in key.scope_set or scope in key.scope_set)


def page(*scopes: Scope) -> Callable:
    """View decorator: signed in (else to the login page) and holding one of `scopes` or
    `admin` (else a 403 page) — the same rule as the JSON API's ``require_scope``."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            key = current_key()
            if key is None:
                return redirect(url_for("review.login", next=request.full_path.rstrip("?")))
            g.review_key = key
            if not any(holds(key, scope) for scope in scopes):
                need = "' or '".join(scope.value for scope in scopes)
                return render_template("review/error.html", title="Not allowed",
                                       message=f"The key '{key.name}' lacks the '{need}' scope this page "
                                               "needs."), 403
            return view(*args, **kwargs)

        return wrapper

    return decorator


def safe_next(target: str | None) -> str:
    """Only same-site paths under /review: never an open redirect."""
    if (target and target.startswith("/review") and not urlsplit(target).netloc and "\\" not in target
            and forms.usable(target)):
        return target
    return url_for("review.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        try:
            raw = forms.form_text("api_key", max_chars=MAX_KEY_CHARS)
            with state().db.session() as s:
                key = authenticate(s, f"Bearer {raw}")
        except DomainError as exc:
            error, status = exc.message, http_status(exc)
        else:
            start_session(key.id)
            return redirect(safe_next(request.form.get("next")))
    next_path = request.values.get("next", "")
    return render_template("review/login.html", error=error,
                           next=next_path if forms.usable(next_path) else ""), status


def start_session(key_id: str) -> None:
    """Signs the browser in as `key_id` (an API key, or a reviewer's key): a new session row,
    a fresh cookie and CSRF token; any session it had is ended first."""
    _end_session()
    session.clear()  # a fresh session (and CSRF token) for the new identity
    session_id = secrets.token_urlsafe(32)
    with state().db.session() as s:
        s.add(ReviewSession(id=session_id, key_id=key_id, created_at=state().clock()))
    session[SESSION_ID] = session_id
    csrf_token()


def _end_session() -> None:
    session_id = session.get(SESSION_ID)
    if not session_id:
        return
    with state().db.session() as s:
        row = s.get(ReviewSession, session_id)
        if row is not None and row.ended_at is None:
            row.ended_at = state().clock()


@bp.post("/logout")
def logout():
    _end_session()
    session.clear()
    return redirect(url_for("review.login"))


JSON_ENDPOINTS: set[str] = set()  # review endpoints a script polls: their refusals stay JSON


def answers_json(view: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a review route that answers JSON (a page's poll), so a refusal made before it
    runs is the API's JSON error too, not the HTML error page."""
    JSON_ENDPOINTS.add(f"{bp.name}.{view.__name__}")
    return view


@bp.errorhandler(DomainError)
def _refused(exc: DomainError):
    """A refusal no page handled itself (a NUL in the URL, refused app-wide before any route by
    errors.reject_nul_in_url): the review pages' error page naming the field, not the API's JSON,
    except on the routes that answer JSON."""
    if request.endpoint in JSON_ENDPOINTS:
        return jsonify(error_body(exc)), http_status(exc), http_headers(exc)
    page = render_template("review/error.html", title="Refused", message=exc.message)
    return page, http_status(exc), http_headers(exc)


_ROUTING_ERRORS = {
    404: ("Page not found", "No review page has this address. Check the link, or start from the policy list."),
    405: ("Not possible here", "This address does not take a {method} request: use the page's own links, buttons "
                               "and forms."),
}


def _error_page(status: int, title: str, message: str):
    """The review pages' error page for an error no view handled (errors.HTML_ERROR_PAGES); None
    (the API's JSON) on the routes a script reads."""
    if request.endpoint in JSON_ENDPOINTS:
        return None
    if status in _ROUTING_ERRORS:
        title, message = _ROUTING_ERRORS[status]
        message = message.format(method=request.method)
        try:  # the header's links for a signed-in reviewer
            g.review_key = current_key()
        except Exception:  # noqa: BLE001 — the error page must show even when the database does not answer
            log.warning("error page without the signed-in reviewer", exc_info=True)
    return make_response(render_template("review/error.html", title=title, message=message), status)


def not_found(message: str):
    return render_template("review/error.html", title="Not found", message=message), 404


__all__ = ["answers_json", "bp", "csrf_token", "current_key", "holds", "not_found", "page", "safe_next",
           "start_session"]

