"""Schemathesis against the generated document, on SQLite and PostgreSQL: every operation
gets positive and negative cases (bounded, deterministic), and every response must be a
non-5xx whose status, content type, headers and body the document declares.

A third mode, `hostile` (half as many cases), takes positive cases and puts into one of their strings a lone
surrogate or NUL, or into one of their numbers (body or query) one no column holds: the values
the audits found 500s with, which Hypothesis's own text and number strategies never draw.

Bounded: FUZZ_EXAMPLES cases per operation and mode (default 20; well under a minute per database
on 2 cores). `FUZZ_EXAMPLES=200 pytest tests/api/test_fuzz_openapi.py` for a longer run."""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.api.openapi import build_spec

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Served by the ASGI app on the event loop (a stream that never ends), not by Flask.
NOT_FUZZED = {("GET", "/v1/inbox/stream")}


HOSTILE_STRINGS = ("\ud800", "a\udfffb", "\udbff\udbff", "nul\x00")
HOSTILE_NUMBERS = (10**30, -(10**30), 10**400, 1e308, -1e308, 2**63)


def _leaves(value, path=()):
    """(path, value) of every string and number in a JSON value (bools are not numbers)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    elif isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        yield path, value


def _replaced(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


def _hostile(case, pick: int, variant: int):
    """`case` with one string or number (body or query) made hostile; unchanged if it has none.
    Query strings get numbers only: HTTP cannot carry a lone surrogate in a URL."""
    json_body = isinstance(case.body, dict | list) and "json" in (case.media_type or "")
    spots = [("body", p, v) for p, v in _leaves(case.body)] if json_body else []
    spots += [("query", p, v) for p, v in _leaves(case.query or {}) if not isinstance(v, str) or v.isdigit()]
    if not spots:
        return case
    where, path, old = spots[pick % len(spots)]
    if isinstance(old, str) and where == "body":
        new = old + HOSTILE_STRINGS[variant % len(HOSTILE_STRINGS)]
    else:
        new = HOSTILE_NUMBERS[variant % len(HOSTILE_NUMBERS)]
        new = str(new) if where == "query" else new
    if where == "body":  # as bytes: json.dumps writes "\\ud800" (the test client would not encode it)
        case.body = json.dumps(_replaced(case.body, path, new)).encode()
    else:
        case.query = _replaced(case.query, path, new)
    return case


def hostile_strategy(operation):
    return st.builds(_hostile, operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                     st.integers(0, 1000), st.integers(0, 100))


def _settings(examples: int = EXAMPLES):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


def _runner(strategy, observe, *, app, headers, examples: int = EXAMPLES):
    @given(case=strategy)
    @_settings(examples)
    def run(case):
        response = case.call(app=app, headers=headers)
        observe(case, response)
        case.validate_response(response, checks=CHECKS)

    return run


def test_no_server_error_and_every_response_conforms(make_app, make_key, clock):
    app = make_app(RATE_LIMIT_PER_MINUTE="1000000")
    client = app.test_client()
    admin = make_key(("admin",), name="fuzz-admin")
    # A recipient and a user token, so user-token routes get past authentication.
    assert client.put("/v1/recipients/u-fuzz", json={"email": "ada@example.com"}, headers=admin).status_code == 201
    token = client.post("/v1/recipients/u-fuzz/inapp-token", headers=admin).get_json()["token"]
    user = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        schema = schemathesis.openapi.from_dict(build_spec(app))

    failures: list[str] = []
    calls = 0
    succeeded: set[tuple[str, str]] = set()

    refused_hostile: set[str] = set()

    def record(label, mode, response) -> None:
        nonlocal calls
        calls += 1
        if response.status_code < 300:
            succeeded.add(label)
        elif mode == "hostile" and response.status_code == 422:
            refused_hostile.add(((response.json() or {}).get("error") or {}).get("code"))

    for result in schema.get_all_operations():
        operation = result.ok()
        label = (operation.method.upper(), operation.path)
        if label in NOT_FUZZED:
            continue
        security = operation.definition.raw.get("security") or []
        headers = user if any("userToken" in s for s in security) else admin
        strategies = [("examples", s) for s in schema.get_strategies_from_examples(operation)]
        strategies += [(mode.value, operation.as_strategy(generation_mode=mode))
                       for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        strategies.append(("hostile", hostile_strategy(operation)))
        for mode, strategy in strategies:
            run = _runner(strategy, lambda case, response, label=label, mode=mode: record(label, mode, response),
                          app=app, headers=headers,
                          examples=max(5, EXAMPLES // 2) if mode == "hostile" else EXAMPLES)
            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE.value, label  # nothing to negate: no parameters, no body
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failure, then report all
                failures.append(f"{label[0]} {label[1]} [{mode}]: {str(exc)[:1500]}")
    assert calls > 100
    print(f"{calls} calls; operations answered 2xx: {len(succeeded)}: {sorted(succeeded)}")
    assert len(succeeded) >= 20, sorted(succeeded)  # the cases reach the handlers, not only the guards
    assert not failures, "\n\n".join(failures)
    # The hostile values reached the checks they are aimed at.
    assert {"invalid_character", "invalid_number"} <= refused_hostile, refused_hostile
