"""The impact simulation over several processes: the replayed period is split by user id into
one share per worker (a user's messages stay together, so the replayed cap counts are exact),
each share is simulated in its own process (spawned: safe from a server's threads), and the
results are merged (``simulation.merge``) into what one process would have found.

Worth it for large replays only: a worker costs 1-2 s of CPU to start (imports) and the split
one query. ``simulate_auto`` picks one process when fewer than ``PARALLEL_MIN_MESSAGES``
messages need a replay (``simulation.count_replays``: messages that take their stored route
are cheap), on a single core, or for an in-memory SQLite database (not shared).

Service API:
- ``simulate_auto(db, policy, baseline, since, until=None, total=None, workers=None,
  min_messages=PARALLEL_MIN_MESSAGES, progress=None, **kwargs) -> SimulationResult``
  (``kwargs`` as ``simulation.simulate``)
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

import policies
from policies import Policy

from ..storage.db import Database
from ..storage.models import Message
from . import simulation

PARALLEL_MIN_MESSAGES = 20_000
_POLL_SECONDS = 0.5


def _workers(requested: int | None) -> int:
    if requested is not None:
        return max(1, requested)
    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _boundaries(db: Database, since: datetime, until: datetime | None, total: int, shares: int) -> list[str | None]:
    """User ids splitting the period's messages into `shares` runs of about equal size:
    [None, b1, ..., None] (share i is [b_i, b_i+1))."""
    cuts: list[str | None] = [None]
    with db.engine.connect() as conn:
        for i in range(1, shares):
            query = simulation._period(select(Message.user_id), since, until).order_by(Message.user_id)
            cut = conn.execute(query.offset(total * i // shares).limit(1)).scalar()
            if cut is not None and (cuts[-1] is None or cut > cuts[-1]):
                cuts.append(cut)
    return cuts + [None]


def _run_share(url: str, documents: tuple[dict, dict | None], since: datetime, until: datetime | None,
               users: tuple[str | None, str | None], kwargs: dict[str, Any], out: Any) -> None:
    """In the worker process: compile both versions from their documents, simulate the share."""
    db = Database(url)
    try:
        policy = policies.load_policy(documents[0])
        baseline = policies.load_policy(documents[1]) if documents[1] is not None else None
        result = simulation.simulate(db, policy, baseline=baseline, since=since, until=until, users=users,
                                     progress=lambda n: out.put(("progress", n)), **kwargs)
        out.put(("result", result))
    except BaseException as exc:  # noqa: BLE001 — reported to the parent, which raises
        out.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        db.dispose()


def simulate_auto(db: Database, policy: Policy, baseline: Policy | None, *, since: datetime,
                  until: datetime | None = None, total: int | None = None, workers: int | None = None,
                  min_messages: int = PARALLEL_MIN_MESSAGES, progress: Callable[[int], None] | None = None,
                  **kwargs: Any) -> simulation.SimulationResult:
    """``simulation.simulate`` over several processes when the history is large enough."""
    started = time.perf_counter()
    shares = _workers(workers)
    in_memory = db.url.startswith("sqlite") and (":memory:" in db.url or db.url.rstrip("/") == "sqlite:")
    if shares == 1 or in_memory or simulation.count_replays(db, policy, baseline, since, until) < min_messages:
        return simulation.simulate(db, policy, baseline=baseline, since=since, until=until, progress=progress,
                                   **kwargs)
    if total is None:
        total = simulation.count_messages(db, since, until)
    cuts = _boundaries(db, since, until, total, shares)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    documents = (policy.document, baseline.document if baseline is not None else None)
    procs = [context.Process(target=_run_share, args=(db.url, documents, since, until, (lo, hi), kwargs, out),
                             daemon=True, name=f"simulation-{i}")
             for i, (lo, hi) in enumerate(zip(cuts, cuts[1:], strict=False))]
    for proc in procs:
        proc.start()
    results: list[simulation.SimulationResult] = []
    try:
        while len(results) < len(procs):
            try:
                kind, value = out.get(timeout=_POLL_SECONDS)
            except queue_module.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a simulation worker process died") from None
                continue
            if kind == "progress" and progress is not None:
                progress(value)
            elif kind == "result":
                results.append(value)
            elif kind == "error":
                raise RuntimeError(f"a simulation worker failed: {value}")
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    merged = simulation.merge(results, **{k: v for k, v in kwargs.items() if k in ("max_changed", "examples_per_kind")})
    merged.seconds = time.perf_counter() - started
    return merged
