"""The service layer's refusals carry a kind, not a status; the HTTP edge gives every kind
its status from one table (errors.HTTP_STATUS) and writes the same JSON body as ever."""

from __future__ import annotations

import pytest

from orchestrator.domain import errors as domain
from orchestrator.errors import HTTP_STATUS, ApiError, ErrorCode, error_body, http_status


def test_every_kind_the_domain_defines_has_one_status():
    kinds = [k for k in vars(domain).values()
             if isinstance(k, type) and issubclass(k, domain.DomainError) and k is not domain.DomainError]
    assert kinds and all(k in HTTP_STATUS for k in kinds), [k.__name__ for k in kinds if k not in HTTP_STATUS]
    assert {domain.Invalid: 422, domain.NotFound: 404, domain.Conflict: 409, domain.Unauthenticated: 401,
            domain.Forbidden: 403, domain.Unavailable: 503} == HTTP_STATUS


def test_a_kind_without_a_status_is_a_programming_error_not_a_guess():
    class Unmapped(domain.DomainError):
        pass

    with pytest.raises(TypeError, match="HTTP_STATUS"):
        http_status(Unmapped(ErrorCode.INTERNAL, "x"))


def test_the_edge_keeps_its_explicit_status_and_the_body_shape():
    assert http_status(ApiError(429, ErrorCode.RATE_LIMITED, "slow down")) == 429
    refused = domain.Conflict(ErrorCode.VERSION_EXISTS, "version: taken", field="version")
    assert error_body(refused) == {"error": {"code": "version_exists", "message": "version: taken",
                                             "field": "version"}}
    assert error_body(domain.Unavailable(ErrorCode.UNAVAILABLE, "later")) == {
        "error": {"code": "service_unavailable", "message": "later"}}
