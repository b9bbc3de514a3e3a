"""Every process's API-key cache (auth.KeyCache) in step with the database. A revoked,
re-scoped or re-limited key is dropped at once in the process that changed it and, when
REDIS_URL is set, in every other within a second: the change is PUBLISHed on one channel
after commit, and each web process's subscriber forgets the key. The CLI, a process of its
own, publishes the same way.

Without Redis, or while it is unreachable (a publish that fails, a subscriber reconnecting),
the cache's TTL (KEY_CACHE_SECONDS) bounds the delay, as before. A subscriber drops its whole
cache each time its subscription is confirmed, so a change published while it was not
listening (startup, a lost connection) is not missed either."""

from __future__ import annotations

import logging

from ..redis_pubsub import Subscriber, publisher
from .auth import KeyCache

log = logging.getLogger("orchestrator.access.key_sync")

CHANNEL = "orchestrator:api-keys"
MAX_KEY_ID_CHARS = 64  # ids are 26-character ULIDs; anything longer on the channel is not ours


class KeyCacheSync:
    """`cache` is this process's (None in the CLI: it only tells the others)."""

    def __init__(self, cache: KeyCache | None, redis_url: str | None) -> None:
        self.cache = cache
        self.redis_url = redis_url
        self._publisher = publisher(redis_url) if redis_url else None
        self.subscriber = (Subscriber(redis_url, CHANNEL, self._on_message, on_subscribed=self._caught_up,
                                       name="key-cache-sync")
                            if redis_url and cache is not None else None)

    @property
    def kind(self) -> str:
        return "redis" if self.redis_url else "ttl"

    def start(self) -> None:
        """Listens for other processes' changes (web processes: they authenticate)."""
        if self.subscriber is not None:
            self.subscriber.start()

    def changed(self, key_id: str) -> bool:
        """Call after the change committed. True when every listening process was told;
        False when only the TTL will carry it (no REDIS_URL, or Redis unreachable)."""
        if self.cache is not None:
            self.cache.forget(key_id)
        if self._publisher is None:
            return False
        try:
            self._publisher.publish(CHANNEL, key_id)
        except Exception as exc:  # noqa: BLE001 - the change is committed; the TTL carries it to the others
            log.warning("change of API key %s not broadcast (%s); other processes follow within "
                        "KEY_CACHE_SECONDS", key_id, exc, extra={"error_class": type(exc).__name__})
            return False
        return True

    def _on_message(self, data: bytes) -> None:
        try:
            key_id = data.decode("ascii")
        except UnicodeDecodeError:
            return
        if 0 < len(key_id) <= MAX_KEY_ID_CHARS:
            self.cache.forget(key_id)

    def _caught_up(self) -> None:
        self.cache.clear()

    def close(self) -> None:
        if self.subscriber is not None:
            self.subscriber.close()
