"""The durable retry delay: exponential in the number of tries, capped, with jitter.

Used for attempts (deliver.py) and status callbacks (callbacks.py), each with its own cap.
`base ** min(tries, max_exponent)` seconds, at most `cap`, times a random factor in
[1 - jitter, 1 + jitter] so that retries of a burst spread out instead of arriving together.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_seconds(tries: int, *, cap: float, base: float = 2.0, max_exponent: int = 12, jitter: float = 0.5,
                    uniform: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before try number `tries + 1`. `uniform` is the random source
    (random.uniform; a test passes its own to reach the bounds)."""
    return min(cap, base ** min(max(tries, 0), max_exponent)) * uniform(1 - jitter, 1 + jitter)

