"""The filters and tests templates may use, each bounded in work and memory (limits.py).

Jinja2's own filters are linear or n·log n in their input, but the input can be built large
and shared (`[s] * 10000` is ten thousand references to one string `s`), so a filter that
turns its input into text or sorts it can cost far more than the expression that reached it:
`(range(1000)|list * 10)|sort` in a loop, `items|join(separator)` with a 100,000-character
separator, `sum(start=[])` concatenating lists. Each filter here therefore:
- ticks the render's CPU budget first;
- checks what it is about to do against the limits before doing it (items it will sort or
  list, characters it will write), consuming a generator at most MAX_ITEMS + 1 items deep;
- checks what it built.
Tests tick the budget (`x is in y` is linear in y)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .limits import (
    MAX_ITEMS,
    MAX_VALUE_CHARS,
    LimitExceeded,
    check_expanded,
    check_items,
    check_result,
    check_text,
    text_size,
    tick,
)

# Filters that consume their whole input: a generator is read into a list (bounded) first.
_CONSUMING = frozenset({"sort", "dictsort", "unique", "list", "reverse", "join", "sum", "max", "min"})
# Filters that write their input out as text.
_STRINGIFYING = frozenset({"string", "e", "escape", "forceescape", "tojson", "urlencode", "striptags", "upper",
                           "lower", "title", "capitalize", "trim", "truncate", "wordcount"})


def _bounded_list(value: Any, name: str) -> Any:
    if isinstance(value, str | Mapping):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        check_items(value, f"the input of '{name}'")
        return value
    if isinstance(value, Iterable):
        items = list(itertools.islice(value, MAX_ITEMS + 1))
        check_items(items, f"the input of '{name}'")
        return items
    return value


def _check_join(items: Any, separator: Any) -> None:
    """The joined text's length, counted before joining (items already a bounded list)."""
    if not isinstance(items, list | tuple | set | frozenset | str):
        return
    sep = len(separator) if isinstance(separator, str) else text_size(separator, MAX_VALUE_CHARS)
    total = sep * max(len(items) - 1, 0)
    for item in items:
        if total > MAX_VALUE_CHARS:
            break
        total += len(item) if isinstance(item, str) else text_size(item, MAX_VALUE_CHARS)
    if total > MAX_VALUE_CHARS:
        raise LimitExceeded(f"the joined text would be longer than {MAX_VALUE_CHARS} characters")


def _check_sum(args: tuple, kwargs: dict) -> None:
    start = kwargs.get("start", args[2] if len(args) > 2 else 0)
    if not isinstance(start, int | float) or isinstance(start, bool):
        raise LimitExceeded("sum adds numbers only (a 'start' that is not a number is refused)")


def guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` (a Jinja2 filter, maybe taking the context/environment first) under the limits."""
    passes_arg = getattr(fn, "jinja_pass_arg", None) is not None
    at = 1 if passes_arg else 0

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        if len(args) > at:
            value = args[at]
            if name in _CONSUMING:
                value = _bounded_list(value, name)
                args = (*args[:at], value, *args[at + 1:])
            elif isinstance(value, list | tuple | set | frozenset | Mapping):
                check_items(value, f"the input of '{name}'")
            check_expanded(value, f"the input of '{name}'")  # a sort or case-fold walks all of it
            if name in _STRINGIFYING:
                check_text(value, what=f"the input of '{name}'")
            elif name == "join":
                _check_join(value, kwargs.get("d", args[at + 1] if len(args) > at + 1 else ""))
            elif name == "sum":
                _check_sum(args[at:], kwargs)
        return check_result(fn(*args, **kwargs))

    return guarded


def guard_test(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        for arg in args:  # `x is in y`, `x is sameas y`: the arguments are walked in C
            check_expanded(arg, "a tested value")
        return fn(*args, **kwargs)

    return guarded


def each(value: Any) -> Iterable[Any]:
    """What every `{% for %}` iterates (render.py wraps the loop's iterable in it): at most
    MAX_ITEMS items, the budget ticked before each."""
    check_items(value, "a loop")
    for index, item in enumerate(value):
        if index >= MAX_ITEMS:
            raise LimitExceeded(f"a loop is limited to {MAX_ITEMS} iterations")
        tick()
        yield item
