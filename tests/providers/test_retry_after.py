"""The one Retry-After reader (providers/retry_after.py): seconds or HTTP-date, never negative,
never more than the cap, None for anything else."""

from __future__ import annotations

import email.utils

import pytest

from providers.retry_after import MAX_RETRY_AFTER_SECONDS, parse_retry_after

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(("value", "expected"), [
    ("7", 7.0),
    (" 120 ", 120.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("3599", 3599.0),
    ("3601", MAX_RETRY_AFTER_SECONDS),                # over the cap: the cap
    ("99999999999999999999", MAX_RETRY_AFTER_SECONDS),
    ("9" * 400, MAX_RETRY_AFTER_SECONDS),            # float() of this is inf
    ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),         # HTTP-date, 30 s from now
    ("Wed, 21 Oct 2015 07:28:30 -0000", 30.0),       # no zone claimed: UTC
    ("Wed, 21 Oct 2015 09:28:30 +0200", 30.0),
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),          # in the past: retry now
    ("Wed, 21 Oct 2015 09:28:00 GMT", MAX_RETRY_AFTER_SECONDS),
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER_SECONDS),
    (None, None),
    ("", None),
    ("   ", None),
    ("nan", None),
    ("NaN", None),
    ("inf", None),
    ("-inf", None),
    ("-5", None),
    ("-0.5", None),
    ("+5", None),
    ("1e3", None),
    ("5s", None),
    ("soon", None),
    ("Wed, 32 Oct 2015 07:28:00 GMT", None),
    ("Wed, 21 Foo 2015 07:28:00 GMT", None),
    ("\x00\xff", None),
    (7, None),                                       # not a header value
    (b"7", None),
])
def test_values(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(("value", "cap", "expected"), [
    ("7", 30.0, 7.0),
    ("3600", 30.0, 30.0),
    ("Wed, 21 Oct 2015 08:28:00 GMT", 30.0, 30.0),
    ("90000", 86400.0, 86400.0),
])
def test_cap(value, cap, expected):
    assert parse_retry_after(value, cap=cap, now=NOW) == expected


def test_http_date_counts_from_the_clock():
    soon = email.utils.formatdate(NOW + 10, usegmt=True)
    assert parse_retry_after(soon, now=NOW) == 10.0
    assert parse_retry_after(soon, now=NOW + 4) == 6.0
    assert 0.0 <= parse_retry_after(email.utils.formatdate(usegmt=True)) <= 1.0  # default: now
