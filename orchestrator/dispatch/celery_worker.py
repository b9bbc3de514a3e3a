"""`orchestrator worker`: Celery's worker, as `celery worker` builds it, with two changes so
every line it writes is JSON: no text banner (`quiet`), and a SIGTERM handler that logs its
warm shutdown through our logger instead of writing a bare text line to stdout.

SIGTERM is Celery's warm shutdown: no new tasks are taken, tasks in flight finish, and
(tasks are acked late) a task the worker could not finish goes back to the broker for
another worker. The sweeper re-announces anything still due after that."""

from __future__ import annotations

import logging

from celery import platforms

from .celery_app import celery_app

log = logging.getLogger("orchestrator.worker")
QUEUE = "orchestrator"


def _warm_shutdown(signum, frame) -> None:  # noqa: ANN001 - a signal handler
    from celery.worker import state

    log.info("warm shutdown (SIGTERM): taking no new tasks, finishing those in flight")
    state.should_stop = platforms.EX_OK


class _Worker(celery_app.Worker):
    def install_platform_tweaks(self, worker) -> None:  # noqa: ANN001 - Celery's signature
        super().install_platform_tweaks(worker)
        platforms.signals["TERM"] = _warm_shutdown


def run_worker(concurrency: int, hostname: str | None = None) -> int:
    """Runs until shut down; returns the exit code."""
    worker = _Worker(pool_cls="threads", concurrency=concurrency, queues=[QUEUE], loglevel="INFO",
                     quiet=True, without_gossip=True, without_mingle=True, hostname=hostname)
    worker.start()
    return worker.exitcode or 0
