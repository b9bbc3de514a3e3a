"""Review sign-in by OpenID Connect, when the organisation has single sign-on
(REVIEW_OIDC_* in config.py). Authlib's Flask client does the protocol: the provider's
discovery document, the authorization code flow with PKCE (S256), `state` and `nonce`, and the
ID token's signature checked against the provider's JWKS (with its issuer, audience, expiry and
nonce). What is ours: the groups claim mapped to scopes (REVIEW_OIDC_GROUP_SCOPES), the
reviewer row behind the session (compliance/reviewers.py), and a clear page for every refusal.

/review/sso starts the flow; /review/sso/callback finishes it. Between the two the flow's
nonce and PKCE code verifier wait in the database (`FlowStore`, Authlib's cache interface), not
in the cookie, which carries only which flow is this browser's; the callback uses them up, so a
replayed callback fails. Any process can finish a flow another started.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import current_app, redirect, render_template, request, session, url_for
from sqlalchemy import delete, select

from ..app_state import EXTENSION_KEY, state
from ..compliance import reviewers
from ..config import OidcSettings
from ..storage.models import ReviewSsoState
from . import forms
from .session import bp, safe_next, start_session

log = logging.getLogger(__name__)

CLIENT_NAME = "review_sso"
EXTENSION = "orchestrator.review_oidc"
SESSION_NEXT = "review_sso_next"


class FlowStore:
    """Authlib's cache interface (get, set, delete) over the review_sso_states table."""

    def __init__(self, app_state) -> None:
        self.state = app_state

    def get(self, key: str) -> str | None:
        with self.state.db.session() as s:
            return s.scalar(select(ReviewSsoState.value).where(ReviewSsoState.key == key[:200],
                                                               ReviewSsoState.expires_at > self.state.clock()))

    def set(self, key: str, value: str, expires: int | None = None) -> None:
        now = self.state.clock()
        with self.state.db.session() as s:
            s.execute(delete(ReviewSsoState).where(ReviewSsoState.expires_at <= now))  # flows never finished
            s.merge(ReviewSsoState(key=key[:200], value=value, expires_at=now + timedelta(seconds=expires or 3600)))

    def delete(self, key: str) -> None:
        with self.state.db.session() as s:
            s.execute(delete(ReviewSsoState).where(ReviewSsoState.key == key[:200]))


@bp.record_once
def _setup(setup_state) -> None:
    app = setup_state.app
    app_state = app.extensions[EXTENSION_KEY]
    settings: OidcSettings | None = app_state.settings.review_oidc
    if settings is None:
        return
    oauth = OAuth(app, cache=FlowStore(app_state))
    app.extensions[EXTENSION] = oauth.register(
        CLIENT_NAME,
        client_id=settings.client_id,
        client_secret=settings.client_secret or None,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.request_scopes, "code_challenge_method": "S256", "timeout": 10},
    )


def _settings() -> OidcSettings | None:
    return state().settings.review_oidc


@bp.app_context_processor
def _sso_globals() -> dict[str, Any]:
    settings = _settings() if EXTENSION_KEY in current_app.extensions else None
    return {"sso_provider": settings.provider_name if settings else None}


def _refused(title: str, message: str, status: int):
    return render_template("review/error.html", title=title, message=message), status


def _failed(why: str):
    return _refused("Single sign-on failed",
                    f"Signing in with {_settings().provider_name} did not complete ({why}). "
                    "Start again from the sign-in page.", 401)


@bp.get("/sso")
def sso_start():
    settings = _settings()
    if settings is None:
        return _refused("Single sign-on is not set up",
                        "This service has no single sign-on configured: sign in with an invitation link or an "
                        "API key.", 404)
    next_path = request.args.get("next", "")
    session[SESSION_NEXT] = next_path if forms.usable(next_path) else ""
    base = state().settings.public_base_url
    callback = f"{base}{url_for('review.sso_callback')}" if base else url_for("review.sso_callback", _external=True)
    try:
        return current_app.extensions[EXTENSION].authorize_redirect(callback)
    except Exception as exc:  # noqa: BLE001 — the provider unreachable or its discovery document unusable
        log.warning("single sign-on: the provider's discovery document could not be read (%s)", type(exc).__name__)
        return _refused("Single sign-on unavailable",
                        f"{settings.provider_name} could not be reached. Try again later, or sign in with an "
                        "invitation link or an API key.", 503)


def _scopes_for(settings: OidcSettings, groups: object) -> list[str]:
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        return []
    return sorted({scope for group in groups if isinstance(group, str)
                   for scope in settings.group_scopes.get(group, ())})


@bp.get("/sso/callback")
def sso_callback():
    settings = _settings()
    if settings is None:
        return sso_start()
    try:
        token = current_app.extensions[EXTENSION].authorize_access_token()
    except OAuthError as exc:
        # The provider's refusal (error=…), a state that does not match this browser's, or a
        # refused code exchange.
        log.warning("single sign-on refused: %s", exc.error)
        return _failed(exc.description or exc.error or "refused")
    except Exception as exc:  # noqa: BLE001 — a bad ID token signature or claim, an unreachable provider
        log.warning("single sign-on: ID token or provider rejected (%s)", type(exc).__name__)
        return _failed("the identity provider's answer could not be verified")
    claims = token.get("userinfo")
    if not claims or not claims.get("sub"):
        return _failed("the identity provider sent no ID token")
    scopes = _scopes_for(settings, claims.get(settings.groups_claim))
    if not scopes:
        return _refused("No access to the review pages",
                        f"Your {settings.provider_name} account is in no group that grants access to the review "
                        "pages. Ask an administrator to add you to one.", 403)
    name = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or "")
    st = state()
    try:
        with st.db.session() as s:
            reviewer, changed = reviewers.sso_sign_in(s, issuer=settings.issuer, subject=str(claims["sub"]),
                                                      name=name, scopes=scopes, now=st.clock())
            key_id = reviewer.key_id
    except reviewers.ReviewerRevoked:
        return _refused("Access revoked",
                        "An administrator revoked your access to the review pages. Ask them to restore it.", 403)
    if changed:
        st.key_sync.changed(key_id)
    next_path = session.pop(SESSION_NEXT, "")
    start_session(key_id)
    return redirect(safe_next(next_path))
