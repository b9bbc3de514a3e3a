"""Flask application factory."""

from __future__ import annotations

from flask import Flask

from .app_state import EXTENSION_KEY, AppState
from .config import Settings
from .errors import register_error_handlers
from .logs import configure_logging
from .services.policy_store import PolicyStore
from .storage.db import Database
from .storage.migrate import upgrade


def create_app(settings: Settings | None = None, *, start_background: bool = False,
               migrate: bool = True) -> Flask:
    """Builds the app. `start_background` runs the embedded worker and sweeper threads in
    this process (the embedded default's single command); tests drive them explicitly."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False

    db = Database(settings.database_url)
    if migrate:
        upgrade(db)
    store = PolicyStore(db, settings.policy_file)
    store.ensure_seeded()
    st = AppState(settings=settings, db=db, policies=store)
    app.extensions[EXTENSION_KEY] = st

    from .dispatch.registry import ProviderRegistry
    from .dispatch.runtime import Dispatcher
    from .inapp.presence import make_presence

    st.presence = make_presence(settings.redis_url)
    st.providers = ProviderRegistry.from_settings(settings)
    st.dispatcher = Dispatcher(st)
    if start_background:
        st.dispatcher.start_background()

    register_error_handlers(app)
    from .api import email_webhooks, health, messages, openapi, policies, recipients, webhooks

    for module in (health, messages, recipients, openapi, webhooks, email_webhooks, policies):
        app.register_blueprint(module.bp)
    from .inapp import api as inapp_api

    app.register_blueprint(inapp_api.bp)
    from . import review

    app.register_blueprint(review.bp)
    return app
