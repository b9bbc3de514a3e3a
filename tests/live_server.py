"""Runs the real ASGI app (Flask API + event-loop streams) under uvicorn in a thread, on a
free port, the way `orchestrator serve` does. For tests that need a real HTTP server:
streams, the browser, cross-process fan-out."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

from orchestrator.app_state import EXTENSION_KEY
from orchestrator.asgi import OrchestratorASGI
from orchestrator.server import make_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(flask_app, *, threads: int = 8):
    """Yields (base_url, asgi_app) while the server runs; stops it (streams included) after."""
    asgi = OrchestratorASGI(flask_app, threads=threads)
    port = free_port()
    server = make_server(asgi, "127.0.0.1", port)
    server.install_signal_handlers = lambda: None  # not the main thread
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", asgi
    finally:
        if server.servers:
            loop = server.servers[0].get_loop() if hasattr(server.servers[0], "get_loop") else None
            if loop is not None:
                loop.call_soon_threadsafe(asgi.hub.close_all)
        server.should_exit = True
        thread.join(15)


@contextmanager
def running(make_app, *, worker: bool = True, threads: int = 8, **env):
    """A test app served for real, as `orchestrator serve` runs it: on real time, with the
    embedded workers and sweeper when `worker`. Yields (app, base_url, asgi app)."""
    app = make_app(EMBEDDED_WORKER=str(worker).lower(), SWEEP_INTERVAL_SECONDS="0.5", **env)
    st = app.extensions[EXTENSION_KEY]
    st.clock = lambda: datetime.now(UTC)  # background threads and clients run on real time
    if worker:
        st.dispatcher.start_background()
    with serving(app, threads=threads) as (base, asgi):
        yield app, base, asgi
