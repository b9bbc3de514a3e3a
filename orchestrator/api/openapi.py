"""/openapi.json, /docs and the route reference of docs/API.md, all built from Flask's url_map
and the declaration beside each route (orchestrator/api/declare.py: how to declare a new
route). A route without a declaration fails tests/api/test_openapi.py, so the document
cannot drift from the code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..errors import ErrorCode
from ..inapp.stream import PATH as STREAM_PATH
from ..schemas import ErrorResponse
from .declare import Auth, Declaration, Media, declaration_of, declare, scopes_of
from .models import InboxQuery

bp = Blueprint("openapi", __name__)

TITLE = "Channel orchestrator"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Blueprints that are not API: pages for people in a browser (sign-in, forms with CSRF tokens).
NOT_API_BLUEPRINTS = {"review": "compliance review pages (HTML, session cookie): see README"}

# The in-app stream is served natively on the event loop (orchestrator/inapp/stream.py), not
# by Flask, so it has no url_map rule: its declaration lives here.
EXTERNAL_ROUTES: tuple[tuple[str, str, Declaration], ...] = (
    (STREAM_PATH, "get", Declaration(
        summary="Server-Sent Events stream of the user's inbox (user token; also ?token=)",
        description="Events `item`, `unread`, `revoked`; reconnect with `Last-Event-ID` to resume.",
        query=InboxQuery, responses={200: Media("text/event-stream", "the stream")}, errors=(422, 503),
        auth=Auth.USER_TOKEN, tags=("in-app client",))),
)

ERROR_TEXT = {
    400: "Malformed JSON or an empty body",
    401: "Missing, unknown or revoked credential",
    403: "The key lacks the scope, or a signature does not verify",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body larger than MAX_BODY_BYTES",
    415: "Content-Type is not application/json",
    422: "Validation failed; `field` names the culprit",
    429: "Rate limit or stream limit reached; see Retry-After",
    503: "A dependency is unavailable; try again",
}
RATE_HEADERS = {
    "RateLimit-Limit": "requests allowed per window for this key",
    "RateLimit-Remaining": "requests left in the current window",
    "RateLimit-Reset": "seconds until the window resets",
}
TAG_ORDER = ("messages", "recipients", "in-app tokens", "in-app client", "keys", "compliance", "provider webhooks",
             "operations")
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass(frozen=True)
class Operation:
    path: str  # OpenAPI form: /v1/messages/{message_id}
    method: str  # lower case
    endpoint: str
    declaration: Declaration
    scopes: tuple[str, ...] | None
    path_params: tuple[str, ...]

    @property
    def auth(self) -> Auth:
        if self.declaration.auth is not None:
            return self.declaration.auth
        return Auth.API_KEY if self.scopes is not None else Auth.NONE

    @property
    def tag(self) -> str:
        return (self.declaration.tags or (self.endpoint.split(".", 1)[0],))[0]

    def error_statuses(self) -> list[int]:
        d = self.declaration
        codes = set(d.errors)
        if self.auth == Auth.API_KEY:
            codes |= {401, 403, 429}
        elif self.auth in (Auth.USER_TOKEN, Auth.METRICS_TOKEN):
            codes.add(401)
        if d.body is not None and d.body_media == "application/json" and self.auth != Auth.SIGNATURE:
            codes |= {400, 413, 415, 422}  # parse_body's guards (webhooks read their raw bodies: own list)
        if self.path_params or d.query is not None:
            codes.add(422)  # NUL in a path segment or query value (errors.reject_nul_in_url)
        return sorted(codes)


class UndeclaredRoutes(Exception):
    pass


def operations(app: Flask, *, strict: bool = True) -> list[Operation]:
    """Every API operation, in path order. `strict`: an undeclared route raises."""
    ops, missing = [], []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.split(".", 1)[0] in NOT_API_BLUEPRINTS:
            continue
        view = app.view_functions[rule.endpoint]
        decl = declaration_of(view)
        methods = sorted((rule.methods or set()) - IGNORED_METHODS)
        if decl is None:
            missing += [f"{m} {rule.rule} ({rule.endpoint})" for m in methods]
            continue
        if decl.hidden:
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        for method in methods:
            ops.append(Operation(path, method.lower(), rule.endpoint, decl, scopes_of(view),
                                 tuple(_PARAM.findall(rule.rule))))
    for path, method, decl in EXTERNAL_ROUTES:
        ops.append(Operation(path, method, f"inapp.{method}_stream", decl, None, ()))
    if missing and strict:
        raise UndeclaredRoutes("routes without @declare: " + "; ".join(missing))
    return sorted(ops, key=lambda o: (o.path, o.method))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _models(ops: list[Operation]) -> list[tuple[type[BaseModel], str]]:
    found: dict[tuple[type[BaseModel], str], None] = {(ErrorResponse, "serialization"): None}
    for op in ops:
        d = op.declaration
        if d.body is not None:
            found[(d.body, "validation")] = None
        for spec in d.responses.values():
            if isinstance(spec, type) and issubclass(spec, BaseModel):
                found[(spec, "serialization")] = None
    return list(found)


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def _operation(op: Operation, refs: dict) -> dict[str, Any]:
    d = op.declaration
    out: dict[str, Any] = {"operationId": op.endpoint.replace(".", "_") + "_" + op.method,
                           "summary": d.summary, "tags": [op.tag]}
    description = d.description
    if op.auth == Auth.API_KEY:
        scopes = list(op.scopes or ())
        out["security"] = [{"apiKey": scopes}]
        need = " or ".join(f"`{s}`" for s in scopes)
        description = (f"Scope: {need} (or `admin`).\n\n" + description).strip()
    elif op.auth == Auth.USER_TOKEN:
        out["security"] = [{"userToken": []}]
    elif op.auth == Auth.METRICS_TOKEN:
        out["security"] = [{}, {"metricsToken": []}]
    if description:
        out["description"] = description
    params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in op.path_params]
    params += [{"name": h, "in": "header", "required": False, "description": text, "schema": {"type": "string"}}
               for h, text in d.headers.items()]
    if d.query is not None:
        params += _query_params(d.query)
    if params:
        out["parameters"] = params
    if d.body is not None:
        body_schema = refs[(d.body, "validation")]
        media: dict[str, Any] = {"schema": body_schema}
        if d.body_example is not None:
            media["example"] = d.body_example
        out["requestBody"] = {"required": d.body_required, "content": {d.body_media: media}}
    responses: dict[str, Any] = {}
    rate_headers = {n: {"description": t, "schema": {"type": "integer"}} for n, t in RATE_HEADERS.items()}
    for status, spec in sorted(d.responses.items()):
        entry: dict[str, Any] = {"description": _status_text(status, spec)}
        if isinstance(spec, Media):
            kind = "object" if spec.media_type.endswith("json") else "string"
            entry["content"] = {spec.media_type: {"schema": {"type": kind}}}
        elif spec is not None:
            entry.update(_json(refs[(spec, "serialization")]))
        if op.auth == Auth.API_KEY:
            entry["headers"] = rate_headers
        responses[str(status)] = entry
    for status in op.error_statuses():
        entry = {"description": ERROR_TEXT.get(status, "Error"), **_json(refs[(ErrorResponse, "serialization")])}
        if status == 429:
            entry["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
        responses[str(status)] = entry
    out["responses"] = responses
    return out


def _status_text(status: int, spec: Any) -> str:
    if isinstance(spec, Media):
        return spec.description
    if isinstance(spec, type):
        return spec.__doc__.strip().splitlines()[0] if spec.__doc__ and spec is not BaseModel else spec.__name__
    return {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}.get(status, "OK")


def build_spec(app: Flask | None = None) -> dict[str, Any]:
    app = app or current_app
    ops = operations(app, strict=False)
    keys = _models(ops)
    refs_by_key, defs = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs_by_key)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": "1",
                 "description": "Generated from the route declarations (orchestrator/api/declare.py). "
                                "Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`; codes: "
                                + ", ".join(f"`{c.value}`" for c in ErrorCode)},
        "tags": [{"name": t} for t in TAG_ORDER if any(op.tag == t for op in ops)]
                + [{"name": t} for t in sorted({op.tag for op in ops} - set(TAG_ORDER))],
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}), "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "API key (`orchestrator keys create`); scopes are listed per operation"},
            "userToken": {"type": "http", "scheme": "bearer",
                          "description": "per-user in-app token (POST /v1/recipients/{user_id}/inapp-token); "
                                         "also accepted as ?token="},
            "metricsToken": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN, when set"}}},
    }


@bp.get("/openapi.json")
@declare("This document (OpenAPI 3.1), generated from the route declarations", responses={200: Media(
    "application/json", "the OpenAPI document")}, tags=("operations",))
def openapi():
    return jsonify(build_spec())


# -- /docs -----------------------------------------------------------------------------------
def _swagger_dir():
    """Swagger UI 5's files as the swagger-ui-py package ships them (only its static files are
    used): served from this process, so the page needs no network at run time."""
    return resources.files("swagger_ui").joinpath("static")


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, tryItOutEnabled: false, supportedSubmitMethods: []});
"""
DOCS_ASSETS = {"swagger-ui.css": "text/css; charset=utf-8",
               "swagger-ui-bundle.js": "text/javascript; charset=utf-8"}


