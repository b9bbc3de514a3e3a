"""What the service logs during a block, as the JSON lines the process would write."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from orchestrator.logs import JsonFormatter


@dataclass
class Captured:
    """Filled when the block ends: the raw text and its lines parsed."""

    text: str = ""
    lines: list[dict] = field(default_factory=list)


@contextmanager
def captured_logs(levels: dict[str, int] | None = None) -> Iterator[Captured]:
    """Attaches a JSON handler to each named logger ("" is the root) at its level for the
    block, then restores them. By default: `orchestrator` at INFO."""
    levels = {"orchestrator": logging.INFO} if levels is None else levels
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    watched = [(logging.getLogger(name or None), level) for name, level in levels.items()]
    old_levels = [lg.level for lg, _ in watched]
    for lg, level in watched:
        lg.addHandler(handler)
        lg.setLevel(level)
    captured = Captured()
    try:
        yield captured
    finally:
        for (lg, _), old in zip(watched, old_levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(old)
        captured.text = stream.getvalue()
        captured.lines = [json.loads(line) for line in captured.text.splitlines()]
