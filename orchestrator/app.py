"""Flask application factory: the HTTP API around a runtime built by `bootstrap`."""

from __future__ import annotations

from flask import Flask, Request
from werkzeug.exceptions import RequestEntityTooLarge

from . import rate_limits, request_log
from .app_state import EXTENSION_KEY, AppState
from .bootstrap import bootstrap
from .config import Settings
from .errors import register_error_handlers, reject_nul_in_url


class CappedRequest(Request):
    """A body without Content-Length (chunked) is read up to the route's size cap and stops
    there quietly (Werkzeug's LimitedStream); one that fills the cap is answered 413, as a
    body whose Content-Length is over the cap is."""

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):  # noqa: FBT001
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        cap = self.max_content_length
        if self.content_length is None and cap is not None and len(data) >= cap:
            raise RequestEntityTooLarge()
        return data.decode(errors="replace") if as_text else data


def create_app(settings: Settings | None = None, *, start_background: bool = False,
               migrate: bool = True, state: AppState | None = None) -> Flask:
    """Builds the app. `start_background` runs the embedded worker and sweeper threads in
    this process (the embedded default's single command); tests drive them explicitly."""
    st = state or bootstrap(settings, migrate=migrate, start_background=start_background)
    app = Flask(__name__)
    app.request_class = CappedRequest
    app.config["MAX_CONTENT_LENGTH"] = st.settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions[EXTENSION_KEY] = st
    st.key_sync.start()  # this process authenticates: hear other processes' key changes

    register_error_handlers(app)
    request_log.install(app)  # first: a request refused by a later hook still gets its id
    rate_limits.install(app, st.settings.rate_limit_per_minute, st.settings.redis_url)
    app.before_request(reject_nul_in_url)
    from .api import (
        acknowledge,
        email_webhooks,
        health,
        keys,
        messages,
        openapi,
        policies,
        recipients,
        reviewers,
        templates,
        unsubscribe,
        webhooks,
    )

    for module in (health, messages, recipients, openapi, webhooks, email_webhooks, policies, keys, acknowledge,
                   unsubscribe, templates, reviewers):
        app.register_blueprint(module.bp)
    from .api import client_assets
    from .api import inbox as inapp_api

    app.register_blueprint(inapp_api.bp)
    from .api import preferences as preferences_api

    app.register_blueprint(preferences_api.bp)
    app.register_blueprint(client_assets.bp)
    from . import review

    app.register_blueprint(review.bp)
    return app