@bp.get("/docs")
@declare("API reference for people (Swagger UI over /openapi.json; no network needed)",
         responses={200: Media("text/html", "the page")}, tags=("operations",))
def docs():
    return Response(_DOCS_PAGE.format(title=TITLE), content_type="text/html; charset=utf-8")


@bp.get("/docs/<asset>")
@declare("Swagger UI's script and style sheet, served locally", hidden=True)
def docs_asset(asset: str):
    from ..errors import ApiError

    if asset == "init.js":
        return Response(_DOCS_INIT, content_type="text/javascript; charset=utf-8")
    if asset not in DOCS_ASSETS:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"asset: no such file {asset!r}", field="asset")
    try:
        body = _swagger_dir().joinpath(asset).read_bytes()
    except (ModuleNotFoundError, OSError):
        raise ApiError(404, ErrorCode.NOT_FOUND, "asset: swagger-ui-py is not installed", field="asset") from None
    response = Response(body, content_type=DOCS_ASSETS[asset])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# -- docs/API.md's route reference ------------------------------------------------------------
REFERENCE_BEGIN = "<!-- BEGIN GENERATED ROUTE REFERENCE (orchestrator openapi reference --write) -->"
REFERENCE_END = "<!-- END GENERATED ROUTE REFERENCE -->"


