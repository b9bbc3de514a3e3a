"""A local APNs: HTTP/2 over TLS (ALPN "h2") with a test CA generated at start-up.

Built on the `h2` state machine over a threaded socket server, one thread per connection.
It checks what Apple checks — the ES256 provider token (kid, iss, signature, iat not older
than an hour), apns-topic, apns-push-type, priority, payload size, device token shape — and
answers like Apple: 200 with `apns-id`, or a status with `{"reason": ...}` (410 adds
"timestamp"). Failures can be scripted. It counts connections and distinct JWTs, so tests
can prove pooling and token caching.

    with ApnsFake() as fake:
        provider = APNsProvider(fake.key_pem, fake.key_id, fake.team_id, fake.topic,
                                base_url=fake.base_url, verify=fake.ca_file)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import socket
import socketserver
import ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEVICE_PATH = re.compile(r"^/3/device/(?P<token>[^/?]+)$")
HEX = re.compile(r"[0-9A-Fa-f]{16,512}")
PUSH_TYPES = frozenset({"alert", "background", "voip", "complication", "fileprovider", "mdm",
                        "location", "liveactivity", "pushtotalk", "controls", "widgets"})
PRIORITIES = frozenset({"1", "5", "10"})
MAX_PAYLOAD_BYTES = 4096
TOKEN_MAX_AGE = 3600        # APNs: ExpiredProviderToken after an hour
TOKEN_FUTURE_SKEW = 60


@dataclass
class RecordedPush:
    method: str
    path: str
    device_token: str | None
    headers: dict[str, str]
    payload: Any
    connection: int
    at: float


@dataclass
class Scripted:
    status: int
    reason: str | None
    delay: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _write_test_pki(directory: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apns-fake test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = os.path.join(directory, "ca.pem")
    cert_path = os.path.join(directory, "server.pem")
    key_path = os.path.join(directory, "server.key")
    with open(ca_path, "wb") as fh:
        fh.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(cert_path, "wb") as fh:
        fh.write(server_cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_path, cert_path, key_path


class ApnsFake:
    def __init__(
        self,
        *,
        key_id: str = "KEYID12345",
        team_id: str = "TEAMID6789",
        topic: str = "com.example.app",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self.clock = clock   # what "now" is for iat checks; share the provider's fake clock
        # The .p8 equivalent: an EC P-256 key in PKCS#8 PEM.
        self._signing_key = ec.generate_private_key(ec.SECP256R1())
        self.key_pem = self._signing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.public_key = self._signing_key.public_key()
        self.requests: list[RecordedPush] = []
        self.jwts_seen: list[str] = []           # distinct tokens, in order first seen
        self.connections = 0
        self.unregistered: dict[str, int] = {}   # device token -> ms timestamp it died
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._live: dict[socket.socket, h2.connection.H2Connection] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="apns-fake-")
        self.ca_file, cert_file, key_file = _write_test_pki(self._tmp.name)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._tls.load_cert_chain(cert_file, key_file)
        self._tls.set_alpn_protocols(["h2"])
        self._server: _Server | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ApnsFake:
        self._server = _Server(("127.0.0.1", 0), _Connection)
        self._server.fake = self
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="apns-fake")
        thread.daemon = True
        thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.drop_connections()
        self._tmp.cleanup()

    def __enter__(self) -> ApnsFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ---------------------------------------------------------------------------
    def fail_next(self, status: int, reason: str | None, *, times: int = 1, **extra: Any) -> None:
        """The next `times` pushes answer `status` with `{"reason": reason, **extra}`."""
        with self._lock:
            self._script.extend(Scripted(status, reason, extra=extra) for _ in range(times))

    def delay_next(self, seconds: float) -> None:
        with self._lock:
            self._script.append(Scripted(200, None, delay=seconds))

    def drop_connections(self, *, goaway: bool = True) -> None:
        """Close every client connection, as APNs does when it recycles a server: GOAWAY
        first (unless `goaway` is False: a connection that just dies), then the socket."""
        with self._lock:
            live, self._live = list(self._live.items()), {}
        for sock, conn in live:
            try:
                if goaway:
                    conn.close_connection()
                    sock.sendall(conn.data_to_send())
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            # No close() here: the connection's own thread closes it when its recv() sees the
            # shutdown. Closing from this thread freed the fd while that thread still read it,
            # and the next accepted connection could get the same fd number: the old thread
            # then swallowed the new client's TLS handshake (a flaky WRONG_VERSION_NUMBER).

    # -- one request (called on connection threads) ------------------------------------------
    def _check_jwt(self, authorization: str | None) -> str | None:
        """The APNs reason for a bad provider token, or None when it is good."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return "MissingProviderToken"
        token = authorization[len("bearer "):]
        with self._lock:
            if token not in self.jwts_seen:
                self.jwts_seen.append(token)
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"],
                                options={"require": ["iss", "iat"], "verify_iat": False})
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return "InvalidProviderToken"
        age = self.clock() - claims["iat"]
        if age > TOKEN_MAX_AGE:
            return "ExpiredProviderToken"
        if age < -TOKEN_FUTURE_SKEW:
            return "InvalidProviderToken"
        return None

    def _check_request(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """(status, reason, extra) for a request that passed the token check."""
        match = DEVICE_PATH.match(path)
        if method != "POST":
            return 405, "MethodNotAllowed", {}
        if not match:
            return 404, "BadPath", {}
        if not headers.get("apns-topic"):
            return 400, "MissingTopic", {}
        if headers["apns-topic"] != self.topic:
            return 400, "BadTopic", {}
        push_type = headers.get("apns-push-type")
        if push_type not in PUSH_TYPES:
            return 400, "InvalidPushType", {}
        priority = headers.get("apns-priority", "10")
        if priority not in PRIORITIES or (push_type == "background" and priority != "5"):
            return 400, "BadPriority", {}
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate", {}
        if "apns-id" in headers:
            try:
                uuid.UUID(headers["apns-id"])
            except ValueError:
                return 400, "BadMessageId", {}
        if not body:
            return 400, "PayloadEmpty", {}
        if len(body) > MAX_PAYLOAD_BYTES:
            return 413, "PayloadTooLarge", {}
        device = match["token"]
        if not HEX.fullmatch(device):
            return 400, "BadDeviceToken", {}
        if device in self.unregistered:
            return 410, "Unregistered", {"timestamp": self.unregistered[device]}
        return 200, None, {}

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, connection: int):
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        match = DEVICE_PATH.match(path)
        with self._lock:
            self.requests.append(RecordedPush(method, path, match["token"] if match else None,
                                              headers, payload, connection, time.time()))
            scripted = self._script.popleft() if self._script else None
        bad_token = self._check_jwt(headers.get("authorization"))
        if scripted is not None and scripted.delay:
            time.sleep(scripted.delay)
            scripted = None
        if scripted is not None:
            status, reason, extra = scripted.status, scripted.reason, scripted.extra
        elif bad_token:
            status, reason, extra = 403, bad_token, {}
        else:
            status, reason, extra = self._check_request(method, path, headers, body)
        response_headers = [("apns-id", headers.get("apns-id") or str(uuid.uuid4()))]
        if status == 200:
            return status, response_headers, b""
        body_out = json.dumps({"reason": reason, **extra} if reason else extra).encode()
        response_headers += [("content-type", "application/json"), ("content-length", str(len(body_out)))]
        return status, response_headers, body_out

    def _connected(self, sock: socket.socket, conn: h2.connection.H2Connection) -> int:
        with self._lock:
            self.connections += 1
            self._live[sock] = conn
            return self.connections

    def _disconnected(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.pop(sock, None)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    fake: ApnsFake


class _Connection(socketserver.BaseRequestHandler):
    """One TLS + HTTP/2 connection; streams are answered in the order they complete."""

    server: _Server

    def handle(self) -> None:
        fake = self.server.fake
        try:
            sock = fake._tls.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        if sock.selected_alpn_protocol() != "h2":
            sock.close()
            return
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config)
        number = fake._connected(sock, conn)
        try:
            self._serve(fake, sock, conn, number)
        except (OSError, h2.exceptions.ProtocolError):
            pass   # client went away or was dropped by drop_connections()
        finally:
            fake._disconnected(sock)
            sock.close()

    @staticmethod
    def _serve(fake: ApnsFake, sock: ssl.SSLSocket, conn: h2.connection.H2Connection, number: int) -> None:
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        while True:
            data = sock.recv(65535)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = (dict(event.headers), bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    headers, body = streams.pop(event.stream_id)
                    method, path = headers.pop(":method", ""), headers.pop(":path", "")
                    status, out_headers, out_body = fake.handle(method, path, headers, bytes(body), number)
                    conn.send_headers(event.stream_id, [(":status", str(status)), *out_headers],
                                      end_stream=not out_body)
                    if out_body:
                        conn.send_data(event.stream_id, out_body, end_stream=True)
                elif isinstance(event, h2.events.StreamReset):
                    streams.pop(event.stream_id, None)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            out = conn.data_to_send()
            if out:
                sock.sendall(out)


def new_device_token() -> str:
    return secrets.token_hex(32)
