"""/openapi.json, generated from the request/response models the handlers validate with,
so the document cannot drift from the code. Human docs: docs/API.md."""

from __future__ import annotations

from flask import Blueprint, jsonify
from pydantic.json_schema import models_json_schema

from ..content.schemas import PreviewIn, TemplateCreate, TemplateVersionIn
from ..errors import ErrorCode
from ..schemas import (
    Content,
    ErrorResponse,
    MessageAccepted,
    PreferencesIn,
    PresenceIn,
    RecipientRef,
    RecipientUpsert,
    SendRequest,
)

bp = Blueprint("openapi", __name__)

_MODELS = [SendRequest, RecipientUpsert, PresenceIn, PreferencesIn, MessageAccepted, ErrorResponse, Content,
           RecipientRef, TemplateCreate, TemplateVersionIn, PreviewIn]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict:
    return {"content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: int) -> dict:
    described = {400: "Malformed JSON", 401: "Missing or unknown API key", 403: "Key lacks the scope",
                 404: "Not found", 409: "Conflict (Idempotency-Key reused; policy version exists or wrong status)",
                 410: "Gone (an expired link)", 413: "Body too large",
                 422: "Validation failed; `field` names the culprit"}
    return {str(c): {"description": described[c], **_json("ErrorResponse")} for c in codes}


def _compliance_paths(auth: list) -> dict:
    """Compliance review (orchestrator/api/policies.py): scopes compliance:read, policy:write,
    policy:approve; the actor recorded in the audit log is the API key's name."""
    ver = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    doc_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["document"],
        "properties": {"document": {"type": "string", "description": "policy YAML"}, "reason": {"type": "string"}}}}}}
    reason_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"reason": {"type": "string"}}}}}}
    sim_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 366},
                                         "document": {"type": "string"}}}}}}

    def op(summary: str, ok: str, *errs: int, params: list | None = None, body: dict | None = None) -> dict:
        out = {"summary": summary, "security": auth, "parameters": params or [],
               "responses": {"200": {"description": ok}, **_errors(401, 403, *errs)}}
        if body:
            out["requestBody"] = body
        return out

    return {
        "/v1/policies": {
            "get": op("Policy versions, newest first: status, author, approver, times", "{policies, next_cursor}",
                      422, params=PAGE_PARAMS),
            "post": {**op("Create a draft from a policy document (its `version` names it)", "Draft", 400, 409, 422,
                          body=doc_body), "responses": {"201": {"description": "Draft created"},
                                                        **_errors(400, 401, 403, 409, 422)}}},
        "/v1/policies/{version}": {
            "get": op("A version: document and rules (id, title, description, cites)", "Version", 404, params=[ver]),
            "put": op("Edit a draft", "Draft", 400, 404, 409, 422, params=[ver], body=doc_body)},
        "/v1/policies/{version}/approve": {"post": op(
            "Approve a draft (not by its author: 403 self_approval_forbidden)", "Approved", 404, 409,
            params=[ver], body=reason_body)},
        "/v1/policies/{version}/activate": {"post": op(
            "Activate an approved version; the previous active one is retired", "Active", 404, 409,
            params=[ver], body=reason_body)},
        "/v1/policies/{a}/diff/{b}": {"get": op(
            "Rule-by-rule differences from version a to version b", "Changes", 404,
            params=[{**ver, "name": "a"}, {**ver, "name": "b"}])},
        "/v1/policies/{version}/simulate": {"post": op(
            "Replay the last N days of messages through a version: channel mix before/after, changed messages",
            "Simulation", 404, 422, params=[ver], body=sim_body)},
        "/v1/policies/simulate": {"post": op("Simulate a posted policy document", "Simulation", 400, 422,
                                             body=sim_body)},
        "/v1/audit": {"get": op("Audit log entries, newest first", "{entries, next_cursor}", 422,
                                params=PAGE_PARAMS + [{"name": n, "in": "query", "required": False,
                                                       "schema": {"type": "string"}} for n in ("subject", "action")])},
        "/v1/audit/verify": {"get": op("Verify the audit hash chain; names the first broken entry", "Result")},
        "/v1/messages/{id}/explain": {"get": op(
            "Re-explain a past decision: stored trace + replay under the stored policy version", "Explanation", 404,
            params=[{**ver, "name": "id"}])},
        "/v1/decisions.csv": {"get": op(
            "CSV export of decisions (from/to inclusive, ISO 8601)", "text/csv", 422,
            params=[{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("from", "to")])},
    }


def _preference_paths() -> dict:
    """Preference center (inapp/preferences_api.py), one-click unsubscribe (api/unsubscribe.py)
    and Twilio inbound messages (api/webhooks.py)."""
    user_token = [{"userToken": []}]
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    html = {"content": {"text/html": {"schema": {"type": "string"}}}}
    return {
        "/v1/inbox/preferences": {
            "get": {"summary": "The user's preferences per category and channel; locked categories marked "
                               "(user token)", "security": user_token,
                    "responses": {"200": {"description": "{user_id, policy_version, categories: [{category, "
                                                         "locked, unsubscribable, channels}]}"},
                                  **_errors(401)}},
            "put": {"summary": "Change the user's preferences: false turns a channel off for a category, "
                               "true or null on (user token); locked categories: 422 preference_locked",
                    "security": user_token, "requestBody": {"required": True, **_json("PreferencesIn")},
                    "responses": {"200": {"description": "The new state, as GET shows it"},
                                  **_errors(400, 401, 422)}}},
        "/u/{token}": {
            "get": {"summary": "One-click unsubscribe confirmation page (List-Unsubscribe URL); changes nothing",
                    "parameters": [token], "responses": {"200": {"description": "Page", **html},
                                                         **_errors(404)}},
            "post": {"summary": "RFC 8058 one-click unsubscribe: the token's category off by email for its user "
                                "(no API key, no CSRF token: the encrypted token is the authority)",
                     "parameters": [token], "responses": {"200": {"description": "Confirmation page", **html},
                                                          "409": {"description": "The category is locked"},
                                                          **_errors(404)}}},
        "/webhooks/twilio/inbound": {"post": {
            "summary": "Twilio inbound message (X-Twilio-Signature): STOP/START/HELP and synonyms update SMS "
                       "consent of every recipient with the sender's number; answers an empty TwiML <Response/>",
            "responses": {"200": {"description": "TwiML", "content": {"text/xml": {"schema": {"type": "string"}}}},
                          **_errors(403, 404, 422)}}},
    }


def _template_paths(auth: list) -> dict:
    """Templates (orchestrator/api/templates.py): writes take templates:write (or admin) and
    are audited; reads and previews take send, read or templates:write."""
    tid = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ver = {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    page = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200,
                                                        "default": 50}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"},
             "description": "next_cursor of the previous page"}]

    def op(summary: str, ok: str, *errs: int, params: list | None = None, body: str | None = None,
           status: str = "200") -> dict:
        out = {"summary": summary, "security": auth, "parameters": params or [],
               "responses": {status: {"description": ok}, **_errors(401, 403, *errs)}}
        if body:
            out["requestBody"] = {"required": True, **_json(body)}
        return out

    return {
        "/v1/templates": {
            "get": op("Templates by id, with their latest version number", "{templates, next_cursor}", 422,
                      params=page),
            "post": op("Create a template (version 1): per-channel sources, translations, reply_to", "Version 1",
                       400, 409, 413, 422, body="TemplateCreate", status="201")},
        "/v1/templates/{id}": {"get": op("A template and its latest version", "Template", 404, params=[tid])},
        "/v1/templates/{id}/versions": {
            "get": op("Every version of a template", "{versions}", 404, params=[tid]),
            "post": op("Save a new version (the previous ones stay, for pinned sends)", "The new version",
                       400, 404, 409, 413, 422, params=[tid], body="TemplateVersionIn", status="201")},
        "/v1/templates/{id}/versions/{version}": {"get": op("One version", "Version", 404, params=[tid, ver])},
        "/v1/templates/{id}/preview": {"post": op(
            "Render every channel for a locale and variables; nothing is sent", "{locale, channels}",
            400, 404, 422, params=[tid], body="PreviewIn")},
    }


