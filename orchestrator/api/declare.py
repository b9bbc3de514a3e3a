"""Route declarations: what each route takes and answers, written once, next to the route.
`/openapi.json`, `/docs` and the route reference in docs/API.md are all built from these
declarations and Flask's url_map (orchestrator/api/openapi.py), so none of them can drift
from the code; tests/api/test_openapi.py fails on any route without a declaration.

Declaring a new route is one decorator, placed directly under the Flask route decorator::

    @bp.post("/things/<thing_id>")
    @declare("Create a thing", body=ThingIn, responses={201: ThingOut}, errors=[404, 409])
    @require_scope(Scope.SEND)
    def create_thing(thing_id: str): ...

- `summary`: one line; `description` (optional): more, in Markdown.
- `body`: the pydantic model the handler parses with `parse_body` (`body_required=False`
  when an empty body is allowed); `body_media` for a non-JSON body (e.g. a signed form);
  `body_example`: a request the handler accepts (tests check it validates against `body`).
- `query`: a pydantic model whose fields are the query parameters (validated by the handler).
- `headers`: request headers as {name: description}.
- `responses`: {status: model} for JSON bodies (pydantic models, so the document shows the
  real shape and its examples are checked), or {status: Media("text/csv", "what")} for other
  media, or {status: None} for an empty body.
- `errors`: the statuses the handler itself raises. Those every route of its kind can
  answer are added for you: 401/403/429 for API-key routes (scopes come from
  `require_scope`, so the document shows what the code enforces), 401 for user-token routes,
  400/413/415/422 for routes with a JSON body (parse_body's guards; not for Auth.SIGNATURE
  webhooks, which read their raw bodies and list their own), 422 for routes with path or query
  parameters (NUL guard). Every error body is the ErrorResponse shape.
- `auth`: Auth.API_KEY is inferred from `require_scope`; say Auth.USER_TOKEN,
  Auth.METRICS_TOKEN or Auth.SIGNATURE (provider webhooks) otherwise; default none.
- `hidden=True` keeps a route out of the document (say why in `description`): only for
  routes that are not API (the HTML review pages, the docs page itself).

Why not flask-openapi3, spectree or APIFlask (all maintained)? Each generates the document
by taking over request parsing: the handler receives an already-validated model. Ours must
go through `parse_body` (415, size limit, nesting depth, NUL and non-finite numbers rejected
before pydantic sees the data, errors in our JSON shape), and their validation errors,
405/404 pages and security models would have to be overridden route by route — a rewrite of
every handler for a document. Recording metadata beside the unchanged handlers and building
the document from Flask's own url_map is ~200 lines and keeps every guard in force.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

ATTRIBUTE = "__route_declaration__"
SCOPES_ATTRIBUTE = "__required_scopes__"


class Auth(StrEnum):
    NONE = "none"
    API_KEY = "api_key"
    USER_TOKEN = "user_token"
    METRICS_TOKEN = "metrics_token"
    SIGNATURE = "signature"


@dataclass(frozen=True)
class Media:
    """A non-JSON response body: its media type and a sentence about it."""

    media_type: str
    description: str


ResponseSpec = type[BaseModel] | Media | None


@dataclass(frozen=True)
class Declaration:
    summary: str
    description: str = ""
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_media: str = "application/json"
    body_example: Mapping[str, Any] | None = None
    query: type[BaseModel] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    responses: Mapping[int, ResponseSpec] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    auth: Auth | None = None
    tags: tuple[str, ...] = ()
    hidden: bool = False


def declare(summary: str, *, description: str = "", body: type[BaseModel] | None = None,
            body_required: bool = True, body_media: str = "application/json",
            body_example: Mapping[str, Any] | None = None, query: type[BaseModel] | None = None,
            headers: Mapping[str, str] | None = None,
            responses: Mapping[int, ResponseSpec] | None = None, errors: Iterable[int] = (),
            auth: Auth | None = None, tags: Iterable[str] = (), hidden: bool = False) -> Callable:
    """Records the declaration on the view. It only records: the handler runs unchanged."""
    decl = Declaration(summary=summary, description=description, body=body, body_required=body_required,
                       body_media=body_media, body_example=body_example, query=query, headers=dict(headers or {}),
                       responses=dict(responses or {200: None}), errors=tuple(sorted(set(errors))),
                       auth=auth, tags=tuple(tags), hidden=hidden)

    def decorator(view: Callable) -> Callable:
        setattr(view, ATTRIBUTE, decl)
        return view

    return decorator


def declaration_of(view: Callable) -> Declaration | None:
    return getattr(view, ATTRIBUTE, None)


def scopes_of(view: Callable) -> tuple[str, ...] | None:
    """The scopes `require_scope` enforces on the view (None: no API key needed)."""
    return getattr(view, SCOPES_ATTRIBUTE, None)
