"""Impact of a policy version against the active one over the last N days, for the review
pages: computed once per (version and its text, active version, days), kept for a while, and
run in a background thread when the history is large, with progress to show.

A run replays the period through both versions (compliance/simulation.py, over several
processes for a large history: compliance/simulation_workers.py). Histories of at most
``inline_max`` messages are computed in the caller's request (a page then shows the figures
at once); larger ones in a daemon thread, one at a time (the others wait, status ``queued``),
while pages poll ``ImpactRun.progress_dict()``. Results live in this process's memory: the
newest ``keep`` runs, each reused for ``max_age``; a reviewer can ask for a fresh run.
With several server processes each computes its own.

Service API:
- ``ImpactRuns(db, clock, inline_max=5000, max_age=timedelta(hours=1), keep=16)``
- ``runs.get_or_start(policy, source, baseline, days) -> ImpactRun`` (``source``: the
  version's document text, so an edited draft is computed again)
- ``runs.find(version, source, baseline_version, days) -> ImpactRun | None``,
  ``runs.forget(run)``
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from policies import Policy

from ..domain.statuses import ImpactRunStatus
from ..storage.db import Database
from . import simulation, simulation_workers

log = logging.getLogger(__name__)

RunKey = tuple[str, str, str, int]


def run_key(version: str, source: str, baseline_version: str, days: int) -> RunKey:
    return version, hashlib.sha256(source.encode()).hexdigest()[:16], baseline_version, days


@dataclass
class ImpactRun:
    key: RunKey
    version: str
    baseline_version: str
    days: int
    since: datetime
    until: datetime
    total: int
    status: ImpactRunStatus = ImpactRunStatus.QUEUED
    done: int = 0
    finished_at: datetime | None = None
    result: simulation.SimulationResult | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def advance(self, rows: int) -> None:
        with self._lock:
            self.done += rows

    @property
    def percent(self) -> int:
        if self.status == ImpactRunStatus.DONE:
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0

    def progress_dict(self) -> dict[str, object]:
        return {"status": self.status.value, "done": self.done, "total": self.total, "percent": self.percent,
                "version": self.version, "baseline_version": self.baseline_version, "days": self.days,
                "error": self.error}


class ImpactRuns:
    def __init__(self, db: Database, clock: Callable[[], datetime], *, inline_max: int = 5000,
                 max_age: timedelta = timedelta(hours=1), keep: int = 16) -> None:
        self.db, self.clock = db, clock
        self.inline_max, self.max_age, self.keep = inline_max, max_age, keep
        self._runs: OrderedDict[RunKey, ImpactRun] = OrderedDict()
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()

    def find(self, version: str, source: str, baseline_version: str, days: int) -> ImpactRun | None:
        with self._lock:
            return self._runs.get(run_key(version, source, baseline_version, days))

    def forget(self, run: ImpactRun) -> None:
        with self._lock:
            if self._runs.get(run.key) is run:
                del self._runs[run.key]

    def _fresh(self, run: ImpactRun) -> bool:
        if run.status != ImpactRunStatus.DONE:
            return True  # a failure stays shown until a reviewer asks again
        return run.status == ImpactRunStatus.DONE and self.clock() - run.until < self.max_age

    def get_or_start(self, policy: Policy, source: str, baseline: Policy, days: int) -> ImpactRun:
        key = run_key(policy.version, source, baseline.version, days)
        with self._lock:
            run = self._runs.get(key)
            if run is not None and self._fresh(run):
                self._runs.move_to_end(key)
                return run
            until = self.clock()
            since = until - timedelta(days=days)
            total = simulation.count_messages(self.db, since)
            run = ImpactRun(key, policy.version, baseline.version, days, since, until, total)
            self._runs[key] = run
            while len(self._runs) > self.keep:
                self._runs.popitem(last=False)
        if total <= self.inline_max:
            self._compute(run, policy, baseline)
        else:
            threading.Thread(target=self._compute, args=(run, policy, baseline), daemon=True,
                             name=f"impact-{policy.version}").start()
        return run

    def _compute(self, run: ImpactRun, policy: Policy, baseline: Policy) -> None:
        with self._one_at_a_time:
            run.status = ImpactRunStatus.RUNNING
            try:
                # Up to now (`until` is when the run started; a message accepted since then may join).
                run.result = simulation_workers.simulate_auto(self.db, policy, baseline, since=run.since,
                                                              total=run.total, progress=run.advance)
                run.status = ImpactRunStatus.DONE
            except Exception as exc:  # noqa: BLE001 — a page shows the failure instead of waiting forever
                log.exception("impact run of policy %s against %s failed", run.version, run.baseline_version)
                run.error = f"{type(exc).__name__}: {exc}"
                run.status = ImpactRunStatus.FAILED
            finally:
                run.finished_at = self.clock()
