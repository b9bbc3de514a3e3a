"""Parsing request bodies into schema objects with errors that name the field."""

from __future__ import annotations

import json
from typing import TypeVar

from flask import request
from pydantic import BaseModel

from ..errors import ApiError, ErrorCode

M = TypeVar("M", bound=BaseModel)


def raw_json_object() -> tuple[bytes, dict]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, ErrorCode.INVALID_JSON, "request body is empty; send a JSON object", field="body")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, ErrorCode.INVALID_JSON, f"request body is not valid JSON: {exc}",
                       field="body") from None
    if not isinstance(data, dict):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "request body must be a JSON object", field="body")
    return raw, data


def parse_body(model: type[M], *, allow_empty: bool = False) -> tuple[bytes, M]:
    if allow_empty and not request.get_data(cache=True).strip():
        return b"", model()
    raw, data = raw_json_object()
    return raw, model.model_validate(data)
