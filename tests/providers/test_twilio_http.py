"""The urllib3 client the Twilio SDK sends through (providers/twilio_http.py): the proxy and
form encoding `requests` would have used, worked out once. Sends, errors and Retry-After
through it are covered by test_twilio_sms.py against the fake."""

from __future__ import annotations

import urllib3

from providers.twilio_http import PooledTwilioHttpClient, _encode


def test_an_https_proxy_from_the_environment_is_used(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = PooledTwilioHttpClient("https://api.twilio.com", timeout=5)
    assert isinstance(client._pool, urllib3.ProxyManager)
    assert client._pool.proxy.host == "proxy.internal"


def test_no_proxy_and_no_variable_mean_a_direct_pool(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    assert not isinstance(PooledTwilioHttpClient("https://api.twilio.com", timeout=5)._pool, urllib3.ProxyManager)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not isinstance(PooledTwilioHttpClient("https://api.twilio.com", timeout=5)._pool, urllib3.ProxyManager)


def test_the_form_drops_none_and_repeats_lists_as_requests_does():
    assert _encode({"To": "+1 555", "Body": "a&b=c", "Skip": None, "StatusCallbackEvent": ["sent", "delivered"]}) \
        == "To=%2B1+555&Body=a%26b%3Dc&StatusCallbackEvent=sent&StatusCallbackEvent=delivered"
