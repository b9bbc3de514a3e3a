"""The one retry-delay function: exponential, capped, jittered; with the arguments deliver.py
(attempts, cap 300 s) and callbacks.py (status callbacks, cap 600 s) pass."""

from __future__ import annotations

import random

import pytest

from orchestrator.dispatch import callbacks, deliver
from orchestrator.dispatch.backoff import backoff_seconds


def lowest(a: float, b: float) -> float:
    return a


def highest(a: float, b: float) -> float:
    return b


@pytest.mark.parametrize(("tries", "cap", "low", "high"), [
    (0, 300, 0.5, 1.5),
    (1, 300, 1.0, 3.0),
    (3, 300, 4.0, 12.0),
    (8, 300, 128.0, 384.0),
    (9, 300, 150.0, 450.0),        # 512 s capped at 300
    (12, 300, 150.0, 450.0),
    (10_000, 300, 150.0, 450.0),   # the exponent stops at 12: no huge integers
    (9, 600, 256.0, 768.0),
    (10, 600, 300.0, 900.0),       # 1024 s capped at 600
    (50, 600, 300.0, 900.0),
])
def test_bounds(tries, cap, low, high):
    assert backoff_seconds(tries, cap=cap, uniform=lowest) == low
    assert backoff_seconds(tries, cap=cap, uniform=highest) == high
    rng = random.Random(tries)
    for _ in range(200):
        assert low <= backoff_seconds(tries, cap=cap, uniform=rng.uniform) <= high


@pytest.mark.parametrize(("kwargs", "low", "high"), [
    ({"jitter": 0.0}, 16.0, 16.0),
    ({"jitter": 0.25}, 12.0, 20.0),
    ({"base": 3.0}, 40.5, 121.5),
    ({"max_exponent": 2}, 2.0, 6.0),
])
def test_parameters(kwargs, low, high):
    assert backoff_seconds(4, cap=1000, uniform=lowest, **kwargs) == low
    assert backoff_seconds(4, cap=1000, uniform=highest, **kwargs) == high


def test_default_source_is_random_within_bounds():
    values = {backoff_seconds(5, cap=300) for _ in range(50)}
    assert all(16.0 <= v <= 48.0 for v in values)
    assert len(values) > 1  # jittered, not a fixed delay


def test_callers_caps():
    assert deliver.MAX_BACKOFF_SECONDS == 300
    assert callbacks.MAX_BACKOFF_SECONDS == 600
