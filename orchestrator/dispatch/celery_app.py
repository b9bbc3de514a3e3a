"""The Celery app and its one task. The broker only wakes workers: the task carries an
attempt id, and everything it needs is read from the database."""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import setup_logging

from ..config import Settings
from ..logs import TASK_HEADER, configure_logging, log_context

celery_app = Celery("orchestrator")
DELIVER_TASK = "orchestrator.deliver_attempt"
CALLBACK_TASK = "orchestrator.deliver_callback"

_runtime = None  # set by configure_runtime in each process that runs tasks
_log_level = "INFO"  # Settings.log_level, set by configure (before any worker starts)


def configure(settings: Settings) -> Celery:
    global _log_level
    _log_level = settings.log_level
    broker = settings.broker_url
    if celery_app.conf.broker_url not in (None, broker):
        # Celery caches its connection and producer pools on first publish; a process that
        # reconfigures (tests, the benchmark) would keep publishing to the old broker while
        # its worker consumes the new one. Forget them, as Celery itself does after a fork.
        # (Only forget: kombu shares pools process-wide, so closing one breaks later users.)
        celery_app._pool = None
        if "amqp" in celery_app.__dict__:
            celery_app.amqp._producer_pool = None
    celery_app.conf.update(
        broker_url=broker,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # Ack after the task ran: a worker killed mid-task leaves the message for another.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Polling transports default to a 1 s poll (~16 tasks/s); 50 ms keeps latency low.
        broker_transport_options={"polling_interval": 0.05, **_redis_options(broker)},
        task_default_queue="orchestrator",
        # Nothing here uses remote control; it only adds broadcast queues and chatter.
        worker_enable_remote_control=False,
    )
    return celery_app


def _redis_options(broker: str) -> dict:
    """Redis: no ack emulation. It costs two Redis transactions per task (MULTI/ZADD/HSET on
    receipt, ZREM/HDEL on ack: 12% of a worker's time and most of its Redis traffic, measured
    with py-spy under bench part d) to put back the tasks of a worker that died, and only
    after `visibility_timeout` (1 h). Here the broker only wakes workers: the attempt is in
    the database, and the sweeper announces again, within seconds, any attempt whose
    wake-up was lost (dispatch/sweeper.py; tests/dispatch/test_crash.py kills a worker on
    Redis). What changes is a warm shutdown: tasks the worker had fetched but not started are
    announced again by the sweeper instead of being put back at once."""
    return {"ack_emulation": False} if broker.startswith(("redis://", "rediss://")) else {}


def configure_runtime(runtime) -> None:
    global _runtime
    _runtime = runtime


def request_id_of(task) -> str | None:
    """The request id the publisher put in the task's headers (logs.task_headers)."""
    request = task.request
    value = getattr(request, TASK_HEADER, None) or (getattr(request, "headers", None) or {}).get(TASK_HEADER)
    return value if isinstance(value, str) else None


@celery_app.task(name=DELIVER_TASK, bind=True, acks_late=True)
def deliver_attempt_task(self, attempt_id: str) -> str:
    if _runtime is None:
        raise RuntimeError("worker runtime not configured: start it with `orchestrator worker`")
    with log_context(request_id=request_id_of(self)):
        return _runtime.deliver(attempt_id)


@celery_app.task(name=CALLBACK_TASK, bind=True, acks_late=True)
def deliver_callback_task(self, callback_id: int) -> str:
    if _runtime is None:
        raise RuntimeError("worker runtime not configured: start it with `orchestrator worker`")
    with log_context(request_id=request_id_of(self)):
        return _runtime.deliver_callback(callback_id)


@setup_logging.connect
def _json_logs(loglevel=None, **_kwargs) -> None:
    """Celery's own logs (worker start, tasks received and done, connection trouble) as the
    same JSON lines as ours: a receiver here stops Celery from installing its text handlers."""
    configure_logging(_log_level)
    logging.getLogger("celery").setLevel(logging.INFO)
