"""The HTTP server: uvicorn (httptools + uvloop) running the ASGI app. Chosen by measurement
(README.md, "Serving"): the only candidate that serves the Flask API from a thread pool
and the in-app streams from an event loop on one port. The bare-baseline benchmark runs its
endpoint through `make_server` too, so every ratio compares like with like."""

from __future__ import annotations

import signal

import uvicorn

from .logs import uvicorn_log_config

# Short keep-alive for idle API clients; streams are not idle (they get keep-alive comments).
KEEP_ALIVE_SECONDS = 30
GRACEFUL_SHUTDOWN_SECONDS = 10


def config(app, host: str, port: int, *, workers: int | None = None, factory: bool = False,
           log_level: str = "warning", json_logs: bool = False) -> uvicorn.Config:
    """`json_logs`: configure the process's logging (the `serve` command does; a test or a
    benchmark embedding the server keeps its own)."""
    return uvicorn.Config(
        app, host=host, port=port, workers=workers, factory=factory,
        loop="uvloop", http="httptools", lifespan="on",
        # Every line JSON (orchestrator.logs), in this process and each one uvicorn spawns; the
        # access line is written by the app (orchestrator.request_log), with the route template.
        access_log=False, log_config=uvicorn_log_config(log_level) if json_logs else None,
        log_level=log_level, server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        backlog=4096,
    )


class Server(uvicorn.Server):
    """uvicorn's server, closing the in-app streams as soon as shutdown starts: open streams
    would otherwise hold the graceful shutdown for its whole timeout."""

    def __init__(self, config: uvicorn.Config, asgi_app=None) -> None:
        super().__init__(config)
        self.asgi_app = asgi_app

    def handle_exit(self, sig, frame) -> None:  # noqa: ANN001 - runs on the loop (signal handler)
        hub = getattr(self.asgi_app, "hub", None)
        if hub is not None:
            hub.close_all()
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            # uvicorn re-raises the signals it caught once shut down, so the process would end
            # killed by SIGTERM (status 143) after a clean shutdown; a clean stop exits 0.
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list) and sig in captured:
                captured.remove(sig)


def make_server(app, host: str, port: int, **kwargs) -> Server:
    return Server(config(app, host, port, **kwargs), asgi_app=app)


def run_processes(app_path: str, host: str, port: int, workers: int, **kwargs) -> None:
    """`serve --workers N`: uvicorn's supervisor on one listening socket, N server processes
    each importing the app factory `app_path`. (`Server.run` alone would run one process.)
    SIGTERM: each process shuts down gracefully (requests in flight finish, streams close)."""
    from uvicorn.supervisors import Multiprocess

    cfg = config(app_path, host, port, workers=workers, factory=True, **kwargs)
    sock = cfg.bind_socket()
    try:
        Multiprocess(cfg, sockets=[sock]).run()
    finally:
        sock.close()
