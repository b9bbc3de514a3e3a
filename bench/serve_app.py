"""Server launcher: every server the benchmark measures is started by this module, in its
own process, on `orchestrator.server.make_server` — the server `orchestrator serve` runs —
with the same thread count.

    python bench/serve_app.py --kind real    --port P --threads N --info FILE   (env: Settings)
    python bench/serve_app.py --kind bare    --port P --threads N --db URL
    python bench/serve_app.py --kind trivial --port P

real    : `create_asgi(Settings.from_env(os.environ))`, the service as `serve` builds it
          (embedded worker + sweeper when EMBEDDED_WORKER is true); writes an admin API key
          and its pid to --info.
bare    : the baseline. Flask + SQLAlchemy, `POST /v1/messages` parses the JSON body and does
          one INSERT (own transaction) into a one-table database made by the service's own
          `make_engine` (same SQLite pragmas / pool, or the same PostgreSQL schema); run on a2wsgi's
          thread pool like the real app. `POST /webhooks/twilio` does the same with a form.
trivial : a constant answer straight from the event loop (no Flask, no thread): shows how
          fast the load generator can go on this box.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class LifespanASGI:
    """The bare WSGI app behind a2wsgi, answering lifespan as OrchestratorASGI does."""

    def __init__(self, wsgi) -> None:
        self.wsgi = wsgi

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self.wsgi(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return


def bare_app(db_url: str, threads: int):
    from a2wsgi import WSGIMiddleware
    from flask import Flask, jsonify, request
    from sqlalchemy import Column, Integer, MetaData, Table, Text, insert

    from orchestrator.storage.db import make_engine

    engine = make_engine(db_url)
    meta = MetaData()
    table = Table("bare_messages", meta, Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("body", Text, nullable=False))
    meta.create_all(engine)
    app = Flask("bare")

    @app.post("/v1/messages")
    def send():
        data = json.loads(request.get_data())  # parsed, as the real endpoint parses it
        with engine.begin() as conn:
            new_id = conn.execute(insert(table).values(body=json.dumps(data))).inserted_primary_key[0]
        return jsonify(id=new_id, status="accepted"), 202

    @app.post("/webhooks/twilio")
    def receipt():
        form = request.form.to_dict()
        with engine.begin() as conn:
            conn.execute(insert(table).values(body=json.dumps(form)))
        return "", 204

    @app.get("/healthz")
    def health():
        return jsonify(ok=True)

    return LifespanASGI(WSGIMiddleware(app, workers=threads))


async def trivial_app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"status":"accepted"}'
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def real_app(threads: int, info: Path | None):
    from orchestrator.access.auth import create_api_key
    from orchestrator.asgi import create_asgi
    from orchestrator.config import Settings

    env = dict(os.environ, WEB_THREADS=str(threads))
    app = create_asgi(Settings.from_env(env), start_background=True)
    if info is not None:
        with app.state.db.session() as session:
            _, key = create_api_key(session, "bench", ["admin"])
        tmp = info.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "pid": os.getpid()}))
        tmp.rename(info)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["real", "bare", "trivial"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--db")
    ap.add_argument("--info", type=Path)
    a = ap.parse_args()
    raise_nofile()
    from orchestrator.server import make_server

    if a.kind == "real":
        app = real_app(a.threads, a.info)
    elif a.kind == "bare":
        app = bare_app(a.db, a.threads)
    else:
        app = trivial_app
    make_server(app, "127.0.0.1", a.port, log_level="warning").run()


if __name__ == "__main__":
    main()
