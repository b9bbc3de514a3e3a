"""A real SMTP server for tests (aiosmtpd), scriptable to fail the way real relays do.

    with SMTPFake(tls=True, credentials={"user": "secret"}) as fake:
        provider = SMTPEmailProvider(fake.host, fake.port, username="user", password="secret",
                                     sender="app@example.com", ssl_context=fake.client_ssl_context())
        fake.script_next("451 4.3.0 try later", at="DATA")
        fake.refuse_recipient("gone@example.com")             # 550 5.1.1 for that address
        fake.refuse_sender()                                  # 550 5.7.1 on MAIL FROM

TLS uses a CA generated at runtime (`TestCA`), so clients verify certificates for real.
`TestCA` also issues certificates for other tests (e.g. SNS signing certificates).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import tempfile
import threading
import warnings
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

STAGES = ("MAIL", "RCPT", "DATA")
DISCONNECT = "DISCONNECT"   # script value: drop the connection instead of replying

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TestCA:
    """A throwaway certificate authority: a root plus leaf certificates it signs."""

    __test__ = False   # not a pytest test class despite the name

    def __init__(self, common_name: str = "Orchestrator Test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
        key: PrivateKey | None = None,
        server_auth: bool = True,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> tuple[x509.Certificate, PrivateKey]:
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(days=1))
            .not_valid_after(not_after or now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if server_auth:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(self.key, hashes.SHA256()), key

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        return ssl.create_default_context(cadata=self.cert_pem.decode())

    def write_pem(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.cert_pem)
        return path


_shared_ca: TestCA | None = None
_shared_lock = threading.Lock()


def shared_ca() -> TestCA:
    """One CA per test process: key generation is the slow part of TLS set-up."""
    global _shared_ca
    with _shared_lock:
        if _shared_ca is None:
            _shared_ca = TestCA()
        return _shared_ca


def free_port(host: str = "127.0.0.1") -> int:
    # aiosmtpd's Controller connects to its own port to start, so it cannot bind port 0.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    tls: bool
    authenticated_as: str | None


@dataclass
class _Script:
    once: dict[str, deque[str]] = field(default_factory=lambda: {s: deque() for s in STAGES})
    recipients: dict[str, str] = field(default_factory=dict)   # lower-cased address -> reply
    sender_reply: str | None = None


class _Handler:
    def __init__(self, fake: SMTPFake) -> None:
        self.fake = fake

    def _scripted(self, server: Any, stage: str) -> str | None:
        with self.fake._lock:
            queue = self.fake._script.once[stage]
            reply = queue.popleft() if queue else None
        if reply == DISCONNECT:
            server.transport.close()
            return "421 4.4.2 closing connection"   # never reaches the client: transport is gone
        return reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        reply = self._scripted(server, "MAIL") or self.fake._script.sender_reply
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self._scripted(server, "RCPT")
        if reply:
            return reply
        refused = self.fake._script.recipients.get(address.lower())
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        reply = self._scripted(server, "DATA")
        if reply:
            return reply
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            message=parsed,  # type: ignore[arg-type]
            # session.ssl covers STARTTLS; the transport covers implicit TLS.
            tls=session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            authenticated_as=login if session.authenticated else None,
        )
        with self.fake._lock:
            self.fake.received.append(received)
            self.fake._queue_counter += 1
            queue_id = f"FAKE{self.fake._queue_counter:06d}"
        return f"250 2.0.0 Ok: queued as {queue_id}"


class _Controller(Controller):
    def factory(self):  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            # aiosmtpd warns about AUTH without STARTTLS on every connection; under implicit
            # TLS (the only case where we relax it) the channel is encrypted anyway.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return super().factory()


class SMTPFake:
    """aiosmtpd on 127.0.0.1 and a free port. `tls` offers STARTTLS; `implicit_tls` speaks TLS
    from the first byte (port-465 style); `credentials` enables AUTH PLAIN/LOGIN and makes it
    mandatory before MAIL FROM (530 5.7.0 otherwise)."""

    def __init__(
        self,
        *,
        tls: bool = False,
        implicit_tls: bool = False,
        credentials: dict[str, str] | None = None,
        auth_require_tls: bool = True,
        ca: TestCA | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self.ca = ca or shared_ca()
        self.credentials = dict(credentials or {})
        self.received: list[ReceivedMessage] = []
        self.auth_attempts: list[tuple[str, str, bool]] = []   # (mechanism, login, success)
        self._lock = threading.Lock()
        self._script = _Script()
        self._queue_counter = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="smtp-fake-")
        server_ctx = self._server_context() if (tls or implicit_tls) else None
        kwargs: dict[str, Any] = {"hostname": host, "port": self.port, "server_hostname": "fake.smtp.test"}
        if tls:
            kwargs["tls_context"] = server_ctx
        if implicit_tls:
            kwargs["ssl_context"] = server_ctx
        if credentials is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # With implicit TLS aiosmtpd does not know the socket is encrypted (it only
                # tracks STARTTLS), so its "AUTH only over TLS" check must be relaxed there.
                auth_require_tls=auth_require_tls and not implicit_tls,
            )
        self.controller = _Controller(_Handler(self), **kwargs)

    # -- TLS ------------------------------------------------------------------------------

    def _server_context(self) -> ssl.SSLContext:
        cert, key = self.ca.issue("fake.smtp.test", dns_names=("localhost",), ip_addresses=(self.host,))
        cert_path = Path(self._tmp.name, "server.pem")
        key_path = Path(self._tmp.name, "server.key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        return self.ca.client_context()

    def write_ca_file(self, path: str | Path | None = None) -> Path:
        return self.ca.write_pem(path or Path(self._tmp.name, "ca.pem"))

    # -- auth -----------------------------------------------------------------------------

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        ok = self.credentials.get(login) == auth_data.password.decode("utf-8", "replace")
        with self._lock:
            self.auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    # -- scripting ------------------------------------------------------------------------

    def script_next(self, reply: str, *, at: str = "MAIL") -> None:
        """Answer the next `at` command (MAIL, RCPT or DATA) with `reply`, once.
        `reply` may be DISCONNECT to drop the connection at that point."""
        stage = at.upper()
        if stage not in STAGES:
            raise ValueError(f"at must be one of {STAGES}")
        with self._lock:
            self._script.once[stage].append(reply)

    def refuse_recipient(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        with self._lock:
            self._script.recipients[address.lower()] = reply

    def refuse_sender(self, reply: str | None = "550 5.7.1 Sender address not allowed") -> None:
        """Refuse every MAIL FROM with `reply` until called with None."""
        with self._lock:
            self._script.sender_reply = reply

    def reset(self) -> None:
        with self._lock:
            self._script = _Script()
            self.received.clear()
            self.auth_attempts.clear()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SMTPFake:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
        self._tmp.cleanup()

    def __enter__(self) -> SMTPFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
