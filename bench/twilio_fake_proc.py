"""The Twilio fake (tests/fakes/twilio_fake.py) in its own process, stamping each send.

    python bench/twilio_fake_proc.py --info FILE --arrivals FILE [--max-seconds 900] [--latency-ms N]

Writes {"base_url", "pid"} to --info once listening; appends one JSON line per message it
creates to --arrivals: {"t": time.monotonic() at arrival (CLOCK_MONOTONIC, comparable
across processes on this machine), "sid", "body", "to", "from", "cb": StatusCallback}.
--latency-ms: each send is answered N ms after it arrived (a provider's own response time;
the arrival is stamped first). Stops on SIGTERM or after --max-seconds."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import ACCOUNT_SID, AUTH_TOKEN  # noqa: E402
from tests.fakes.twilio_fake import TwilioFake  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--info", type=Path, required=True)
    ap.add_argument("--arrivals", type=Path, required=True)
    ap.add_argument("--max-seconds", type=float, default=900)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    a = ap.parse_args()
    out = open(a.arrivals, "a", buffering=1)  # noqa: SIM115 - line buffered, lives with the process
    lock = threading.Lock()

    def stamp(message: dict) -> None:
        line = json.dumps({"t": time.monotonic(), "sid": message["sid"], "body": message["body"],
                           "to": message["to"], "from": message["from"], "cb": message["_status_callback"]})
        with lock:
            out.write(line + "\n")
        if a.latency_ms:
            time.sleep(a.latency_ms / 1000)  # on this request's own handler thread

    fake = TwilioFake(ACCOUNT_SID, AUTH_TOKEN, on_message=stamp).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tmp = a.info.with_suffix(".tmp")
    tmp.write_text(json.dumps({"base_url": fake.base_url, "pid": os.getpid()}))
    tmp.rename(a.info)
    stop.wait(a.max_seconds)
    fake.close()
    out.close()


if __name__ == "__main__":
    main()