def _auth_text(op: Operation) -> str:
    if op.auth == Auth.API_KEY:
        return "key: " + " or ".join(f"`{s}`" for s in (op.scopes or ()))
    return {Auth.USER_TOKEN: "user token", Auth.METRICS_TOKEN: "`METRICS_TOKEN` if set",
            Auth.SIGNATURE: "provider signature", Auth.NONE: "none"}[op.auth]


def _iter_reference(app: Flask) -> Iterator[str]:
    ops = operations(app, strict=False)
    yield REFERENCE_BEGIN
    yield ""
    yield "| method | path | what | auth | body | success | errors |"
    yield "|---|---|---|---|---|---|---|"
    for op in ops:
        d = op.declaration
        body = f"`{d.body.__name__}`" if d.body is not None else ""
        if d.body is not None and not d.body_required:
            body += " (optional)"
        ok = ", ".join(f"{s}" + (f" `{spec.__name__}`" if isinstance(spec, type) else
                                 f" {spec.media_type}" if isinstance(spec, Media) else "")
                       for s, spec in sorted(d.responses.items()))
        errors = ", ".join(str(s) for s in op.error_statuses())
        summary = d.summary.replace("|", "\\|")
        yield f"| {op.method.upper()} | `{op.path}` | {summary} | {_auth_text(op)} | {body} | {ok} | {errors} |"
    yield ""
    yield REFERENCE_END


def reference_markdown(app: Flask) -> str:
    return "\n".join(_iter_reference(app))


def update_reference(text: str, app: Flask) -> str:
    """`text` (docs/API.md) with its generated section replaced by the current one."""
    start, end = text.find(REFERENCE_BEGIN), text.find(REFERENCE_END)
    if start < 0 or end < 0:
        raise ValueError(f"docs/API.md has no {REFERENCE_BEGIN!r} … {REFERENCE_END!r} section")
    return text[:start] + reference_markdown(app) + text[end + len(REFERENCE_END):]

