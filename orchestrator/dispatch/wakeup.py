"""How a committed unit of work wakes workers. Two implementations, one method (`wake`):

- `LocalWorkers` (embedded default, `memory://` with the embedded worker): a queue and a few
  threads in this process run the delivery task directly. No broker round trip, no
  serialisation; the request that accepted the message only appends ids to a queue.
- `BrokerPublisher` (Redis or RabbitMQ): a background thread publishes the ids as Celery
  tasks in batches, one producer per batch, so no request waits on the broker.

Either way the broker is only a wake-up call: the attempt rows are committed before they
are announced, and the sweeper re-announces whatever a crash or a lost message left behind.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable

from ..logs import REQUEST_ID, log_context

log = logging.getLogger("orchestrator.dispatch")

_STOP = object()


class LocalWorkers:
    kind = "local"

    def __init__(self, run: Callable[[str], object], concurrency: int) -> None:
        self._run = run
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: set[str] = set()   # queued here and not started: the sweeper skips these
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, name=f"deliver-{i}", daemon=True)
                         for i in range(concurrency)]
        for t in self._threads:
            t.start()

    def wake(self, attempt_ids: Iterable[str]) -> None:
        request_id = REQUEST_ID.get()  # the request that caused the work, for its log lines
        with self._lock:
            fresh = [i for i in attempt_ids if i not in self._pending]
            self._pending.update(fresh)
        for attempt_id in fresh:
            self._queue.put((attempt_id, request_id))

    def is_pending(self, attempt_id: str) -> bool:
        return attempt_id in self._pending

    def backlog(self) -> int:
        return len(self._pending)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            attempt_id, request_id = item
            with self._lock:
                self._pending.discard(attempt_id)
            try:
                with log_context(request_id=request_id):
                    self._run(attempt_id)
            except Exception:  # noqa: BLE001 - the attempt stays in the database; the sweeper retries
                log.exception("delivery task failed", extra={"attempt_id": attempt_id})

    def stop(self, timeout: float = 15.0) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join(timeout)


class BrokerPublisher:
    kind = "broker"

    def __init__(self, publish_batch: Callable[[list[tuple[str, str | None]]], None]) -> None:
        """`publish_batch` gets (attempt id, request id) pairs."""
        self._publish_batch = publish_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="broker-publisher", daemon=True)
        self._thread.start()

    def wake(self, attempt_ids: Iterable[str]) -> None:
        request_id = REQUEST_ID.get()
        pairs = [(attempt_id, request_id) for attempt_id in attempt_ids]
        if pairs:
            self._queue.put(pairs)

    def is_pending(self, attempt_id: str) -> bool:
        return False  # once published, only the broker knows

    def backlog(self) -> int:
        return self._queue.qsize()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = list(item)
            while not self._queue.empty() and len(batch) < 500:  # coalesce what piled up
                more = self._queue.get()
                if more is _STOP:
                    self._publish(batch)
                    return
                batch.extend(more)
            self._publish(batch)

    def _publish(self, batch: list[str]) -> None:
        try:
            self._publish_batch(batch)
        except Exception:  # noqa: BLE001 - the broker is a wake-up call; the sweeper recovers
            log.warning("enqueue failed; the sweeper will pick it up", extra={"count": len(batch)}, exc_info=True)

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)
