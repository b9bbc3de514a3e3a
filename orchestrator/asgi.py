"""The one ASGI application `orchestrator serve` runs: in-app streams are served natively on
the event loop (orchestrator.inapp.stream); every other route is the Flask app, run on a
bounded thread pool through a2wsgi. Streams therefore never hold a thread, and no number of
them can starve the API (see README, "Serving").

Lifespan: startup attaches the in-app bus to the loop and starts the presence refresher;
shutdown closes the open streams (clients reconnect elsewhere) and stops the background
worker and sweeper."""

from __future__ import annotations

import asyncio
import logging

from a2wsgi import WSGIMiddleware

from . import metrics, request_log
from .app import create_app
from .app_state import EXTENSION_KEY
from .config import Settings
from .inapp.stream import PATH as STREAM_PATH
from .inapp.stream import StreamHub
from .logs import log_context

log = logging.getLogger("orchestrator.asgi")


def _chunked_bodies(wsgi_app):
    """Lets Werkzeug read a `Transfer-Encoding: chunked` body. uvicorn decodes the chunks and
    a2wsgi ends the stream with the body, but a WSGI body without Content-Length is read as
    empty unless the server says it terminates the stream. Nothing is read here: a body is
    read when a route asks for it (after its credentials are checked), under the route's
    size cap (app.CappedRequest turns a body cut at the cap into 413)."""

    def app(wsgi_vars, start_response):  # the WSGI environ (not named so: it is no process environment)
        if not wsgi_vars.get("CONTENT_LENGTH") and "chunked" in wsgi_vars.get("HTTP_TRANSFER_ENCODING", "").lower():
            wsgi_vars["wsgi.input_terminated"] = True
        return wsgi_app(wsgi_vars, start_response)

    return app


class OrchestratorASGI:
    def __init__(self, flask_app, *, threads: int) -> None:
        self.flask_app = flask_app
        self.state = flask_app.extensions[EXTENSION_KEY]
        self.hub = StreamHub(self.state)
        self.state.streams = self.hub
        self.wsgi = WSGIMiddleware(_chunked_bodies(flask_app), workers=threads)

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            scope, request_id = request_log.asgi_request_id(scope)
            send = request_log.echoing_send(send, request_id)
            if scope["path"] == STREAM_PATH:
                with log_context(request_id=request_id):
                    await self.hub(scope, receive, send)
            else:
                await self.wsgi(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.hub.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.hub.close_all()
                await asyncio.to_thread(self.state.dispatcher.stop)
                self.state.bus.close()
                self.state.key_sync.close()
                metrics.process_exiting()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_asgi(settings: Settings | None = None, *, start_background: bool = True,
                migrate: bool = True) -> OrchestratorASGI:
    settings = settings or Settings.from_env()
    app = create_app(settings, start_background=start_background, migrate=migrate)
    return OrchestratorASGI(app, threads=settings.web_threads)


def from_env() -> OrchestratorASGI:
    """Factory for `serve --workers N` (uvicorn imports it in each server process). The
    parent has migrated already; the processes must not race to do it again."""
    import os

    return create_asgi(migrate=os.environ.get("ORCHESTRATOR_MIGRATED") != "1")
