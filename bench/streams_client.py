"""Holds many in-app SSE streams open from one light process (asyncio, raw sockets).

    python bench/streams_client.py SPEC.json
    spec: {"port", "tokens": [[user_id, token], ...], "per_token", "concurrency",
           "ready": FILE, "events": FILE, "max_seconds"}

Opens per_token streams for every token (at most `concurrency` opening at once), then writes
{"opened", "failed", "statuses", "open_seconds"} to `ready`. Every `event: message` that
arrives is appended to `events` as "<time.monotonic()>\t<message_id>\t<user_id>". Runs until
SIGTERM or max_seconds, then closes every socket."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.httpraw import Conn  # noqa: E402


async def stream(port: int, user: str, token: str, opened: asyncio.Future, out, stop: asyncio.Event) -> None:
    conn = Conn("127.0.0.1", port)
    try:
        await conn.open()
        conn.send_head("GET", f"/v1/inbox/stream?token={token}", {"Accept": "text/event-stream"})
        status, headers = await conn.read_head()
        opened.set_result(status)
        if status != 200:
            return
        buf = ""
        while not stop.is_set():
            chunk = await conn.read_chunk() if headers.get("transfer-encoding") == "chunked" \
                else await conn.reader.read(65536)
            if not chunk:
                return
            buf += chunk.decode()
            while "\n\n" in buf:
                event, buf = buf.split("\n\n", 1)
                lines = event.split("\n")
                if "event: message" in lines:
                    for ln in lines:
                        if ln.startswith("data: "):
                            mid = json.loads(ln[6:]).get("message_id")
                            out.write(f"{time.monotonic()}\t{mid}\t{user}\n")
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        if not opened.done():
            opened.set_result(type(exc).__name__)
    finally:
        conn.close()


async def run(spec: dict) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    out = open(spec["events"], "a", buffering=1)  # noqa: SIM115
    gate = asyncio.Semaphore(spec.get("concurrency", 50))
    tasks, results = [], []
    t0 = time.monotonic()

    async def open_one(user: str, token: str) -> None:
        async with gate:
            fut = loop.create_future()
            tasks.append(asyncio.ensure_future(stream(spec["port"], user, token, fut, out, stop)))
            try:
                results.append(await asyncio.wait_for(fut, 60))
            except TimeoutError:
                results.append("open timeout")

    await asyncio.gather(*(open_one(u, t) for u, t in spec["tokens"] for _ in range(spec["per_token"])))
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r)] = statuses.get(str(r), 0) + 1
    ready = {"opened": statuses.get("200", 0), "failed": len(results) - statuses.get("200", 0),
             "statuses": statuses, "open_seconds": time.monotonic() - t0}
    Path(spec["ready"]).write_text(json.dumps(ready))
    try:
        await asyncio.wait_for(stop.wait(), spec.get("max_seconds", 300))
    except TimeoutError:
        pass
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.close()


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(json.loads(Path(sys.argv[1]).read_text())))


if __name__ == "__main__":
    main()
