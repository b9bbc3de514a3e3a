"""APNsProvider against a local HTTP/2 + TLS APNs (tests/fakes/apns_fake.py)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `tests` is not a package; make `tests.fakes` importable
    sys.path.insert(0, str(ROOT))

from providers.apns import APNsProvider, apns_id_for  # noqa: E402
from providers.apns_errors import REASONS  # noqa: E402
from providers.apns_token import ProviderTokenCache  # noqa: E402
from providers.base import Channel, Delivery, ErrorClass, ProviderError  # noqa: E402
from tests.fakes.apns_fake import ApnsFake, new_device_token  # noqa: E402

DEVICE = new_device_token()


class FakeClock:
    """Shared by provider and fake, so an hour passes without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def clock():
    return FakeClock()


@pytest.fixture()
def fake(clock):
    with ApnsFake(clock=clock) as server:
        yield server


def make_provider(fake: ApnsFake, clock=time.time, **kwargs) -> APNsProvider:
    options = {"base_url": fake.base_url, "verify": fake.ca_file, "timeout": 2.0, "clock": clock}
    options.update(kwargs)
    return APNsProvider(fake.key_pem, fake.key_id, fake.team_id, fake.topic, **options)


@pytest.fixture()
def provider(fake, clock):
    with make_provider(fake, clock) as p:
        yield p


def delivery(**overrides) -> Delivery:
    fields = {
        "message_id": "msg-1",
        "attempt_id": "att-1",
        "channel": Channel.PUSH,
        "to": DEVICE,
        "title": "Payment failed",
        "body": "Update your card",
        "platform": "apns",
    }
    fields.update(overrides)
    return Delivery(**fields)


def send_error(provider: APNsProvider, **overrides) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.send(delivery(**overrides))
    return info.value


# -- success ---------------------------------------------------------------------------------

def test_alert_send_over_http2_with_signed_token(fake, provider, clock):
    expires = datetime.now(UTC) + timedelta(hours=1)
    result = provider.send(delivery(urgency="high", expires_at=expires, data={"order": 7},
                                    image_url="https://img.example/c.png"))

    assert result.provider == "apns"
    assert result.provider_message_id == apns_id_for("att-1")
    assert result.raw["http_version"] == "HTTP/2"

    (push,) = fake.requests
    assert push.method == "POST"
    assert push.device_token == DEVICE
    assert push.headers["apns-topic"] == fake.topic
    assert push.headers["apns-push-type"] == "alert"
    assert push.headers["apns-priority"] == "10"
    assert push.headers["apns-expiration"] == str(int(expires.timestamp()))
    assert push.headers["apns-id"] == apns_id_for("att-1")
    assert push.payload == {
        "aps": {"alert": {"title": "Payment failed", "body": "Update your card"}, "sound": "default",
                "mutable-content": 1},
        "order": 7,
        "message_id": "msg-1",
        "image_url": "https://img.example/c.png",
    }

    scheme, token = push.headers["authorization"].split(" ", 1)
    assert scheme == "bearer"
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("ES256", fake.key_id)
    claims = jwt.decode(token, fake.public_key, algorithms=["ES256"])
    assert claims == {"iss": fake.team_id, "iat": int(clock.now)}


def test_background_push_without_title_or_body(fake, provider):
    provider.send(delivery(title="", body="", data={"sync": True}))
    push = fake.requests[0]
    assert push.headers["apns-push-type"] == "background"
    assert push.headers["apns-priority"] == "5"
    assert push.headers["apns-expiration"] == "0"
    assert push.payload["aps"] == {"content-available": 1}
    assert push.payload["sync"] is True


def test_low_urgency_alert_is_power_saving(fake, provider):
    provider.send(delivery(urgency="low"))
    assert fake.requests[0].headers["apns-priority"] == "5"


def test_apns_id_is_deterministic_per_attempt():
    assert apns_id_for("att-9") == apns_id_for("att-9") != apns_id_for("att-10")


def test_custom_data_cannot_replace_aps(fake, provider):
    provider.send(delivery(data={"aps": {"badge": 99}}))
    assert "badge" not in fake.requests[0].payload["aps"]


# -- pooling and token caching ---------------------------------------------------------------

def test_one_connection_and_one_jwt_for_many_sends(fake, provider):
    for i in range(5):
        provider.send(delivery(attempt_id=f"att-{i}"))
    assert fake.connections == 1
    assert len(fake.jwts_seen) == 1


