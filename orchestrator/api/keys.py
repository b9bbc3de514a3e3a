"""API keys for administrators: list them (never the secret) and revoke one. A revocation
or a new rate limit takes effect at once in this process and, through Redis (access/key_sync.py),
within a second in every other; without REDIS_URL within KEY_CACHE_SECONDS."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, g, jsonify

from ..access import api_keys
from ..access.auth import require_scope
from ..app_state import state
from ..domain.statuses import Scope
from ..errors import ApiError, ErrorCode
from ..storage.models import ApiKey
from .declare import declare
from .models import ApiKeyList, ApiKeyOut, RateLimitIn, RequiredReasonIn
from .pagination import Pager
from .requests import parse_body, raw_json_object

bp = Blueprint("keys", __name__, url_prefix="/v1")

MAX_REASON_CHARS = 2000


KEY_PAGER = Pager((ApiKey.created_at, ApiKey.id), (datetime, str), descending=False, default_limit=100,
                  max_limit=500)


@bp.get("/keys")
@declare("API keys (never their secrets)", responses={200: ApiKeyList}, tags=("keys",))
@require_scope(Scope.ADMIN)
def list_keys():
    """Oldest first, paged (limit, cursor → next_cursor)."""
    page = KEY_PAGER.from_request()
    with state().db.session() as session:
        rows = list(session.scalars(KEY_PAGER.apply(api_keys.keys_query(), page)))
        rows, next_cursor = KEY_PAGER.finish(rows, page, lambda k: (k.created_at, k.id))
        return jsonify({"keys": [api_keys.key_dict(k) for k in rows], "next_cursor": next_cursor})


@bp.delete("/keys/<key_id>")
@declare("Revoke an API key (audited); effective everywhere within a second with REDIS_URL, else within "
         "KEY_CACHE_SECONDS", body=RequiredReasonIn,
         responses={200: ApiKeyOut}, errors=[404], tags=("keys",))
@require_scope(Scope.ADMIN)
def revoke_key(key_id: str):
    body = raw_json_object()[1]
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"reason: required, a sentence of at most {MAX_REASON_CHARS} characters saying why",
                       field="reason")
    st = state()
    with st.db.session() as session:
        try:
            key, _ = api_keys.revoke(session, key_id, actor=g.api_key.name, reason=reason.strip(), now=st.clock())
        except api_keys.UnknownKey:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"key_id: no API key {key_id!r}", field="key_id") from None
        row = api_keys.key_dict(key)
    st.key_sync.changed(row["id"])
    return jsonify(row)


@bp.put("/keys/<key_id>/rate-limit")
@declare("Set a key's requests per minute (null: the service default); audited", body=RateLimitIn,
         responses={200: ApiKeyOut}, errors=[404], tags=("keys",))
@require_scope(Scope.ADMIN)
def set_rate_limit(key_id: str):
    _, body = parse_body(RateLimitIn)
    st = state()
    with st.db.session() as session:
        try:
            key = api_keys.set_rate_limit(session, key_id, body.rate_limit_per_minute, actor=g.api_key.name,
                                          reason=body.reason.strip(), now=st.clock())
        except api_keys.UnknownKey:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"key_id: no API key {key_id!r}", field="key_id") from None
        row = api_keys.key_dict(key)
    st.key_sync.changed(row["id"])
    return jsonify(row)
