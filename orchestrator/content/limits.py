"""What one render may cost: a CPU-time budget, and the sizes a value may reach.

Jinja2's sandbox bounds what a template may *reach* (no `__class__`), not what it may *cost*.
No library bounds that, so it is done here and in render.py/filters.py:

- every operation the sandbox lets us intercept (calls, attribute and item lookups, binary
  operators, comparisons, filters, tests, each loop iteration and each value written out)
  first calls `tick()`, which raises `LimitExceeded` once the render has used its CPU time;
- every single operation is itself bounded, so the time between two ticks is bounded too: a
  string of at most MAX_VALUE_CHARS, a list of at most MAX_ITEMS, and no value, counted with
  what it holds (`[[1] * 2000] * 2000` holds four million), over MAX_EXPANDED: a comparison
  or a sort, each one uninterruptible call into C, never walks more than that.

`tick()` reads the cheap wall clock and asks the (slower, a system call) thread CPU clock only
once the wall clock says the budget could be spent: CPU time never runs ahead of wall time.
Time spent waiting for other threads is never charged to the render, nor is a garbage
collection that happens to run in its thread (a full collection of a large heap can take
longer than the whole budget; it is the process's work, not the template's).

Budgets nest: each message's render has one (RENDER_CPU_SECONDS), and the renders of one
request (a batch's) also share a pool (RENDER_BATCH_CPU_SECONDS); whichever ends first ends the
render."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from jinja2.exceptions import SecurityError

RENDER_CPU_SECONDS = 0.1        # one message's render, every channel and field of it
RENDER_BATCH_CPU_SECONDS = 1.0  # every render of one request (a batch of up to 1,000 messages)
MAX_VALUE_CHARS = 100_000       # any string an expression builds
MAX_ITEMS = 10_000              # any list an expression builds or a filter sorts, lists, joins…
MAX_EXPANDED = 1_000_000        # any value counted with everything it holds (text_size)
MAX_OUTPUT_CHARS = 500_000      # one rendered field

_active = threading.local()


class LimitExceeded(SecurityError):
    """A render went over its CPU time or a value over its size: the template (or the
    variables it was given) would cost more than a send may."""


class _Budget:
    __slots__ = ("binding", "cpu_deadline", "cpu_start", "gc_at_start", "next_wall_check", "outer")

    def __init__(self, seconds: float, outer: _Budget | None) -> None:
        self.outer = outer
        self.gc_at_start = _gc_seconds()
        self.cpu_start = cpu = time.thread_time()
        self.cpu_deadline, self.binding = cpu + seconds, seconds
        pool = getattr(_active, "pool", None)
        if outer is not None:  # an inner budget never outlasts the one it is in (GC-adjusted)
            outer_deadline = outer.cpu_deadline + (self.gc_at_start - outer.gc_at_start)
            if outer_deadline < self.cpu_deadline:
                self.cpu_deadline, self.binding = outer_deadline, outer.binding
        elif pool is not None and cpu + pool.left < self.cpu_deadline:
            self.cpu_deadline, self.binding = cpu + pool.left, pool.seconds
        self.next_wall_check = time.perf_counter() + max(0.0, self.cpu_deadline - cpu)

    def used(self) -> float:
        return time.thread_time() - self.cpu_start - (_gc_seconds() - self.gc_at_start)


class render_pool:  # noqa: N801 - used as a function: `with render_pool(1.0):`
    """The renders inside the block (one request's: a batch) share `seconds` of CPU time in
    all, counting the renders only, not the work between them."""

    __slots__ = ("left", "outer", "seconds")

    def __init__(self, seconds: float = RENDER_BATCH_CPU_SECONDS) -> None:
        self.seconds = self.left = seconds

    def __enter__(self) -> render_pool:
        self.outer = getattr(_active, "pool", None)
        _active.pool = self
        return self

    def __exit__(self, *exc: object) -> None:
        _active.pool = self.outer


def _gc_seconds() -> float:
    return getattr(_active, "gc_seconds", 0.0)


def _on_gc(phase: str, info: dict) -> None:
    """Adds each collection's CPU time, in a thread rendering, to that thread's total."""
    if getattr(_active, "budget", None) is None:
        return
    now = time.thread_time()
    if phase == "start":
        _active.gc_started = now
    else:
        _active.gc_seconds = _gc_seconds() + now - getattr(_active, "gc_started", now)


gc.callbacks.append(_on_gc)


class cpu_budget:  # noqa: N801 - used as a function: `with cpu_budget():`
    """Renders inside the block share `seconds` of this thread's CPU time (within any budget
    the block is in). A class rather than @contextmanager: it wraps every render."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float = RENDER_CPU_SECONDS) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        _active.budget = _Budget(self.seconds, getattr(_active, "budget", None))

    def __exit__(self, *exc: object) -> None:
        budget = _active.budget
        _active.budget = budget.outer
        pool = getattr(_active, "pool", None)
        if budget.outer is None and pool is not None:
            pool.left -= budget.used()


