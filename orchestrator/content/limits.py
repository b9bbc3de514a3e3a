"""What one render may cost: a CPU-time budget, and the sizes a value may reach.

Jinja2's sandbox bounds what a template may *reach* (no `__class__`), not what it may *cost*.
No library bounds that, so it is done here and in render.py/filters.py:

- every operation the sandbox lets us intercept (calls, attribute and item lookups, binary
  operators, comparisons, filters, tests, each loop iteration and each value written out)
  first calls `tick()`, which raises `LimitExceeded` once the render has used its CPU time;
- every single operation is itself bounded (sizes below), so the time between two ticks is
  bounded too: a sort of at most MAX_ITEMS items, a string of at most MAX_VALUE_CHARS…

`tick()` reads the cheap wall clock and asks the (slower, a system call) thread CPU clock only
once the wall clock says the budget could be spent: CPU time never runs ahead of wall time.
Time spent waiting for other threads is therefore never charged to the render."""

from __future__ import annotations

import threading
import time
from typing import Any

from jinja2.exceptions import SecurityError

RENDER_CPU_SECONDS = 0.1        # one message's render, every channel and field of it
MAX_VALUE_CHARS = 100_000       # any string an expression builds
MAX_ITEMS = 10_000              # any list an expression builds or a filter sorts, lists, joins…
MAX_OUTPUT_CHARS = 500_000      # one rendered field

_active = threading.local()


class LimitExceeded(SecurityError):
    """A render went over its CPU time or a value over its size: the template (or the
    variables it was given) would cost more than a send may."""


class _Budget:
    __slots__ = ("cpu_deadline", "next_wall_check", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.cpu_deadline = time.thread_time() + seconds
        self.next_wall_check = time.perf_counter() + seconds


class cpu_budget:  # noqa: N801 - used as a function: `with cpu_budget():`
    """Renders inside the block share `seconds` of this thread's CPU time. Nested blocks
    keep the outer budget (one send's render is one budget, however many fields it has).
    A class rather than @contextmanager: it wraps every render, and this costs less."""

    __slots__ = ("outer", "seconds")

    def __init__(self, seconds: float = RENDER_CPU_SECONDS) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        self.outer = getattr(_active, "budget", None) is not None
        if not self.outer:
            _active.budget = _Budget(self.seconds)

    def __exit__(self, *exc: object) -> None:
        if not self.outer:
            _active.budget = None


def tick() -> None:
    """Raise LimitExceeded once the active budget is spent; no-op outside a budget."""
    budget = getattr(_active, "budget", None)
    if budget is None:
        return
    now = time.perf_counter()
    if now < budget.next_wall_check:
        return
    cpu = time.thread_time()
    if cpu >= budget.cpu_deadline:
        raise LimitExceeded(f"rendering used more than {budget.seconds * 1000:.0f} ms of CPU time")
    budget.next_wall_check = now + (budget.cpu_deadline - cpu)


def text_size(value: Any, limit: int) -> int:
    """About how many characters `str(value)` has, counted without building it (a list of
    10,000 references to one 100,000-character string prints as a billion characters).
    Stops counting once past `limit`, so the walk itself is bounded."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:  # generators, Jinja's objects: their str() is a short repr
            total += 64
    return total


def check_text(value: Any, limit: int = MAX_VALUE_CHARS, what: str = "a value") -> None:
    if (len(value) if type(value) is str else text_size(value, limit)) > limit:
        raise LimitExceeded(f"{what} would be longer than {limit} characters")


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
