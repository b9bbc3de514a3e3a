"""Cost per message, measured in one process (run as a child of run_all.py):

    python bench/cost.py SPEC.json     spec: {"fake_url", "messages", "warmup", "tmp", "out"}

Builds the app with `orchestrator.app.create_app(settings)` (SQLite, memory:// broker, no
background threads), counts SQL statements (`before_cursor_execute`) and commits (`commit`)
on `state.db.engine`, and CPU time (`time.process_time()`, this process only: the Twilio
fake runs in its own process) for two stages:
  accept  — `POST /v1/messages` (otp) through the Flask test client, N times;
  deliver — `state.dispatcher.deliver(attempt_id)` for every attempt those POSTs made due
            (one SMS send to the fake each).
The attempts to deliver are the ids the accept path's unit of work announces (recorded by
wrapping `state.db.announcer`). "POST -> provider call" counts the accept stage plus what the
delivery ran before the provider's `send` was called (the claim). A warm-up batch (posted
and delivered first, not counted) fills caches the way a running service has them."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PHONE, in_process_app  # noqa: E402


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    from sqlalchemy import event

    st, client, hdr = in_process_app(
        spec["tmp"], "cost.sqlite3", PUBLIC_BASE_URL="http://127.0.0.1:9",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=spec["fake_url"])
    users = 20
    for i in range(users):
        r = client.put(f"/v1/recipients/u-{i}", headers=hdr,
                       json={"phone": PHONE, "email": f"u{i}@example.com", "timezone": "UTC"})
        assert r.status_code < 300, r.get_data(as_text=True)

    counting = {"on": False, "stmts": 0, "commits": 0, "selects": 0, "writes": 0}

    @event.listens_for(st.db.engine, "before_cursor_execute")
    def _stmt(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
        if counting["on"]:
            counting["stmts"] += 1
            verb = statement.lstrip().split(None, 1)[0].upper()
            counting["selects" if verb == "SELECT" else "writes"] += 1

    @event.listens_for(st.db.engine, "commit")
    def _commit(conn):  # noqa: ANN001, ARG001
        if counting["on"]:
            counting["commits"] += 1

    # The attempts the accept path made due are the ones its unit of work announces after
    # commit (storage.db.announce -> Database.announcer): record them there.
    published: list[str] = []
    original_announcer = st.db.announcer

    def recording_announcer(attempt_ids: list[str]) -> None:
        published.extend(attempt_ids)
        if original_announcer is not None:
            original_announcer(attempt_ids)

    st.db.announcer = recording_announcer

    # Statements and commits run before the provider is called: "POST -> provider call".
    at_send = {"stmts": 0, "commits": 0, "sends": 0, "start_stmts": 0, "start_commits": 0}
    for provider in st.providers.all():
        def send(delivery, _original=provider.send):
            if counting["on"]:
                at_send["stmts"] += counting["stmts"] - at_send["start_stmts"]
                at_send["commits"] += counting["commits"] - at_send["start_commits"]
                at_send["sends"] += 1
            return _original(delivery)
        provider.send = send

    def due_ids() -> list[str]:
        ids = list(published)
        published.clear()
        return ids

    def stage(fn, items) -> dict:
        for k in ("stmts", "commits", "selects", "writes"):
            counting[k] = 0
        counting["on"] = True
        c0, w0 = time.process_time(), time.perf_counter()
        outcomes: dict[str, int] = {}
        for item in items:
            out = str(fn(item))
            outcomes[out] = outcomes.get(out, 0) + 1
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        counting["on"] = False
        n = max(len(items), 1)
        return {"n": len(items), "stmts": counting["stmts"] / n, "commits": counting["commits"] / n,
                "selects": counting["selects"] / n, "writes": counting["writes"] / n,
                "cpu_ms": cpu / n * 1e3, "wall_ms": wall / n * 1e3, "outcomes": outcomes}

    def post(i: int) -> int:
        return client.post("/v1/messages", headers=hdr, json={
            "recipient": {"user_id": f"u-{i % users}"}, "category": "otp",
            "content": {"body": f"Your code is {i:06d}"}}).status_code

    def deliver(attempt_id: str) -> str:
        at_send["start_stmts"], at_send["start_commits"] = counting["stmts"], counting["commits"]
        return st.dispatcher.deliver(attempt_id)

    stage(post, range(spec["warmup"]))
    stage(deliver, due_ids())
    n = spec["messages"]
    accept = stage(post, range(10_000, 10_000 + n))
    ids = due_ids()
    for k in at_send:
        at_send[k] = 0
    deliver_stats = stage(deliver, ids)
    sends = max(at_send["sends"], 1)
    deliver_stats["to_provider_stmts"] = at_send["stmts"] / sends
    deliver_stats["to_provider_commits"] = at_send["commits"] / sends
    # per message = per accepted POST (an OTP has one SMS attempt; more attempts would count)
    scale = deliver_stats["n"] / max(accept["n"], 1)
    total = {k: accept[k] + deliver_stats[k] * scale for k in ("stmts", "commits", "cpu_ms")}
    total["to_provider_stmts"] = accept["stmts"] + deliver_stats["to_provider_stmts"] * scale
    total["to_provider_commits"] = accept["commits"] + deliver_stats["to_provider_commits"] * scale
    Path(spec["out"]).write_text(json.dumps({"accept": accept, "deliver": deliver_stats, "per_message": total,
                                             "attempts_per_message": scale}))


if __name__ == "__main__":
    main()
