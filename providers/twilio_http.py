"""The HTTP client the Twilio SDK sends through: urllib3 (the connection pool under
`requests`, maintained) driven directly, in place of the SDK's `TwilioHttpClient`.

Why not the SDK's client: it runs every call through a `requests.Session` — request
preparation, hooks, and `merge_environment_settings`, which scans the whole environment
for proxy variables on each call. Profiled under the benchmark that was ~45% of a delivery's
CPU (bench/README.md); the HTTP exchange itself is a small part of it. Here what `requests`
works out per call is worked out once per provider: the proxy for the API base URL (from
the proxy variables and NO_PROXY) and the CA bundle (the `requests` variables, else
certifi's), by asking `requests` itself (`merge_environment_settings`) at construction.

Failures surface as the `requests` exceptions the SDK's own client lets through
(ConnectTimeout, ReadTimeout, ConnectionError, SSLError), so callers classify them
unchanged. The last response is kept per thread: `TwilioRestException` carries no headers,
and Retry-After lives there."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import urlencode

import certifi
import requests
import urllib3
from requests.utils import select_proxy
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

_logger = logging.getLogger("twilio.http_client")

_JSON_TYPES = ("application/json", "application/scim+json")


def _environment_settings(base_url: str) -> tuple[str | None, str]:
    """The proxy and CA bundle `requests` would use for `base_url`, from its own rules."""
    with requests.Session() as session:
        settings = session.merge_environment_settings(base_url, {}, None, None, None)
    verify = settings.get("verify")
    return select_proxy(base_url, settings.get("proxies") or {}), verify if isinstance(verify, str) else certifi.where()


class PooledTwilioHttpClient(HttpClient):
    """A `twilio.http.HttpClient` on one urllib3 pool manager, safe to share among threads."""

    def __init__(self, base_url: str, timeout: float, maxsize: int = 16) -> None:
        super().__init__(_logger, False, timeout)
        proxy, ca_certs = _environment_settings(base_url)
        options: dict[str, Any] = {"maxsize": maxsize, "block": False, "ca_certs": ca_certs,
                                   "retries": False}
        self._pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        self._local = threading.local()

    def request(self, method: str, url: str, params: dict | None = None, data: dict | None = None,
                headers: dict | None = None, auth: tuple[str, str] | None = None,
                timeout: float | None = None, allow_redirects: bool = False) -> Response:
        self._local.last = None
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        headers = dict(headers or {})
        if auth is not None:
            headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{_encode(params)}"
        body: str | None = None
        if data:
            if headers.get("Content-Type") in _JSON_TYPES:
                body = json.dumps(data)
            else:
                body = _encode(data)
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            raw = self._pool.request(method.upper(), url, body=body, headers=headers,
                                     timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                     redirect=allow_redirects, retries=False)
        except NewConnectionError as exc:  # before ConnectTimeoutError: urllib3 derives it from that
            raise requests.ConnectionError(exc) from exc
        except ConnectTimeoutError as exc:
            raise requests.ConnectTimeout(exc) from exc
        except ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc) from exc
        except Urllib3SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        except (HTTPError, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        response = Response(raw.status, raw.data.decode("utf-8", errors="replace"), raw.headers)
        self._local.last = response
        return response

    def last_header(self, name: str) -> str | None:
        response = getattr(self._local, "last", None)
        if response is None or not response.headers:
            return None
        return response.headers.get(name)


def _encode(values: dict) -> str:
    """Form/query encoding as `requests` does it: None values dropped, lists as repeated keys."""
    return urlencode([(k, v) for k, v in values.items() if v is not None], doseq=True)
