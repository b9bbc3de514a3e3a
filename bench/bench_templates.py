"""What a template adds to the accept path, measured in one process, in the same run:

    .venv/bin/python bench/bench_templates.py [N]      (default N=2000 per kind)

`POST /v1/messages` through the Flask test client (SQLite, memory:// broker, no background
threads) with the same recipients and category, three kinds interleaved in rounds of 100:
  inline     — `content` {title, body} (the existing path);
  per_channel — `content` with `channels.sms.text` and `channels.email.subject/html`;
  template   — `template` {id, variables}, a template with four channel variants and a
               Korean translation, recipients with locale ko-KR (so the profile's locale
               is read: one more statement).
Prints wall and CPU time per request, SQL statements per request, and each kind's ratio to
`inline`. The template is compiled once (the process cache); each request renders it."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    from sqlalchemy import event

    from bench.common import in_process_app
    from tests.templates.test_templates_api import ORDER, VARS

    st, client, hdr = in_process_app(tempfile.mkdtemp(prefix="bench-tpl-"), "b.sqlite3")
    assert client.post("/v1/templates", headers=hdr, json=ORDER).status_code == 201
    users = 20
    for i in range(users):
        client.put(f"/v1/recipients/u-{i}", headers=hdr, json={
            "phone": "+447400123456", "email": f"u{i}@example.com", "timezone": "UTC", "locale": "ko-KR"})
    statements = {"n": 0}

    @event.listens_for(st.db.engine, "before_cursor_execute")
    def _count(*_args):  # noqa: ANN002
        statements["n"] += 1

    def body(kind: str, i: int) -> dict:
        base = {"recipient": {"user_id": f"u-{i % users}"}, "category": "transactional"}
        if kind == "template":
            return {**base, "template": {"id": "order_shipped", "variables": {**VARS, "order_id": f"A-{i}"}}}
        content = {"title": "Shipped", "body": f"Order A-{i} is on its way"}
        if kind == "per_channel":
            content["channels"] = {"sms": {"text": f"Order A-{i} shipped"},
                                   "email": {"subject": f"Order A-{i}", "html": f"<p>Order A-{i}</p>"}}
        return {**base, "content": content}

    kinds = ("inline", "per_channel", "template")
    totals = {k: [0.0, 0.0, 0] for k in kinds}   # wall, cpu, statements
    for kind in kinds:                           # warm-up: caches filled as in a running service
        for i in range(50):
            assert client.post("/v1/messages", headers=hdr, json=body(kind, i)).status_code == 202
    done = 0
    while done < n:
        for kind in kinds:
            before = statements["n"]
            w, c = time.perf_counter(), time.process_time()
            for i in range(done, done + 100):
                r = client.post("/v1/messages", headers=hdr, json=body(kind, i))
                assert r.status_code == 202, r.get_json()
            totals[kind][0] += time.perf_counter() - w
            totals[kind][1] += time.process_time() - c
            totals[kind][2] += statements["n"] - before
        done += 100
    base_wall = totals["inline"][0] / done
    print(f"{done} requests per kind, SQLite, Flask test client, one process")
    print(f"{'kind':<12} {'wall µs/req':>12} {'cpu µs/req':>11} {'stmts/req':>10} {'vs inline (wall)':>17}")
    for kind in kinds:
        wall, cpu, stmts = totals[kind]
        print(f"{kind:<12} {wall / done * 1e6:>12.0f} {cpu / done * 1e6:>11.0f} {stmts / done:>10.1f} "
              f"{(wall / done) / base_wall:>17.2f}")
    st.dispatcher.stop()
    st.db.dispose()


if __name__ == "__main__":
    main()
