"""Document values quoted in lint and error messages, bounded.

A policy document is untrusted text, and a value may be long (a 50,000-character string, a
list of thousands): quoted whole with `!r` in each error that mentions it, it would make
answers of hundreds of MB. `quote` is `repr` cut to about MAX_CHARS characters (reprlib
abbreviates long strings in the middle and long lists and mappings after a few items)."""

from __future__ import annotations

import reprlib
from typing import Any

MAX_CHARS = 80

_REPR = reprlib.Repr()
_REPR.maxstring = MAX_CHARS
_REPR.maxother = MAX_CHARS
_REPR.maxlong = MAX_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 6
_REPR.maxdict = 4
_REPR.maxlevel = 3


def quote(value: Any) -> str:
    """`repr(value)`, at most about MAX_CHARS characters per string and a few items per list."""
    text = _REPR.repr(value)
    # reprlib bounds each string and the number of items, not the sum: cut the whole too.
    return text if len(text) <= 4 * MAX_CHARS else text[:4 * MAX_CHARS] + "..."
