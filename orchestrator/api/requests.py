"""Parsing request bodies into schema objects with errors that name the field."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from providers import safe_json

from ..app_state import state
from ..errors import ApiError, ErrorCode
from ..schemas import LINK_SCHEMES_CONTEXT

M = TypeVar("M", bound=BaseModel)

_UNSAFE_CODES = {
    "too_deep": ErrorCode.NESTING_TOO_DEEP,
    "invalid_number": ErrorCode.INVALID_NUMBER,
    "invalid_character": ErrorCode.INVALID_CHARACTER,
}


def load_json(raw: bytes, *, status: int = 422) -> Any:
    """Untrusted JSON, parsed without recursion limits, NaN, huge numbers or NUL; every
    failure is an ApiError naming the field (`body` for text that is not JSON)."""
    try:
        return safe_json.loads(raw)
    except safe_json.UnsafeJson as exc:
        raise ApiError(status, _UNSAFE_CODES[exc.kind], f"{exc.field}: {exc.message}", field=exc.field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, ErrorCode.INVALID_JSON, f"body: not valid JSON: {exc}", field="body") from None


def require_json_content_type() -> None:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        shown = request.headers.get("Content-Type") or "none"
        raise ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                       f"Content-Type: send application/json (got {shown})", field="Content-Type")


def raw_json_object() -> tuple[bytes, dict]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, ErrorCode.INVALID_JSON, "request body is empty; send a JSON object", field="body")
    require_json_content_type()
    data = load_json(raw)
    if not isinstance(data, dict):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "request body must be a JSON object", field="body")
    return raw, data


def parse_body(model: type[M], *, allow_empty: bool = False) -> tuple[bytes, M]:
    if allow_empty and not request.get_data(cache=True).strip():
        return b"", model()
    raw, data = raw_json_object()
    context = {LINK_SCHEMES_CONTEXT: state().settings.action_url_schemes}
    return raw, model.model_validate(data, context=context)