PAGE_PARAMS = [
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
     "description": "page size (default and maximum per list)"},
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "next_cursor of the previous page, unchanged"}]


def _message_list_paths(auth: list, idem: dict) -> dict:
    """Lists, cancel and batch (orchestrator/api/messages.py)."""
    text = {"type": "string"}
    filters = [{"name": n, "in": "query", "required": False, "schema": text, "description": d} for n, d in (
        ("status", "comma-separated message statuses (e.g. scheduled,accepted)"), ("category", "category"),
        ("user_id", "recipient user id"), ("from", "created at or after (ISO 8601 with offset)"),
        ("to", "created before (ISO 8601 with offset)"), ("idempotency_key", "the Idempotency-Key it was sent with"))]
    batch_body = {"type": "object", "required": ["recipients"], "properties": {
        "category": text, "urgency": text, "content": _ref("Content"), "expires_at": text, "send_at": text,
        "metadata": {"type": "object"},
        "template": {"type": "object", "description": "shared template; item variables go into template.variables"},
        "recipients": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
            "type": "object", "required": ["recipient"], "properties": {
                "recipient": _ref("RecipientRef"), "variables": {"type": "object"}, "metadata": {"type": "object"}}}}}}
    return {
        "/v1/messages/batch": {"post": {
            "summary": "Send to up to 1,000 recipients; a result per item (id and status, or an error naming "
                       "recipients[i].field); idempotent as a whole", "security": auth, "parameters": [idem],
            "requestBody": {"required": True, "content": {"application/json": {"schema": batch_body}}},
            "responses": {"202": {"description": "{accepted, refused, results: [{index, id, status} | "
                                                 "{index, error: {code, field, message}}]}"},
                          **_errors(400, 401, 403, 409, 413, 422)}}},
        "/v1/messages/{id}/cancel": {"post": {
            "summary": "Cancel every attempt not yet sent (or the scheduled message); 409 message_final once "
                       "nothing is left to cancel", "security": auth,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": text}],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"reason": text}}}}},
            "responses": {"200": {"description": "{id, status, previous_status, cancelled_attempts, cancelled}"},
                          **_errors(400, 401, 403, 404, 409, 422)}}},
        "/v1/messages": {"get": {
            "summary": "Messages, newest first: a key sees what it sent, compliance/admin see all",
            "security": auth, "parameters": filters + PAGE_PARAMS,
            "responses": {"200": {"description": "{messages, next_cursor}"}, **_errors(401, 403, 422)}}},
    }


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
        "/v1/recipients/{user_id}/inapp-tokens/revoke": {"post": {
            "summary": "Revoke every in-app token of a user; their open streams close", "security": auth,
            "parameters": [user], "responses": {"200": {"description": "How many were revoked"},
                                                **_errors(401, 403, 422)}}},
        "/v1/inapp-tokens/{token_id}": {"delete": {
            "summary": "Revoke one in-app token by its id; its open streams close", "security": auth,
            "parameters": [{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Revoked"}, **_errors(401, 403, 404)}}},
        "/v1/inbox": {"get": {
            "summary": "In-app inbox, newest first, with the user's total unread (user token)",
            "security": [{"userToken": []}],
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200,
                                                            "default": 50}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"},
                 "description": "next_cursor of the previous page"}],
            "responses": {"200": {"description": "{user_id, unread, items, next_cursor}"},
                          **_errors(401, 422)}}},
        "/v1/inbox/read-all": {"post": {"summary": "Mark every item read (user token)",
                                        "security": [{"userToken": []}],
                                        "responses": {"200": {"description": "How many were unread"},
                                                      **_errors(401)}}},
        "/v1/inbox/{id}/archive": {"post": {"summary": "Archive an item (user token)",
                                            "security": [{"userToken": []}],
                                            "responses": {"200": {"description": "Archived"},
                                                          **_errors(401, 404)}}},
        "/v1/inbox/stream": {"get": {"summary": "Server-Sent Events stream (user token)",
                                     "security": [{"userToken": []}],
                                     "responses": {"200": {"description": "text/event-stream"}}}},
        "/v1/inbox/{id}/{event}": {"post": {"summary": "Report seen/read/clicked/acknowledged",
                                            "security": [{"userToken": []}],
                                            "responses": {"200": {"description": "Recorded"}}}},
        "/ack/{token}": {
            "get": {"summary": "Acknowledgement page of a notice that requires read confirmation (signed link "
                               "from its email): shows a confirm button, records nothing",
                    "responses": {"200": {"description": "text/html"}, **_errors(404, 410)}},
            "post": {"summary": "Record the acknowledgement (who, when, channel email_link); the first is kept",
                     "responses": {"200": {"description": "text/html"}, **_errors(404, 410)}}},
        "/webhooks/twilio": {"post": {"summary": "Twilio status callback (X-Twilio-Signature)",
                                      "responses": {"204": {"description": "Recorded"}}}},
        "/webhooks/sendgrid": {"post": {"summary": "SendGrid event webhook (ECDSA signature, timestamp window)",
                                        "responses": {"204": {"description": "Recorded"}}}},
        "/webhooks/ses": {"post": {"summary": "Amazon SES events via SNS (signature v1/v2, topic allow-list)",
                                   "responses": {"204": {"description": "Recorded"}}}},
        **_compliance_paths(auth),
        **_preference_paths(),
        **_template_paths(auth),
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Readiness: database, policy, providers live or sandboxed",
                            "responses": {"200": {"description": "ready"}, "503": {"description": "not"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
    }
    for path, ops in _message_list_paths(auth, idem).items():
        paths.setdefault(path, {}).update(ops)  # GET /v1/messages beside its POST
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
