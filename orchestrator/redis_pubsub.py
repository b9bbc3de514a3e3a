"""Redis pub/sub as this service uses it, in one place: a client to PUBLISH from any thread,
and per channel one daemon subscriber thread per process that reconnects after losing
Redis. Users: the in-app bus (inapp/bus.py) and the API-key cache (access/key_sync.py).

A message is a hint that something changed in the database, never the change itself: each
user says what covers one that was lost (a stream's keep-alive re-read, the key cache's
TTL). `on_subscribed` runs each time the subscription is confirmed by Redis (first start and
every reconnect), after which no message published is missed: a user that must not miss
one (the key cache) catches up there."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("orchestrator.redis_pubsub")

RECONNECT_SECONDS = 1.0
POLL_SECONDS = 1.0  # how long one read waits; bounds how late `close` is noticed


def publisher(url: str):
    """A client for PUBLISH (thread-safe: redis-py pools its connections). Short timeouts:
    an unreachable Redis costs a caller about two seconds, then it falls back."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


class Subscriber:
    """One channel, one thread: `on_message(data: bytes)` for every message, in order."""

    def __init__(self, url: str, channel: str, on_message: Callable[[bytes], None], *,
                 on_subscribed: Callable[[], None] | None = None, name: str = "redis-subscriber") -> None:
        self.url = url
        self.channel = channel
        self.on_message = on_message
        self.on_subscribed = on_subscribed
        self.name = name
        # Its Redis connection's CLIENT SETNAME: one subscriber is found in CLIENT LIST by it.
        self.client_name = f"{name}-{id(self):x}"
        self.subscribed = threading.Event()  # set while the subscription is confirmed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        import redis

        failing = False  # one warning per outage, not one a second
        while not self._stop.is_set():
            try:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=None,
                                              client_name=self.client_name)
                self._pubsub = client.pubsub()
                self._pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    item = self._pubsub.get_message(timeout=POLL_SECONDS)
                    if item is None:
                        continue
                    if item["type"] == "subscribe":
                        self.subscribed.set()
                        if failing:
                            failing = False
                            log.info("Redis subscriber of %s reconnected", self.channel)
                        if self.on_subscribed is not None:
                            self.on_subscribed()
                    elif item["type"] == "message":
                        self.on_message(item["data"])
            except Exception as exc:  # noqa: BLE001 - reconnect; each user's fallback covers the gap
                self.subscribed.clear()
                self._close_pubsub()
                if self._stop.is_set():
                    return
                if not failing:
                    failing = True
                    log.warning("Redis subscriber of %s lost its connection (%s); reconnecting every %g s",
                                self.channel, exc, RECONNECT_SECONDS, extra={"error_class": type(exc).__name__})
                self._stop.wait(RECONNECT_SECONDS)

    def close(self) -> None:
        self._stop.set()
        self.subscribed.clear()
        self._close_pubsub()

    def _close_pubsub(self) -> None:
        try:
            if self._pubsub is not None:
                self._pubsub.close()
        except Exception:  # noqa: BLE001 - closing a connection that is already gone
            pass
