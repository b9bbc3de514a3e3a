"""SNS signing certificates, fetched over verified HTTPS and cached, both bounded.

The SES webhook only fetches after every check that needs no network has passed (see
`providers.ses_events.verify_sns_message`), yet the URL still comes from the request: the
fetch has a short timeout and a size cap, the cache a fixed number of entries (least
recently used goes first), and any failure is `CertificateUnavailable`, which the webhook
answers with 503 so SNS retries."""

from __future__ import annotations

import threading
from collections import OrderedDict

import httpx

FETCH_TIMEOUT_SECONDS = 5.0
MAX_CERT_BYTES = 64 * 1024     # a PEM certificate is a few KiB
MAX_CACHED = 32                # SNS rotates certificates rarely; a handful of regions at most

_cache: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()


class CertificateUnavailable(Exception):
    """The certificate could not be fetched (network, HTTP status, size)."""


def _download(url: str) -> bytes:
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS, verify=True, follow_redirects=False) as resp:
            if resp.status_code != 200:
                raise CertificateUnavailable(f"certificate fetch answered HTTP {resp.status_code}")
            body = bytearray()
            for chunk in resp.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_CERT_BYTES:
                    raise CertificateUnavailable(f"certificate is larger than {MAX_CERT_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise CertificateUnavailable(f"certificate fetch failed: {type(exc).__name__}") from None


def fetch_certificate(url: str) -> bytes:
    """The default fetcher: HTTPS GET with certificate verification (that verification is
    where trust in the SNS signing certificate comes from), cached by URL."""
    with _lock:
        cached = _cache.get(url)
        if cached is not None:
            _cache.move_to_end(url)
            return cached
    body = _download(url)
    with _lock:
        _cache[url] = body
        _cache.move_to_end(url)
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return body


def cached_urls() -> list[str]:
    with _lock:
        return list(_cache)