class within_budget(cpu_budget):  # noqa: N801
    """A budget of its own only when the block is in none (one field rendered alone)."""

    __slots__ = ("opened",)

    def __enter__(self) -> None:
        self.opened = getattr(_active, "budget", None) is None
        if self.opened:
            super().__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.opened:
            super().__exit__()


def tick() -> None:
    """Raise LimitExceeded once the active budget (or one it is in) is spent; no-op outside
    a budget."""
    budget = getattr(_active, "budget", None)
    if budget is None:
        return
    now = time.perf_counter()
    if now < budget.next_wall_check:
        return
    cpu = time.thread_time() - (_gc_seconds() - budget.gc_at_start)
    if cpu >= budget.cpu_deadline:
        raise LimitExceeded(f"rendering used more than {budget.binding * 1000:.0f} ms of CPU time")
    budget.next_wall_check = now + (budget.cpu_deadline - cpu)


def text_size(value: Any, limit: int) -> int:
    """About how many characters `str(value)` has, counted without building it, and so also
    how much a comparison or sort of it walks (a list of 10,000 references to one
    100,000-character string prints as a billion characters). Each distinct list or mapping
    is counted once however often it is referred to; counting stops once past `limit`."""
    try:
        return _size(value, {}, limit)
    except RecursionError:  # nested deeper than any value a template may hold
        return limit + 1


def _size(value: Any, seen: dict[int, int], limit: int) -> int:
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 24
    if isinstance(value, list | tuple | set | frozenset | dict):
        key = id(value)
        if key in seen:
            return seen[key]
        seen[key] = limit + 1  # while it is being counted: a value holding itself is over
        total = 2
        for item in (value.items() if isinstance(value, dict) else value):
            total += 2 + _size(item, seen, limit)
            if total > limit:
                break
        seen[key] = total
        return total
    return 64  # generators, Jinja's objects: their str() is a short repr


def check_text(value: Any, limit: int = MAX_VALUE_CHARS, what: str = "a value") -> None:
    if (len(value) if type(value) is str else text_size(value, limit)) > limit:
        raise LimitExceeded(f"{what} would be longer than {limit} characters")


def check_expanded(value: Any, what: str = "a value") -> Any:
    """`value`, if what it holds, counted whole, is within MAX_EXPANDED."""
    if not isinstance(value, str | int | float | bool | type(None)) and text_size(value, MAX_EXPANDED) > MAX_EXPANDED:
        raise LimitExceeded(f"{what} would hold more than {MAX_EXPANDED} characters, counted with what it holds")
    return value


def check_items(value: Any, what: str = "a list") -> None:
    if isinstance(value, list | tuple | dict | set | frozenset) and len(value) > MAX_ITEMS:
        raise LimitExceeded(f"{what} is limited to {MAX_ITEMS} items")


def check_result(value: Any) -> Any:
    """What a filter built: a string or list within the limits."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise LimitExceeded(f"a value would be longer than {MAX_VALUE_CHARS} characters")
    else:
        check_items(value)
    return value
