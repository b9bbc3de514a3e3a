"""Group commit: the writes of concurrent callers share one transaction.

Each caller `submit`s an item and blocks until the transaction holding it has committed (or
failed), so nothing is acknowledged before it is durable. The first caller to arrive when no
batch is being written leads: it takes every item queued so far (its own first) and runs
them together; callers arriving meanwhile queue up, and when the batch is done the oldest of
them is woken to lead the next one. With one caller at a time every batch holds one item and
the caller runs its own write, with no hand-off to another thread; under load a batch holds
about as many items as there are callers waiting, and the per-transaction costs (BEGIN,
statement setup, COMMIT, SQLite's single writer, PostgreSQL's WAL flush) are paid once per
batch instead of once per item.

Hand-written because no library offers leader/follower batching for plain threads; it is
the scheme databases use for their own log writes (PostgreSQL `commit_delay`, MySQL's
binlog group commit), without a timer: a batch never waits for more items."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# A batch is one transaction; past this many items the next caller leads another one.
MAX_BATCH = 64


class _Slot(Generic[Item]):
    __slots__ = ("item", "done", "lead", "outcome")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = threading.Event()
        self.lead = False  # woken to lead the next batch, not with an outcome
        self.outcome: object = None


class GroupCommit(Generic[Item, Result]):
    """`run(items)` writes a batch in one transaction and returns one outcome per item, in
    order: its result, or the exception to raise to that item's caller (an item's own fault
    must not fail the others). If `run` itself raises, every caller of the batch gets it."""

    def __init__(self, run: Callable[[list[Item]], Sequence[Result | BaseException]],
                 max_batch: int = MAX_BATCH) -> None:
        self._run = run
        self._max = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._leading = False

    def submit(self, item: Item) -> Result:
        slot = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.done.wait()
        if not slot.done.is_set() or slot.lead:
            self._lead()
        outcome = slot.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[:self._max], self._queue[self._max:]
        outcomes: list = []
        try:
            outcomes = list(self._run([s.item for s in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"group commit: {len(outcomes)} outcomes for {len(batch)} items")
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
            outcomes = [exc] * len(batch)
        finally:
            # Every caller of the batch answered and the next leader woken, whatever happened
            # above: a caller left waiting would hold up every later one.
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for slot, outcome in zip(batch, outcomes or [RuntimeError("group commit: batch interrupted")]
                                     * len(batch), strict=True):
                slot.outcome = outcome
                slot.lead = False
                slot.done.set()
            if successor is not None:
                successor.lead = True
                successor.done.set()
