"""The dispatcher: wakes workers for committed attempts, runs the delivery task, and hosts
the sweeper. In the embedded default the workers are threads of the web process fed by an
in-process queue (wakeup.LocalWorkers); scaled out, attempts are published to the broker
(wakeup.BrokerPublisher) and `orchestrator worker` / `orchestrator scheduler` run the same
task code in their own processes."""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
from datetime import timedelta

from sqlalchemy import update

from ..audit import checkpoints as audit_checkpoints
from ..logs import TASK_HEADER
from ..sending import scheduling
from ..sending.confirmations import EmailAckHook
from ..storage.models import Attempt
from . import callbacks, sweeper
from .celery_app import celery_app, configure, configure_runtime, deliver_attempt_task
from .deliver import DeliveryContext, deliver_attempt
from .wakeup import BrokerPublisher, LocalWorkers

log = logging.getLogger("orchestrator.dispatch")


class Dispatcher:
    def __init__(self, state, *, celery=True) -> None:
        self.state = state
        self.settings = state.settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker = None
        self.local = self.settings.broker_url.startswith("memory://")
        self.celery = configure(self.settings) if celery else None
        # How committed work wakes a worker: set once the consumer exists (start_background
        # for the embedded default; a broker publisher wherever a broker is configured).
        self.waker: LocalWorkers | BrokerPublisher | None = None
        if not self.local and celery:
            self.waker = BrokerPublisher(self._publish_batch)
        state.db.announcer = self.wake
        state.db.callback_announcer = callbacks.enqueue
        configure_runtime(self)

    # -- producing ---------------------------------------------------------------------
    def wake(self, attempt_ids: list[str]) -> None:
        """Announces committed attempts to whatever runs them. Without a consumer (the
        embedded broker with its worker off, as in most tests) there is no one to tell."""
        if attempt_ids and self.waker is not None:
            self.waker.wake(attempt_ids)

    def enqueue_many(self, attempt_ids: list[str]) -> None:
        """Marks the attempts as announced (so the sweeper waits its grace period) and wakes
        a worker. Units of work announce their own (storage.db.announce); this is for work
        found outside one: the sweeper's re-announcements."""
        if not attempt_ids:
            return
        now = self.state.clock()
        with self.state.db.session() as session:
            session.execute(update(Attempt).where(Attempt.id.in_(attempt_ids)).values(enqueued_at=now)
                            .execution_options(synchronize_session=False))
        self.wake(attempt_ids)

    def is_pending(self, attempt_id: str) -> bool:
        return self.waker is not None and self.waker.is_pending(attempt_id)

    def _publish_batch(self, pairs: list[tuple[str, str | None]]) -> None:
        """One task per attempt (parallel steps run in parallel), one producer per batch;
        each task carries the id of the request that caused it (a header)."""
        with celery_app.producer_or_acquire() as producer:
            for attempt_id, request_id in pairs:
                deliver_attempt_task.apply_async(args=(attempt_id,), retry=False, producer=producer,
                                                 headers={TASK_HEADER: request_id} if request_id else None)

    def release_held_in_app(self, user_id: str) -> list[str]:
        return sweeper.release_held_in_app(self.state.db, user_id, self.state.clock())

    # -- consuming ---------------------------------------------------------------------
    def context(self) -> DeliveryContext:
        return DeliveryContext(
            db=self.state.db, registry=self.state.providers, clock=self.state.clock,
            lease_seconds=self.settings.lease_seconds, worker_id=self.worker_id,
            notify_inapp=self.notify_inapp, uncertain_action=self.uncertain_action,
            decorate_email=EmailAckHook(self.state),
            unsubscribe_url=self.state.unsubscribe.url if self.state.unsubscribe is not None else None,
        )

    def uncertain_action(self, policy_version: str, category: str):
        """The message's policy decides what an uncertain send on a provider that cannot be
        asked becomes (dispatch/uncertain.py); the active one if that version is gone."""
        try:
            policy = self.state.policies.get(policy_version)
        except LookupError:
            policy = self.state.policies.active()
        return policy.uncertain_send_action(category)

    def notify_inapp(self, user_id: str) -> None:
        from ..inapp.bus import Notice

        if self.state.bus is not None:
            self.state.bus.publish(user_id, Notice.ITEMS)

    def deliver(self, attempt_id: str) -> str:
        # In a context of its own: the message id it sets for its log lines ends with it.
        return contextvars.copy_context().run(deliver_attempt, self.context(), attempt_id,
                                              self.settings.public_base_url)

    def deliver_callback(self, callback_id: int) -> str:
        return callbacks.deliver(self.state.db, callback_id, self.state.clock())

    def sweep_once(self) -> dict[str, int]:
        counts = sweeper.sweep(self.state.db, self.state.clock(), self.enqueue_many, is_pending=self.is_pending,
                               deadline_seconds=self.settings.attempt_deadline_seconds,
                               parked_limits=(self.settings.parked_receipts_max_age_seconds,
                                              self.settings.parked_receipts_max))
        counts["scheduled"] = scheduling.release_due(self.state, self.state.clock())
        with self.state.db.session() as session:
            due = callbacks.due_callbacks(session, self.state.clock())
        for callback_id in due:
            callbacks.enqueue(callback_id)
        counts["callbacks"] = len(due)
        return counts

    def broker_description(self) -> dict[str, object]:
        url = self.settings.broker_url
        return {"url": url.split("@")[-1] if "@" in url else url,
                "embedded_worker": self._worker is not None or isinstance(self.waker, LocalWorkers)}

    # -- background threads ------------------------------------------------------------
    def start_background(self, *, worker: bool | None = None, sweeper_thread: bool = True) -> None:
        if worker if worker is not None else self.settings.embedded_worker:
            if self.local:
                if self.waker is None:
                    self.waker = LocalWorkers(self.deliver, self.settings.worker_concurrency)
            else:
                self._start_worker()
        if sweeper_thread:
            t = threading.Thread(target=self._sweep_loop, name="sweeper", daemon=True)
            t.start()
            self._threads.append(t)

    def _start_worker(self) -> None:
        # A WorkController in a thread, as celery.contrib.testing does: no signal handlers,
        # no forked pool (threads); remote control is off in the Celery config.
        self._worker = celery_app.WorkController(
            pool_cls="threads", concurrency=self.settings.worker_concurrency, loglevel="WARNING",
            without_heartbeat=True, without_mingle=True, without_gossip=True, hostname=self.worker_id,
            queues=["orchestrator"],
        )
        t = threading.Thread(target=self._worker.start, name="celery-worker", daemon=True)
        t.start()
        self._threads.append(t)

    def _sweep_loop(self) -> None:
        ttl = timedelta(seconds=max(self.settings.sweep_interval_seconds * 5, 10))
        while not self._stop.wait(self.settings.sweep_interval_seconds):
            try:
                if sweeper.acquire_lease(self.state.db, self.worker_id, self.state.clock(), ttl):
                    self.sweep_once()
                    audit_checkpoints.maybe_write(self.settings, self.state.db, self.state.clock())
                else:
                    sweeper.not_sweeping()
            except Exception:  # noqa: BLE001 - keep sweeping; the next pass retries
                log.exception("sweep failed")

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._worker is not None:
            self._stop_worker(timeout)
        if self.waker is not None:
            self.waker.stop(timeout)
            self.waker = None
        sweeping = any(t.name == "sweeper" for t in self._threads)
        for t in self._threads:
            t.join(timeout=5)
        if sweeping:
            try:
                sweeper.release_lease(self.state.db, self.worker_id)
            except Exception:  # noqa: BLE001 - the lease runs out by itself
                log.warning("could not release the sweeper lease", exc_info=True)
        self._threads = []

    def _stop_worker(self, timeout: float) -> None:
        """Asks the embedded worker to stop itself, as a signal would. Calling
        WorkController.stop() from another thread cancels its consumers over the worker
        thread's broker connection — not thread-safe with py-amqp, where it blocked ~180 s
        waiting for a reply the worker thread had already read."""
        from celery.worker import state as worker_state

        thread = next((t for t in self._threads if t.name == "celery-worker"), None)
        worker_state.should_stop = 0
        try:
            if thread is not None:
                thread.join(timeout)
        finally:
            worker_state.should_stop = None
        if thread is not None and thread.is_alive():
            self._worker.stop(in_sighandler=False)
        self._worker = None
