"""/openapi.json, generated from the request/response models the handlers validate with,
so the document cannot drift from the code. Human docs: docs/API.md."""

from __future__ import annotations

from flask import Blueprint, jsonify
from pydantic.json_schema import models_json_schema

from ..errors import ErrorCode
from ..schemas import ErrorResponse, MessageAccepted, PresenceIn, RecipientUpsert, SendRequest

bp = Blueprint("openapi", __name__)

_MODELS = [SendRequest, RecipientUpsert, PresenceIn, MessageAccepted, ErrorResponse]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict:
    return {"content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: int) -> dict:
    described = {400: "Malformed JSON", 401: "Missing or unknown API key", 403: "Key lacks the scope",
                 404: "Not found", 409: "Idempotency-Key reused with another body",
                 413: "Body too large", 422: "Validation failed; `field` names the culprit"}
    return {str(c): {"description": described[c], **_json("ErrorResponse")} for c in codes}


def build_spec() -> dict:
    _, defs = models_json_schema([(m, "validation") for m in _MODELS],
                                 ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    auth = [{"apiKey": []}]
    idem = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}
    user = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        "/v1/messages": {"post": {
            "summary": "Send a message: the policy picks the channels", "security": auth,
            "parameters": [idem], "requestBody": {"required": True, **_json("SendRequest")},
            "responses": {"202": {"description": "Accepted; route decided", **_json("MessageAccepted")},
                          **_errors(400, 401, 403, 409, 413, 422)}}},
        "/v1/messages/{id}": {"get": {
            "summary": "A message with its route, attempts and receipt timeline", "security": auth,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The message"}, **_errors(401, 403, 404)}}},
        "/v1/routing/explain": {"post": {
            "summary": "The plan for a send request; nothing is sent", "security": auth,
            "requestBody": {"required": True, **_json("SendRequest")},
            "responses": {"200": {"description": "Plan, reasons and the facts used"},
                          **_errors(400, 401, 403, 422)}}},
        "/v1/recipients/{user_id}": {"put": {
            "summary": "Create or update a recipient profile", "security": auth, "parameters": [user],
            "requestBody": {"required": True, **_json("RecipientUpsert")},
            "responses": {"200": {"description": "Updated"}, "201": {"description": "Created"},
                          **_errors(400, 401, 403, 422)}}},
        "/v1/recipients/{user_id}/presence": {"post": {
            "summary": "Presence heartbeat", "security": auth, "parameters": [user],
            "responses": {"200": {"description": "Recorded"}, **_errors(401, 403, 422)}}},
        "/v1/recipients/{user_id}/inapp-token": {"post": {
            "summary": "Issue a per-user token for the in-app client", "security": auth,
            "parameters": [user], "responses": {"201": {"description": "Token"}}}},
        "/v1/inbox": {"get": {"summary": "In-app inbox (user token)", "security": [{"userToken": []}],
                              "responses": {"200": {"description": "Items"}}}},
        "/v1/inbox/stream": {"get": {"summary": "Server-Sent Events stream (user token)",
                                     "security": [{"userToken": []}],
                                     "responses": {"200": {"description": "text/event-stream"}}}},
        "/v1/inbox/{id}/{event}": {"post": {"summary": "Report seen/read/clicked/acknowledged",
                                            "security": [{"userToken": []}],
                                            "responses": {"200": {"description": "Recorded"}}}},
        "/webhooks/twilio": {"post": {"summary": "Twilio status callback (X-Twilio-Signature)",
                                      "responses": {"204": {"description": "Recorded"}}}},
        "/webhooks/sendgrid": {"post": {"summary": "SendGrid event webhook (ECDSA signature, timestamp window)",
                                        "responses": {"204": {"description": "Recorded"}}}},
        "/webhooks/ses": {"post": {"summary": "Amazon SES events via SNS (signature v1/v2, topic allow-list)",
                                   "responses": {"204": {"description": "Recorded"}}}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Readiness: database, policy, providers live or sandboxed",
                            "responses": {"200": {"description": "ready"}, "503": {"description": "not"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Channel orchestrator", "version": "1",
                 "description": "Error codes: " + ", ".join(c.value for c in ErrorCode)},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer"},
            "userToken": {"type": "http", "scheme": "bearer"}}},
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(build_spec())
