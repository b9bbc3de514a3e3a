"""Sandbox mode: a channel with no credentials configured records its sends here instead of
the network, so the embedded default works out of the box. The result says `sandboxed`,
so nothing pretends a real delivery happened."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime

from .base import AttemptStatus, Channel, Delivery, SendResult


class SandboxProvider:
    def __init__(self, channel: Channel, sink_path: str | None = None) -> None:
        self.channel = Channel(channel)
        self.name = f"sandbox-{self.channel.value}"
        self.sink_path = sink_path
        self._lock = threading.Lock()
        self.sent: list[Delivery] = []   # in-memory record, bounded below
        self._max_kept = 1000

    def send(self, delivery: Delivery) -> SendResult:
        provider_id = f"sbx-{delivery.attempt_id}"
        with self._lock:
            self.sent.append(delivery)
            del self.sent[: -self._max_kept]
            if self.sink_path:
                os.makedirs(os.path.dirname(self.sink_path) or ".", exist_ok=True)
                # The sink holds ids and sizes only: addresses and bodies stay out of files.
                line = {
                    "at": datetime.now(UTC).isoformat(),
                    "provider": self.name,
                    "message_id": delivery.message_id,
                    "attempt_id": delivery.attempt_id,
                    "body_chars": len(delivery.body),
                }
                with open(self.sink_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(line) + "\n")
        return SendResult(
            provider=self.name,
            provider_message_id=provider_id,
            status=AttemptStatus.SENT,
            sandboxed=True,
        )
