"""Serves the drop-in in-app client kept in orchestrator/inapp/client/: the ES module
(`OrchestratorInbox` and the `<orchestrator-inbox>` web component), an example page and a
manifest. Static files, no authentication: they hold no secret; the page is given a user token.

Delivery, for a page on another origin as the README embeds it:
- `/client/orchestrator-inbox.<sha256-12hex>.js` is the versioned URL: its content never
  changes, so it is cached for a year (`immutable`); `/client/orchestrator-inbox.js` stays,
  cached five minutes. `/client/manifest.json` names the current versioned URL with its
  sha256, SRI integrity (`sha384-…`) and sizes raw and gzipped.
- Every asset carries a strong ETag (304 to If-None-Match) and is sent gzipped when the
  client accepts it and it is over 1 KB (`Vary: Accept-Encoding`); bodies, digests and gzip
  are computed once per process.
- Every asset answers CORS for the origins in INAPP_CORS_ORIGINS (`Vary: Origin`): a module
  script is always fetched in CORS mode, so without it the browser refuses the module.

The same file is the npm package's `main` (orchestrator/inapp/client/package.json)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from flask import Blueprint, Response, request

from ..app_state import state
from ..errors import ApiError, ErrorCode
from ..inapp import cors
from .declare import Media, declare
from .models import ClientManifest

bp = Blueprint("inapp_client", __name__)

MODULE = "orchestrator-inbox.js"
ASSETS = {
    MODULE: "text/javascript; charset=utf-8",
    "example.html": "text/html; charset=utf-8",
}
SHORT_CACHE = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"
MANIFEST_CACHE = "public, max-age=60"
HASH_CHARS = 12
GZIP_MIN_BYTES = 1024  # smaller bodies (the manifest) gain nothing from gzip: sent as they are


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str
    sha256: str  # hex

    @property
    def etag(self) -> str:
        return self.sha256[:32]

    @property
    def versioned_name(self) -> str:
        stem, ext = MODULE.rsplit(".", 1)
        return f"{stem}.{self.sha256[:HASH_CHARS]}.{ext}"


def _read(name: str) -> bytes:
    return resources.files("orchestrator.inapp").joinpath("client", name).read_bytes()


@cache
def asset(name: str) -> Asset:
    """The file, its gzip and digest: read and compressed once per process."""
    try:
        body = _read(name)
    except FileNotFoundError:  # a wheel built without the package data
        raise ApiError(404, ErrorCode.NOT_FOUND, "path: the in-app client files are not installed",
                       field="path") from None
    return Asset(body, gzip.compress(body, compresslevel=9, mtime=0), ASSETS.get(name, "application/json"),
                 hashlib.sha256(body).hexdigest())


@cache
def manifest() -> Asset:
    module = asset(MODULE)
    doc = {
        "name": "orchestrator-inbox",
        "url": f"/client/{module.versioned_name}",
        "unversioned_url": f"/client/{MODULE}",
        "sha256": module.sha256,
        "integrity": "sha384-" + base64.b64encode(hashlib.sha384(module.body).digest()).decode(),
        "size": len(module.body),
        "gzip_size": len(module.gzipped),
    }
    body = json.dumps(doc, indent=2).encode() + b"\n"
    return Asset(body, gzip.compress(body, mtime=0), "application/json", hashlib.sha256(body).hexdigest())


def _serve(item: Asset, cache_control: str) -> Response:
    """The asset, gzipped if accepted, or 304 when the client holds this very version."""
    zipped = len(item.body) >= GZIP_MIN_BYTES and request.accept_encodings.quality("gzip") > 0
    # Strong ETags differ per representation: the gzip bytes are not the raw bytes.
    etag = item.etag + ("-gz" if zipped else "")
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(item.gzipped if zipped else item.body, content_type=item.content_type)
        if zipped:
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.vary.add("Accept-Encoding")
    return response


@bp.after_request
def _cors(response: Response) -> Response:
    """Every client asset, errors and 304s included, answers the allowed origins."""
    response.vary.add("Origin")
    allowed = cors.allowed_origin(request.headers.get("Origin"), state().settings.inapp_cors_origins)
    if allowed is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed
    return response


@bp.get(f"/client/{MODULE}")
@declare("The drop-in in-app client (ES module with the orchestrator-inbox web component); cached "
         "5 minutes, prefer the versioned URL from /client/manifest.json",
         responses={200: Media("text/javascript", "the module"), 304: None}, errors=[404], tags=("in-app client",))
def module():
    return _serve(asset(MODULE), SHORT_CACHE)


@bp.get("/client/orchestrator-inbox.<version>.js")
@declare("The in-app client module at its versioned, immutable URL (content hash; see /client/manifest.json)",
         responses={200: Media("text/javascript", "the module"), 304: None}, errors=[404], tags=("in-app client",))
def versioned_module(version: str):
    current = asset(MODULE)
    if version != current.sha256[:HASH_CHARS]:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"version: not the current module; it is "
                       f"/client/{current.versioned_name} (see /client/manifest.json)", field="version")
    return _serve(current, IMMUTABLE)


@bp.get("/client/manifest.json")
@declare("The current versioned URL of the in-app client module, its sha256, SRI integrity and sizes",
         responses={200: ClientManifest, 304: None}, errors=[404], tags=("in-app client",))
def module_manifest():
    return _serve(manifest(), MANIFEST_CACHE)


@bp.get("/client/example.html")
@declare("An example page using the in-app client", responses={200: Media("text/html", "the page"), 304: None},
         errors=[404], tags=("in-app client",))
def example():
    return _serve(asset("example.html"), SHORT_CACHE)
