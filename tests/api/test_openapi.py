"""The generated OpenAPI document: every route declared, valid OpenAPI 3.1, examples that
pass our own validation, docs/API.md's route reference in step, /docs served locally."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
from flask import Blueprint, Flask
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import BaseModel, TypeAdapter

from orchestrator.access.auth import require_scope
from orchestrator.api import openapi
from orchestrator.api.declare import declare
from orchestrator.api.openapi import UndeclaredRoutes, build_spec, operations, update_reference
from orchestrator.domain.statuses import Scope
from orchestrator.schemas import LINK_SCHEMES_CONTEXT, Strict

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path, sqlite_template):  # the document does not depend on the database
    import shutil

    path = tmp_path / "db.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_every_route_is_declared(app):
    ops = operations(app)  # raises on any rule without @declare
    listed = {(o.method.upper(), o.path) for o in ops}
    for expected in [("GET", "/v1/recipients/{user_id}"), ("PUT", "/v1/recipients/{user_id}"),
                     ("GET", "/v1/inbox"), ("POST", "/v1/inbox/{attempt_id}/{event}"), ("GET", "/v1/inbox/stream"),
                     ("POST", "/webhooks/twilio"), ("POST", "/webhooks/ses"), ("POST", "/webhooks/sendgrid"),
                     ("GET", "/v1/keys"), ("DELETE", "/v1/keys/{key_id}"), ("GET", "/healthz"), ("GET", "/readyz"),
                     ("GET", "/metrics"), ("POST", "/v1/messages"), ("GET", "/docs"), ("GET", "/openapi.json")]:
        assert expected in listed, expected
    rules = {(m, r.rule) for r in app.url_map.iter_rules() for m in (r.methods or ()) - {"HEAD", "OPTIONS"}
             if r.endpoint != "static" and not r.endpoint.startswith("review.") and r.endpoint != "openapi.docs_asset"}
    assert len(rules) == len(ops) - len(openapi.EXTERNAL_ROUTES)


def test_an_undeclared_route_fails_and_a_declared_one_appears_with_its_scopes(app):
    class ThingIn(Strict):
        name: str

    class ThingOut(BaseModel):
        id: str

    extra = Blueprint("things", __name__)

    @extra.post("/v1/things/<thing_id>")
    @declare("Create a thing", body=ThingIn, responses={201: ThingOut}, errors=[409])
    @require_scope(Scope.SEND)
    def create_thing(thing_id: str):
        return {"id": thing_id}, 201

    @extra.get("/v1/undeclared")
    def undeclared():
        return {}

    app.register_blueprint(extra)
    with pytest.raises(UndeclaredRoutes, match="GET /v1/undeclared"):
        operations(app)
    doc = build_spec(app)
    op = doc["paths"]["/v1/things/{thing_id}"]["post"]
    assert op["security"] == [{"apiKey": ["send"]}]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingIn"}
    assert set(op["responses"]) == {"201", "400", "401", "403", "409", "413", "415", "422", "429"}
    assert "RateLimit-Remaining" in op["responses"]["201"]["headers"]
    validate(doc)


def test_document_is_valid_openapi(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_every_operation_has_typed_success_and_error_bodies(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            statuses = [int(s) for s in op["responses"]]
            assert any(200 <= s < 300 for s in statuses), (method, path)
            for status, response in op["responses"].items():
                if int(status) >= 400 and (path, status) != ("/readyz", "503"):  # 503 is the readiness report
                    if (path, status) == ("/u/{token}", "409"):  # a page for a person: the category is locked
                        assert list(response["content"]) == ["text/html"], response
                        continue
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
                elif int(status) not in (204,) and "content" in response:
                    (media, body), = response["content"].items()
                    if media == "application/json" and path != "/openapi.json":
                        assert "$ref" in body["schema"], (method, path, status)


def _walk_models(model: type[BaseModel], seen: set) -> None:
    if model in seen:
        return
    seen.add(model)
    for f in model.model_fields.values():
        for arg in _flatten(f.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _walk_models(arg, seen)


def _flatten(annotation) -> list:
    out = [annotation]
    for arg in typing.get_args(annotation):
        out += _flatten(arg)
    return out


def _declared_models(app: Flask) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    for model, _ in openapi._models(operations(app)):
        _walk_models(model, seen)
    return seen


def test_every_example_passes_our_validation(app, spec):
    context = {LINK_SCHEMES_CONTEXT: ()}
    checked = 0
    schemas = spec["components"]["schemas"]
    for model in _declared_models(app):
        for example in (model.model_config.get("json_schema_extra") or {}).get("examples", []):
            model.model_validate(example, context=context)
            name = model.__name__
            if name in schemas:
                text = json.dumps({**schemas[name], "$defs": schemas}).replace("#/components/schemas/", "#/$defs/")
                Draft202012Validator(json.loads(text)).validate(example)
            checked += 1
        for f in model.model_fields.values():
            adapter = TypeAdapter(typing.Annotated[f.annotation, *f.metadata]) if f.metadata \
                else TypeAdapter(f.annotation)
            for example in f.examples or []:
                adapter.validate_python(example)
                checked += 1
    for op in operations(app):
        if op.declaration.body_example is not None:
            op.declaration.body.model_validate(op.declaration.body_example, context=context)
            checked += 1
    assert checked >= 12
    # The phone example in the document is one our validation accepts (it was not, once).
    from orchestrator.domain.addresses import to_e164

    phone = spec["components"]["schemas"]["RecipientUpsert"]["properties"]["phone"]
    for example in next(s for s in phone["anyOf"] if s.get("type") == "string")["examples"]:
        assert to_e164(example)


def test_method_not_allowed_is_json_with_allow(client, auth):
    response = client.delete("/v1/messages", headers=auth)
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}


def test_docs_page_is_served_without_network(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html or "/docs/init.js" in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js"):
        assert f"/docs/{asset}" in html
        response = client.get(f"/docs/{asset}")
        assert response.status_code == 200 and len(response.data) > 20, asset
    assert "/openapi.json" in client.get("/docs/init.js").get_data(as_text=True)
    assert client.get("/docs/nope.js").status_code == 404


def test_api_md_route_reference_is_up_to_date(app):
    current = API_MD.read_text(encoding="utf-8")
    assert update_reference(current, app) == current, \
        "docs/API.md is stale: run `.venv/bin/orchestrator openapi reference --write`"


def test_docs_and_document_behind_the_real_server(make_app):
    import httpx

    from tests.live_server import running

    with running(make_app, worker=False) as (_, base, _asgi), httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/docs").status_code == 200
        assert http.get("/docs/swagger-ui-bundle.js").status_code == 200
        validate(http.get("/openapi.json").json())
        r = http.request("PATCH", "/v1/messages")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert "POST" in r.headers["Allow"]