def test_concurrent_sends_share_the_connection(fake, provider):
    provider.send(delivery())   # open the connection before the threads race for it
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            provider.send(delivery(attempt_id=f"t-{n}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(fake.requests) == 9
    assert fake.connections == 1
    assert len(fake.jwts_seen) == 1


def test_jwt_cached_within_ttl_and_refreshed_after(fake, clock):
    with make_provider(fake, clock, jwt_ttl_seconds=40 * 60) as provider:
        provider.send(delivery())
        clock.advance(39 * 60)
        provider.send(delivery())
        assert len(fake.jwts_seen) == 1
        clock.advance(60)            # 40 minutes old: sign anew
        provider.send(delivery())
        assert len(fake.jwts_seen) == 2
        newest = jwt.decode(fake.jwts_seen[-1], fake.public_key, algorithms=["ES256"],
                            options={"verify_iat": False})   # iat is on the test clock
        assert newest["iat"] == int(clock.now)
        assert fake.connections == 1


@pytest.mark.parametrize("ttl", [19 * 60, 51 * 60])
def test_jwt_ttl_outside_apples_window_is_refused(fake, ttl):
    with pytest.raises(ValueError, match="ttl"):
        ProviderTokenCache(fake.key_pem, fake.key_id, fake.team_id, ttl_seconds=ttl)


def test_expired_provider_token_is_resigned_once_and_retried(fake, provider):
    provider.send(delivery())
    fake.fail_next(403, "ExpiredProviderToken")
    result = provider.send(delivery(attempt_id="att-2"))
    assert result.provider_message_id == apns_id_for("att-2")
    assert len(fake.requests) == 3
    assert len(fake.jwts_seen) == 2             # the retry carried a freshly signed token
    assert provider.tokens.signed_count == 2
    provider.send(delivery(attempt_id="att-3"))
    assert len(fake.jwts_seen) == 2             # and that token is the cached one now


def test_expired_provider_token_twice_is_configuration(fake, provider, clock):
    provider.send(delivery())
    fake.clock = lambda: clock.now + 2 * 3600   # APNs' clock runs two hours ahead of ours
    error = send_error(provider, attempt_id="att-2")
    assert (error.error_class, error.code) == (ErrorClass.CONFIGURATION, "ExpiredProviderToken")
    assert len(fake.requests) == 3              # one send, one re-signed retry, no more


# -- error classification through the wire ----------------------------------------------------

STATUS_FOR_REASON = {
    "Unregistered": 410, "ExpiredToken": 410, "TooManyRequests": 429, "TooManyProviderTokenUpdates": 429,
    "InternalServerError": 500, "ServiceUnavailable": 503, "Shutdown": 503, "PayloadTooLarge": 413,
    "BadPath": 404, "MethodNotAllowed": 405,
}


def status_for(reason: str) -> int:
    if reason in STATUS_FOR_REASON:
        return STATUS_FOR_REASON[reason]
    if REASONS[reason].error_class == ErrorClass.CONFIGURATION and "Topic" not in reason:
        return 403   # token and certificate problems; topic problems are 400s
    return 400


@pytest.mark.parametrize("reason", sorted(r for r in REASONS if r != "ExpiredProviderToken"))
def test_every_reason_in_the_table(fake, provider, reason):
    expected = REASONS[reason]
    fake.fail_next(status_for(reason), reason)
    error = send_error(provider)
    assert (error.error_class, error.code, error.deactivate_address) == (
        expected.error_class, reason, expected.deactivate_address
    )
    assert error.provider == "apns"
    assert len(fake.requests) == 1              # nothing but ExpiredProviderToken is retried here


@pytest.mark.parametrize(
    ("status", "error_class", "deactivate"),
    [(400, ErrorClass.PERMANENT, False), (403, ErrorClass.CONFIGURATION, False),
     (410, ErrorClass.PERMANENT, True), (429, ErrorClass.TRANSIENT, False),
     (500, ErrorClass.TRANSIENT, False), (502, ErrorClass.TRANSIENT, False),
     (503, ErrorClass.TRANSIENT, False)],
)
def test_unknown_reason_falls_back_on_status(fake, provider, status, error_class, deactivate):
    fake.fail_next(status, "SomethingApple2031")
    error = send_error(provider)
    assert (error.error_class, error.deactivate_address) == (error_class, deactivate)


def test_unregistered_410_deactivates_and_reports_when(fake, provider):
    fake.unregistered[DEVICE] = 1_700_000_000_000
    error = send_error(provider)
    assert (error.error_class, error.code, error.deactivate_address) == (
        ErrorClass.PERMANENT, "Unregistered", True
    )
    assert "1700000000000" in error.detail


def test_bad_device_token_from_apns_deactivates(fake, provider):
    fake.fail_next(400, "BadDeviceToken")
    error = send_error(provider)
    assert (error.error_class, error.deactivate_address) == (ErrorClass.PERMANENT, True)


def test_malformed_device_token_is_refused_before_the_wire(fake, provider):
    error = send_error(provider, to="../../3/device/x")
    assert (error.code, error.deactivate_address) == ("BadDeviceToken", True)
    assert fake.requests == []


def test_wrong_topic_is_configuration(fake):
    with APNsProvider(fake.key_pem, fake.key_id, fake.team_id, "com.example.other",
                      base_url=fake.base_url, verify=fake.ca_file) as p:
        error = send_error(p)
    assert (error.error_class, error.code) == (ErrorClass.CONFIGURATION, "BadTopic")


def test_token_signed_with_another_key_is_configuration(fake):
    with ApnsFake() as stranger:
        with APNsProvider(stranger.key_pem, fake.key_id, fake.team_id, fake.topic,
                          base_url=fake.base_url, verify=fake.ca_file) as p:
            error = send_error(p)
    assert (error.error_class, error.code) == (ErrorClass.CONFIGURATION, "InvalidProviderToken")


def test_oversized_payload_is_permanent_without_a_request(fake, provider):
    error = send_error(provider, body="x" * 5000)
    assert (error.error_class, error.code, error.deactivate_address) == (
        ErrorClass.PERMANENT, "PayloadTooLarge", False
    )
    assert fake.requests == []


def test_already_expired_delivery_is_not_sent(fake, provider):
    error = send_error(provider, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    assert error.error_class == ErrorClass.PERMANENT
    assert fake.requests == []


# -- network ---------------------------------------------------------------------------------

def test_closed_port_is_transient(fake):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with make_provider(fake, base_url=f"https://127.0.0.1:{port}") as p:
        error = send_error(p)
    assert (error.error_class, error.code) == (ErrorClass.TRANSIENT, "NETWORK_ERROR")


def test_untrusted_certificate_is_transient_network_error(fake):
    # Without the test CA the handshake fails; the orchestrator sees a network-level failure.
    with make_provider(fake, verify=True) as p:
        error = send_error(p)
    assert error.error_class == ErrorClass.TRANSIENT
    assert "SSL" in error.detail or "certificate" in error.detail.lower()


def test_timeout_is_transient(fake):
    with make_provider(fake, timeout=0.3) as p:
        fake.delay_next(3.0)  # far past the 0.3 s timeout: the bound below holds on a loaded machine
        started = time.monotonic()
        error = send_error(p)
    assert time.monotonic() - started < 2.0
    assert (error.error_class, error.code) == (ErrorClass.TRANSIENT, "TIMEOUT")


@pytest.mark.parametrize("goaway", [True, False])
def test_connection_closed_by_apns_is_reopened(fake, provider, goaway):
    provider.send(delivery())
    fake.drop_connections(goaway=goaway)
    result = provider.send(delivery(attempt_id="att-2"))
    assert result.provider_message_id == apns_id_for("att-2")
    assert fake.connections == 2


# -- configuration from the environment ------------------------------------------------------

def test_from_env(fake, tmp_path):
    assert APNsProvider.from_env({}) is None
    key_file = tmp_path / "AuthKey.p8"
    key_file.write_text(fake.key_pem)
    env = {
        "APNS_KEY_FILE": str(key_file), "APNS_KEY_ID": fake.key_id, "APNS_TEAM_ID": fake.team_id,
        "APNS_TOPIC": fake.topic, "APNS_BASE_URL": fake.base_url, "APNS_CA_FILE": fake.ca_file,
    }
    with APNsProvider.from_env(env) as p:
        assert p.send(delivery()).provider_message_id

    one_line = {**env, "APNS_KEY": fake.key_pem.replace("\n", "\\n")}
    del one_line["APNS_KEY_FILE"]
    with APNsProvider.from_env(one_line) as p:
        assert p.send(delivery()).provider_message_id

    with APNsProvider.from_env({**one_line, "APNS_BASE_URL": "", "APNS_USE_SANDBOX": "true"}) as p:
        assert p.base_url == "https://api.sandbox.push.apple.com"
    with APNsProvider.from_env({**one_line, "APNS_BASE_URL": "", "APNS_USE_SANDBOX": "false"}) as p:
        assert p.base_url == "https://api.push.apple.com"

    with pytest.raises(ValueError, match="APNS_TEAM_ID"):
        APNsProvider.from_env({**env, "APNS_TEAM_ID": ""})


def test_device_token_never_logged_in_full(fake, provider, caplog):
    fake.fail_next(400, "BadDeviceToken")
    with caplog.at_level("DEBUG", logger="providers.apns"):
        send_error(provider)
    assert caplog.records
    assert DEVICE not in caplog.text
    assert json.dumps(DEVICE) not in caplog.text


def test_an_alert_carries_the_attempt_as_collapse_id_so_a_resend_replaces_it(fake, provider):
    provider.send(delivery(attempt_id="01JATTEMPTULID000000000000"))
    provider.send(delivery(attempt_id="01JATTEMPTULID000000000000"))  # the resend of an uncertain send
    assert [r.headers["apns-collapse-id"] for r in fake.requests] == ["01JATTEMPTULID000000000000"] * 2
    provider.send(delivery(title="", body="", data={"sync": True}))
    assert "apns-collapse-id" not in fake.requests[-1].headers  # background pushes are not shown
