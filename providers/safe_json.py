"""JSON from untrusted bodies, parsed safely: one place for every route and webhook.

`json.loads` alone recurses once per nesting level (100,000 `[` raise RecursionError),
accepts `NaN`/`Infinity` (not JSON; served back they break clients), turns `1e400` into
infinity, accepts integers of thousands of digits, and lets NUL characters and lone
surrogates (`"\ud800"`: half of a UTF-16 pair, which no UTF-8 encoder accepts) through
(PostgreSQL refuses the first, every database driver the second). `loads` rejects all of
these with an `UnsafeJson` that names the path of the offending value, e.g. `metadata.a.0`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
# Integers a JSON client can round-trip everywhere we store them (signed 64-bit).
MAX_INT = 2**63 - 1
MAX_INT_DIGITS = 20

# One structural character or the quote opening a string; the rest of a string (to its closing
# quote) is matched separately, once, from where it starts. (A single pattern for a whole string
# token, run by finditer, tries again from every quote inside an unterminated string: `"` then
# 16,000 `\"` took seconds, holding the interpreter.)
_STRUCTURAL = re.compile(r'[\[\]{}:,"]')
_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
# What no database stores: NUL, and lone UTF-16 surrogates (JSON's "\ud800" escape).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# In JSON text both can only be written as escapes (raw NUL is refused by the parser, and
# UTF-8 cannot hold a surrogate): without such an escape, no string needs checking.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE_TEXT = "must not contain NUL (\\u0000) or lone surrogate (\\ud800-\\udfff) characters"


class UnsafeJson(ValueError):
    """`kind` is one of "too_deep", "invalid_number", "invalid_character"; `field` the path."""

    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.kind = kind
        self.field = field
        self.message = message


class _BigInt:
    __slots__ = ("digits",)

    def __init__(self, digits: str) -> None:
        self.digits = digits

    def __str__(self) -> str:
        return self.digits


def _join(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _parse_key(token: str) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token.strip('"')


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise UnsafeJson("too_deep") if arrays/objects nest deeper than `max_depth`, without
    recursion. Malformed text is left for the parser to report."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot nest deeper than it has brackets (most bodies: no scan at all)
    stack: list[list[Any]] = []   # [container, current key or index, expecting a key]
    pos = 0
    while (match := _STRUCTURAL.search(text, pos)) is not None:
        tok = match.group()
        pos = match.end()
        if tok == '"':
            rest = _STRING_REST.match(text, pos)
            if rest is None:
                return  # an unterminated string: not JSON, which the parser reports
            if stack and stack[-1][0] == "{" and stack[-1][2]:
                stack[-1][1] = _parse_key(text[match.start():rest.end()])
            pos = rest.end()
        elif tok in "[{":
            if len(stack) >= max_depth:
                path = [frame[1] for frame in stack if frame[1] is not None]
                raise UnsafeJson("too_deep", _join(path[:2]),
                                 f"nested deeper than {max_depth} levels of arrays and objects")
            stack.append([tok, 0 if tok == "[" else None, tok == "{"])
        elif tok in "]}":
            if stack:
                stack.pop()
        elif tok == ",":
            if stack:
                frame = stack[-1]
                if frame[0] == "[":
                    frame[1] = (frame[1] or 0) + 1
                else:
                    frame[2] = True
        elif tok == ":":
            if stack:
                stack[-1][2] = False


def _check_values(value: Any, path: list[str | int], strings: bool = True) -> None:
    """`strings`: also look for NUL and lone surrogates in keys and strings."""
    if isinstance(value, dict):
        for key, item in value.items():
            if strings and UNSTORABLE.search(key):
                raise UnsafeJson("invalid_character", _join(path), f"keys {_UNSTORABLE_TEXT}")
            _check_values(item, [*path, key], strings)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, [*path, index], strings)
    elif isinstance(value, str):
        if strings and UNSTORABLE.search(value):
            raise UnsafeJson("invalid_character", _join(path), _UNSTORABLE_TEXT)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeJson("invalid_number", _join(path),
                             "must be a finite number (NaN, Infinity and out-of-range values are not JSON)")
    elif isinstance(value, _BigInt) or (isinstance(value, int) and not isinstance(value, bool)
                                        and abs(value) > MAX_INT):
        raise UnsafeJson("invalid_number", _join(path), f"integer out of range (at most {MAX_INT} in magnitude)")


def _parse_int(digits: str) -> int | _BigInt:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        return _BigInt(digits)
    return int(digits)


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `raw` as JSON. Raises UnsafeJson (a ValueError) for the cases above, and
    ValueError (json.JSONDecodeError / UnicodeDecodeError) for text that is not JSON."""
    text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    value = loads_unchecked(text, max_depth=max_depth)
    _check_values(value, [], strings=_UNSTORABLE_ESCAPE.search(text) is not None)
    return value


def loads_unchecked(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """`loads` without the value checks, for a body whose parts are checked one by one with
    `check` (a webhook batch, where one bad event must not refuse the others). The depth is
    still checked; an integer too long to convert comes back as an opaque marker."""
    text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    check_depth(text, max_depth)
    return json.loads(text, parse_int=_parse_int)


def check(value: Any, path: list[str | int] | None = None) -> None:
    """The value checks of `loads` on an already parsed part; `path` prefixes the field."""
    _check_values(value, list(path or []))
