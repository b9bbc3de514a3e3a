"""Batch send (POST /v1/messages/batch): up to MAX_ITEMS recipients sharing category, urgency,
content (or a template) and timing, in one request and one transaction.

Each item becomes an ordinary send request — the shared fields plus the item's `recipient`,
`metadata` (merged over the shared metadata) and `variables` (into `template.variables` when
a shared `template` is given) — validated, checked and decided exactly as a single send
(sending/messages.py `plan_message`), so anything a single send learns (templates,
per-channel content) a batch gets too. An item that fails is reported by its index and
field (`recipients[3].recipient.phone`) and the rest go on; a fault in a shared field fails
the whole request, naming that field once.

Every accepted item is written with multi-row INSERTs in one transaction (message rows,
attempt rows, the batch's idempotency record); due attempts are announced after commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from ..content import templates
from ..content.limits import render_pool
from ..domain.errors import DomainError, ErrorCode, Invalid, invalid_from_validation
from ..schemas import LINK_SCHEMES_CONTEXT, SendRequest
from ..storage.db import announce
from . import scheduling
from .facts import prefetch_recipients
from .messages import Acceptance, AcceptOutcome, _replay, record_idempotency, request_hash
from .routing import check_against_policy, insert_planned, plan_message

MAX_ITEMS = 1000
SHARED_FIELDS = ("category", "urgency", "content", "template", "expires_at", "send_at", "metadata")
ITEM_FIELDS = ("recipient", "variables", "metadata")
MAX_VARIABLES = 100
# Checks on shared fields fail the whole batch (a template's variables are the item's own).
SHARED_CHECKS = ("category", "expires_at", "send_at", "content", "template", "template.id", "template.version")


@dataclass
class BatchLimits:
    max_content_chars: int
    deadline_seconds: int
    max_ahead_seconds: int | None
    link_schemes: tuple[str, ...]


def _item_error(index: int, err: DomainError) -> dict[str, Any]:
    field = f"recipients[{index}].{err.field}" if err.field else f"recipients[{index}]"
    message = err.message.split(": ", 1)[1] if err.field and err.message.startswith(f"{err.field}: ") else err.message
    return {"index": index, "error": {"code": str(err.code), "field": field, "message": f"{field}: {message}"}}


def _owned_by_item(field: str | None, has_template: bool) -> bool:
    """Whether a validation error names a field the item supplied (not a shared one)."""
    if not field:
        return False
    head = field.split(".", 1)[0]
    if head in ("recipient", "metadata"):
        return True
    return has_template and field.startswith("template.variables")


def check_shape(body: dict[str, Any]) -> list[Any]:
    """The request's own shape (not the items'): known top-level fields, 1..MAX_ITEMS items."""
    for name in body:
        if name not in (*SHARED_FIELDS, "recipients"):
            shown = str(name)[:60]
            raise Invalid(ErrorCode.VALIDATION_ERROR, f"{shown}: not a field of a batch request", field=shown)
    items = body.get("recipients")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise Invalid(ErrorCode.VALIDATION_ERROR,
                      f"recipients: a list of 1 to {MAX_ITEMS} items, each {{recipient, variables?, metadata?}}",
                      field="recipients")
    return items


def item_request(body: dict[str, Any], item: Any, index: int) -> dict[str, Any]:
    """The send request of one item (a dict for SendRequest), or Invalid naming the item."""
    if not isinstance(item, dict):
        raise Invalid(ErrorCode.VALIDATION_ERROR, "must be an object with recipient", field="")
    for name in item:
        if name not in ITEM_FIELDS:
            raise Invalid(ErrorCode.VALIDATION_ERROR, f"{str(name)[:60]}: not a field of a batch item",
                          field=str(name)[:60])
    request = {k: body[k] for k in SHARED_FIELDS if k in body}
    request["recipient"] = item.get("recipient")
    if "metadata" in item:
        if not isinstance(item["metadata"], dict):
            raise Invalid(ErrorCode.VALIDATION_ERROR, "metadata: must be an object", field="metadata")
        shared = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        request["metadata"] = {**shared, **item["metadata"]}
    if "variables" in item:
        variables = item["variables"]
        if not isinstance(variables, dict) or len(variables) > MAX_VARIABLES:
            raise Invalid(ErrorCode.VALIDATION_ERROR,
                          f"variables: an object of at most {MAX_VARIABLES} names", field="variables")
        template = body.get("template")
        if not isinstance(template, dict):
            raise Invalid(ErrorCode.VALIDATION_ERROR,
                          "variables: only with a shared template (inline content has no variables)",
                          field="variables")
        shared_vars = template.get("variables") if isinstance(template.get("variables"), dict) else {}
        request["template"] = {**template, "variables": {**shared_vars, **variables}}
    return request


def accept_batch(db, policy, body: dict[str, Any], api_key, *, raw_body: bytes, idempotency_key: str | None,
                 now: datetime, limits: BatchLimits, presence=None) -> Acceptance:
    digest = request_hash(raw_body) if idempotency_key else ""
    if idempotency_key:
        replay = _replay(db, api_key.id, idempotency_key, digest)
        if replay:
            return replay
    items = check_shape(body)
    has_template = isinstance(body.get("template"), dict)
    context = {LINK_SCHEMES_CONTEXT: limits.link_schemes}
    requests: list[tuple[int, SendRequest]] = []
    results: list[dict[str, Any] | None] = [None] * len(items)
    with render_pool():  # the items' renders, together, within one request's CPU time
        for index, item in enumerate(items):
            try:
                data = item_request(body, item, index)
            except DomainError as err:
                results[index] = _item_error(index, err)
                continue
            try:
                req = SendRequest.model_validate(data, context=context)
            except ValidationError as exc:
                err = invalid_from_validation(exc)
                if not _owned_by_item(err.field, has_template):
                    raise err from None  # a shared field: every item would fail the same way
                results[index] = _item_error(index, err)
                continue
            try:
                req = templates.resolve(db, req, limits.max_content_chars)  # rendered per recipient
                check_against_policy(policy, req, now, limits.max_content_chars)
                scheduling.check_send_at(req, now, limits.max_ahead_seconds)
            except DomainError as err:
                if err.field in SHARED_CHECKS:
                    raise
                results[index] = _item_error(index, err)  # e.g. content too large once rendered
                continue
            requests.append((index, req))

    try:
        with db.session() as session:
            planned_items, due = [], []
            # One statement per 500 recipients instead of one per item (most of a batch's time).
            rows = prefetch_recipients(session, [req.recipient.user_id for _, req in requests
                                                 if not scheduling.is_scheduled(req, now)])
            for index, req in requests:
                if scheduling.is_scheduled(req, now):
                    planned = scheduling.scheduled_message(req, api_key.id, now)
                else:
                    planned = plan_message(session, policy, req, api_key.id, now, limits.deadline_seconds, presence,
                                           recipient_rows=rows[req.recipient.user_id])
                planned_items.append(planned)
                due.extend(planned.due)
                results[index] = {"index": index, "id": planned.body["id"], "status": planned.body["status"]}
            conn = session.connection()
            insert_planned(conn, planned_items)
            accepted = len(planned_items)
            response = {"accepted": accepted, "refused": len(items) - accepted, "results": results}
            if idempotency_key:
                record_idempotency(conn, api_key.id, idempotency_key, digest, response, None, now)
            announce(session, due)
    except IntegrityError:
        replay = _replay(db, api_key.id, idempotency_key or "", digest)
        if replay:
            return replay
        raise
    return Acceptance(AcceptOutcome.ACCEPTED, response, due)
