"""Fan-out of in-app notifications to open streams. The bus only wakes streams; the items
themselves are read from the database, so a lost notification delays nothing for long
(the stream re-reads on its keep-alive tick) and a resumed stream misses nothing.

- `LocalBus` (embedded default, one process): a worker thread publishes after commit; the
  event loop that serves the streams is woken with `call_soon_threadsafe`.
- `RedisBus` (REDIS_URL set, several processes): PUBLISH on one channel; every process
  runs one subscriber thread (redis_pubsub.Subscriber) and wakes its own streams. An item delivered by a worker in
  one process reaches a stream held by another.

A notice is (user id, kind, subject): the subject is the token id of a REVOKE (None: all
the user's tokens) and the item ids of an ITEM (their state changed: seen, read, clicked,
acknowledged, archived); the streams re-read those items and send them as `item` events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

log = logging.getLogger("orchestrator.inapp.bus")

CHANNEL = "orchestrator:inapp"


class Notice(StrEnum):
    ITEMS = "items"      # new or changed inbox items for the user
    UNREAD = "unread"    # engagement changed the unread count
    REVOKE = "revoke"    # one token (token_id) or all of the user's tokens were revoked
    ITEM = "item"        # these shown items changed state (ids in the subject)


MAX_ITEM_IDS = 500  # item ids one notice carries; read-all of more sends several notices


@dataclass(eq=False)
class Subscriber:
    """One open stream. `wake` is set by the bus; the stream clears it before it reads."""

    user_id: str
    token_id: str | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    notices: set[str] = field(default_factory=set)
    items: set[str] = field(default_factory=set)  # ids of changed items to send as `item` events
    revoked: bool = False


class LocalBus:
    kind = "local"

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = defaultdict(set)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the event loop side -------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, user_id: str, token_id: str | None) -> Subscriber:
        sub = Subscriber(user_id, token_id)
        with self._lock:
            self._subs[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            subs = self._subs.get(sub.user_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.user_id]

    def stream_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    # -- any thread ------------------------------------------------------------------
    def publish(self, user_id: str, notice: Notice, subject: str | list[str] | None = None) -> None:
        self._deliver(user_id, notice, subject)

    def publish_many(self, notices: list[tuple[str, Notice, str | list[str] | None]]) -> None:
        for user_id, notice, subject in notices:
            self.publish(user_id, notice, subject)

    def publish_items(self, user_id: str, item_ids: list[str]) -> None:
        """These items of the user changed state: every open stream of the user sends them
        as `item` events, then `unread` if the total moved. Call after commit."""
        self.publish_many([(user_id, Notice.ITEM, item_ids[i:i + MAX_ITEM_IDS])
                           for i in range(0, len(item_ids), MAX_ITEM_IDS)])

    def _deliver(self, user_id: str, notice: str, subject: str | list[str] | None) -> None:
        loop = self._loop
        with self._lock:
            targets = list(self._subs.get(user_id, ()))
        if not targets or loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(_wake, targets, notice, subject)

    def close(self) -> None:
        """Nothing to release in process."""


def _wake(targets: list[Subscriber], notice: str, subject: str | list[str] | None) -> None:
    for sub in targets:
        if notice == Notice.REVOKE and subject is not None and sub.token_id != subject:
            continue
        if notice == Notice.REVOKE:
            sub.revoked = True
        if notice == Notice.ITEM:
            if not isinstance(subject, list):
                continue
            sub.items.update(i for i in subject if isinstance(i, str))
        sub.notices.add(notice)
        sub.wake.set()


class RedisBus(LocalBus):
    kind = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        from ..redis_pubsub import Subscriber, publisher

        self._redis = publisher(url)
        self._subscriber = Subscriber(url, CHANNEL, self._on_message, name="inapp-bus")

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        super().attach(loop)
        self._subscriber.start()

    def publish(self, user_id: str, notice: Notice, subject: str | list[str] | None = None) -> None:
        try:
            self._redis.publish(CHANNEL, json.dumps([user_id, str(notice), subject]))
        except Exception:  # noqa: BLE001 - a wake-up call; the stream's own tick re-reads
            log.warning("in-app notification not published", exc_info=True)
            self._deliver(user_id, notice, subject)

    def publish_many(self, notices: list[tuple[str, Notice, str | list[str] | None]]) -> None:
        if not notices:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for user_id, notice, subject in notices:
                pipe.publish(CHANNEL, json.dumps([user_id, str(notice), subject]))
            pipe.execute()
        except Exception:  # noqa: BLE001
            log.warning("in-app notifications not published", exc_info=True)
            for user_id, notice, subject in notices:
                self._deliver(user_id, notice, subject)

    def _on_message(self, data: bytes) -> None:
        try:
            user_id, notice, subject = json.loads(data)
        except (ValueError, TypeError):
            return
        self._deliver(user_id, notice, subject)

    def close(self) -> None:
        self._subscriber.close()


def make_bus(redis_url: str | None) -> LocalBus:
    return RedisBus(redis_url) if redis_url else LocalBus()
