"""The composition root: every entry point (web, worker, scheduler, CLI) builds its runtime
here and nowhere else. No Flask: the worker and the scheduler never build a web app."""

from __future__ import annotations

import logging
from functools import partial

from .access.auth import KeyCache
from .access.key_sync import KeyCacheSync
from .app_state import AppState
from .audit.log import install_audit_key
from .compliance.policy_store import PolicyStore
from .config import Settings
from .logs import configure_logging
from .recipients.unsubscribe import UnsubscribeLinks
from .sending.messages import write_sends
from .storage.db import Database
from .storage.group_commit import GroupCommit
from .storage.migrate import upgrade


def bootstrap(settings: Settings | None = None, *, migrate: bool = True, start_background: bool = False,
              celery: bool = True) -> AppState:
    """Builds the database, policy store, providers, presence, in-app bus and dispatcher.
    `start_background` runs the embedded worker and the sweeper threads in this process."""
    from .dispatch.breaker import make_store as make_breaker_store
    from .dispatch.registry import ProviderRegistry
    from .dispatch.runtime import Dispatcher
    from .inapp.bus import make_bus
    from .inapp.presence import make_presence

    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    db = Database(settings.database_url)
    if migrate:
        upgrade(db)
    install_audit_key(settings, db)
    store = PolicyStore(db, settings.policy_file)
    store.ensure_seeded()
    state = AppState(settings=settings, db=db, policies=store, key_cache=KeyCache(settings.key_cache_seconds))
    state.key_sync = KeyCacheSync(state.key_cache, settings.redis_url)  # listens once a web app starts it
    state.presence = make_presence(settings.redis_url)
    state.bus = make_bus(settings.redis_url)
    if not settings.broker_url.startswith("memory://") and not settings.redis_url:
        # Several processes, no shared bus: an item delivered by another process would not
        # wake this process's streams until their next wake-up or reconnect.
        logging.getLogger("orchestrator").warning(
            "a shared broker without REDIS_URL: in-app streams are woken only by deliveries made in "
            "the same process; set REDIS_URL so every process hears every delivery")
    if not settings.broker_url.startswith("memory://") and not settings.audit_key:
        logging.getLogger("orchestrator").warning(
            "a shared broker without AUDIT_KEY: each host uses its own audit key file (%s); processes on "
            "other hosts would chain the audit log with another key: set the same AUDIT_KEY everywhere",
            settings.audit_key_file)
    state.providers = ProviderRegistry.from_settings(settings, breaker_store=make_breaker_store(settings.redis_url))
    state.unsubscribe = UnsubscribeLinks.from_settings(settings)
    state.providers.use_clock(lambda: state.clock().timestamp())  # the service's one clock (tests move it)
    # Concurrent single sends share a transaction (storage/group_commit.py).
    state.send_writer = GroupCommit(partial(write_sends, db))
    state.dispatcher = Dispatcher(state, celery=celery)
    if start_background:
        state.dispatcher.start_background()
    return state
