"""Serves the drop-in in-app client kept in orchestrator/inapp/client/: the ES module
(`OrchestratorInbox` and the `<orchestrator-inbox>` web component) and an example page.
Static files, no authentication: they hold no secret; the page is given a user token."""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response

from ..api.declare import Media, declare
from ..errors import ApiError, ErrorCode

bp = Blueprint("inapp_client", __name__)

ASSETS = {
    "orchestrator-inbox.js": "text/javascript; charset=utf-8",
    "example.html": "text/html; charset=utf-8",
}


def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath("client", name).read_bytes()


def _serve(name: str) -> Response:
    try:
        body = _read(name)
    except FileNotFoundError:  # a wheel built without the package data
        raise ApiError(404, ErrorCode.NOT_FOUND, "path: the in-app client files are not installed",
                       field="path") from None
    response = Response(body, content_type=ASSETS[name])
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/client/orchestrator-inbox.js")
@declare("The drop-in in-app client (ES module with the orchestrator-inbox web component)",
         responses={200: Media("text/javascript", "the module")}, errors=[404], tags=("in-app client",))
def module():
    return _serve("orchestrator-inbox.js")


@bp.get("/client/example.html")
@declare("An example page using the in-app client", responses={200: Media("text/html", "the page")},
         errors=[404], tags=("in-app client",))
def example():
    return _serve("example.html")
