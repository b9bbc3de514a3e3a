"""A small Server-Sent Events reader for tests: reads one stream in a thread and queues
its events, so a test can wait for "the next `unread` event" with a generous timeout."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass

import httpx


@dataclass
class Event:
    kind: str
    data: str
    id: str | None

    def json(self):
        return json.loads(self.data)


class SSE:
    def __init__(self, url: str, *, params: dict | None = None, headers: dict | None = None) -> None:
        self.url, self.params, self.headers = url, params or {}, headers or {}
        self.events: queue.Queue[Event] = queue.Queue()
        self.status: int | None = None
        self.body: bytes = b""
        self.opened = threading.Event()   # the status line arrived
        self.closed = threading.Event()   # the server ended the stream (or it failed)
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._socket = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.opened.wait(10):
            raise AssertionError("the stream did not answer")

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self.url, params=self.params, headers=self.headers) as r:
                self.status = r.status_code
                stream = r.extensions.get("network_stream")
                self._socket = stream.get_extra_info("socket") if stream is not None else None
                if r.status_code != 200:
                    self.body = r.read()
                    self.opened.set()
                    return
                self.opened.set()
                kind, data, event_id = "message", [], None
                for line in r.iter_lines():
                    if line == "":
                        if data:
                            self.events.put(Event(kind, "\n".join(data), event_id))
                        kind, data, event_id = "message", [], None
                    elif line.startswith(":"):
                        continue
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
        except Exception:  # noqa: BLE001 - closed from the test side, or the server went away
            pass
        finally:
            self.opened.set()
            self.closed.set()

    def next(self, kind: str, timeout: float = 5.0) -> Event:
        """The next event of this kind (others are skipped); fails after `timeout`."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no '{kind}' event within {timeout} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.kind == kind:
                return event

    def close(self) -> None:
        """Hangs up, as a browser tab closing would (the reader is unblocked too)."""
        import socket

        if self._socket is not None and not self.closed.is_set():
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._client.close()
        self._thread.join(5)
