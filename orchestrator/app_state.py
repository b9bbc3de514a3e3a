"""The runtime objects (database, settings, policy store, dispatcher, providers, presence,
in-app bus), built by `bootstrap.bootstrap` for every entry point and, in the web process,
kept in `app.extensions` so blueprints reach them without globals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from .compliance.policy_store import PolicyStore
    from .config import Settings
    from .storage.db import Database

EXTENSION_KEY = "orchestrator"


@dataclass
class AppState:
    settings: Settings
    db: Database
    policies: PolicyStore
    dispatcher: Any = None      # orchestrator.dispatch.Dispatcher, set by the app factory
    providers: Any = None       # orchestrator.dispatch.registry.ProviderRegistry
    presence: Any = None        # orchestrator.inapp.presence.Presence
    bus: Any = None             # orchestrator.inapp.bus.LocalBus | RedisBus
    streams: Any = None         # orchestrator.inapp.stream.StreamHub, when served by the ASGI app
    key_cache: Any = None       # orchestrator.access.auth.KeyCache
    key_sync: Any = None        # orchestrator.access.key_sync.KeyCacheSync: key changes to every process
    ack_links: Any = None       # orchestrator.sending.ack_links.AckLinks, built on first use
    unsubscribe: Any = None     # orchestrator.recipients.unsubscribe.UnsubscribeLinks
    send_writer: Any = None     # orchestrator.storage.group_commit.GroupCommit of sending.messages.write_sends
    # The one clock the service reads; tests replace it instead of sleeping.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def state() -> AppState:
    return current_app.extensions[EXTENSION_KEY]
