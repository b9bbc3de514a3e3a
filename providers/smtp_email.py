"""Email over SMTP with the standard library's `smtplib`.

One `Delivery` becomes one message to one recipient. Failures are classified from the SMTP
reply (basic reply code, refined by the RFC 3463 enhanced status code when the server sends
one) and from the stage of the conversation that failed, using the data tables below:
the orchestrator retries transient errors, moves to the next step on permanent ones and
fails over on configuration errors. Addresses are never logged in clear.
"""

from __future__ import annotations

import email.policy
import email.utils
import json
import logging
import re
import smtplib
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from .base import AttemptStatus, Channel, Delivery, ErrorClass, ProviderError, SendResult
from .email_common import (
    DEFAULT_MESSAGE_ID_DOMAIN,
    ORCHESTRATOR_ATTEMPT_ID_HEADER,
    ORCHESTRATOR_MESSAGE_ID_HEADER,
    SENDGRID_ARG_MESSAGE_ID,
    SENDGRID_ARG_PROVIDER_MESSAGE_ID,
    email_address_signal,
    make_message_id,
)
from .masking import mask_email
from .spec import ProviderSpec

log = logging.getLogger(__name__)

PROVIDER_NAME = "smtp"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"   # RFC 8058 one-click unsubscribe


class SMTPStage(StrEnum):
    """Where in the SMTP conversation a failure happened. The same 550 means "this mailbox is
    dead" after RCPT but "you may not send as this sender" after MAIL FROM."""

    CONNECT = "connect"
    HELO = "helo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


@dataclass(frozen=True)
class ReplyRule:
    error_class: ErrorClass
    deactivate_address: bool = False


_T = ReplyRule(ErrorClass.TRANSIENT)
_P = ReplyRule(ErrorClass.PERMANENT)
_P_DEAD = ReplyRule(ErrorClass.PERMANENT, deactivate_address=True)
_C = ReplyRule(ErrorClass.CONFIGURATION)

# Basic reply codes (RFC 5321 §4.2.3).
REPLY_CODE_RULES: dict[int, ReplyRule] = {
    421: _T,        # service not available, closing channel
    450: _T,        # mailbox unavailable (busy, greylisting)
    451: _T,        # local error in processing
    452: _T,        # insufficient storage / too many recipients
    454: _T,        # temporary authentication failure / TLS not available now
    530: _C,        # authentication required
    534: _C,        # authentication mechanism too weak
    535: _C,        # authentication credentials invalid
    538: _C,        # encryption required for requested authentication mechanism
    550: _P_DEAD,   # mailbox unavailable / not found
    551: _P_DEAD,   # user not local
    552: _P,        # exceeded storage allocation / message too big: the address still exists
    553: _P_DEAD,   # mailbox name not allowed (bad address syntax)
    554: _P,        # transaction failed (often content or policy): not proof the address is dead
}

# Enhanced status codes (RFC 3463), more specific than the basic code, so they win.
ENHANCED_STATUS_RULES: dict[str, ReplyRule] = {
    "5.1.1": _P_DEAD,   # bad destination mailbox address
    "5.1.2": _P_DEAD,   # bad destination system (domain does not exist)
    "5.1.3": _P_DEAD,   # bad destination mailbox address syntax
    "5.1.6": _P_DEAD,   # destination mailbox has moved
    "5.1.10": _P_DEAD,  # recipient address has null MX
    "5.2.1": _P_DEAD,   # mailbox disabled
    "5.2.2": _P,        # mailbox full: permanent for this message, the address is alive
    "5.3.4": _P,        # message too big for system
}
# Enhanced status classes by subject ("5.7" = security or policy): the sender, relay or
# authentication is not allowed, which is our configuration, not the recipient's address.
ENHANCED_SUBJECT_RULES: dict[str, ReplyRule] = {
    "5.7": _C,
}

# Before RCPT the recipient has not been named yet: a 5xx there is about us (our host,
# credentials, TLS or sender), so it is a configuration error and never deactivates the address.
SENDER_SIDE_STAGES = frozenset(
    {SMTPStage.CONNECT, SMTPStage.HELO, SMTPStage.STARTTLS, SMTPStage.AUTH, SMTPStage.MAIL}
)

_ENHANCED_CODE = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_EMAIL_IN_TEXT = re.compile(r"[^\s<>\"'()\[\],;:]+@[^\s<>\"'()\[\],;:]+")
_QUEUED_AS = re.compile(r"queued as\s+<?([^\s>]+)", re.IGNORECASE)


def enhanced_status(reply: bytes | str | None) -> str | None:
    """The RFC 3463 code at the start of a reply text, e.g. b"5.1.1 no such user" -> "5.1.1"."""
    if not reply:
        return None
    raw = reply.encode("utf-8", "replace") if isinstance(reply, str) else reply
    match = _ENHANCED_CODE.match(raw)
    if not match:
        return None
    return ".".join(part.decode() for part in match.groups())


def classify_reply(code: int, reply: bytes | str | None, stage: SMTPStage) -> ReplyRule:
    """The rule for one SMTP reply at one stage. Order: 4xx is always worth a retry; a 5xx
    before RCPT is our configuration; then the enhanced code; then the basic code; then the
    reply class (5xx permanent). Anything unparseable is treated as transient."""
    if 400 <= code < 500:
        return _T
    if 500 <= code < 600:
        if stage in SENDER_SIDE_STAGES:
            return _C
        enhanced = enhanced_status(reply)
        if enhanced:
            if enhanced in ENHANCED_STATUS_RULES:
                return ENHANCED_STATUS_RULES[enhanced]
            subject = enhanced.rsplit(".", 1)[0]
            if subject in ENHANCED_SUBJECT_RULES:
                return ENHANCED_SUBJECT_RULES[subject]
        return REPLY_CODE_RULES.get(code, _P)
    return REPLY_CODE_RULES.get(code, _T)


def mask_text(text: str) -> str:
    """Servers echo addresses back ("<jane@example.com>: Recipient address rejected")."""
    return _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)


def _reply_text(reply: bytes | str | None) -> str:
    if reply is None:
        return ""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return mask_text(" ".join(text.split()))[:500]


def _reply_error(code: int, reply: bytes | str | None, stage: SMTPStage) -> ProviderError:
    rule = classify_reply(code, reply, stage)
    enhanced = enhanced_status(reply)
    return ProviderError(
        rule.error_class,
        f"{code} {enhanced}" if enhanced else str(code),
        f"{stage}: {_reply_text(reply)}",
        provider=PROVIDER_NAME,
        deactivate_address=rule.deactivate_address,
    )


def raise_for_refused(refused: Mapping[str, tuple[int, bytes]], recipient: str) -> None:
    """`sendmail` returns {address: (code, reply)} for recipients it refused while others were
    accepted; `SMTPRecipientsRefused.recipients` has the same shape when all were refused.
    We address one recipient, so classify by that recipient's entry (or any entry if the
    server normalised the address)."""
    if not refused:
        return
    entry = refused.get(recipient)
    if entry is None:
        entry = next(iter(refused.values()))
    code, reply = entry
    raise _reply_error(code, reply, SMTPStage.RCPT)


class _RecordsDataReply:
    """Keeps the reply to DATA, which `sendmail` discards: relays put their queue id there
    ("250 2.0.0 Ok: queued as 4Zx..."), useful to correlate with the relay's own logs."""

    last_data_reply: tuple[int, bytes] | None = None

    def data(self, msg):  # type: ignore[no-untyped-def]
        code, reply = super().data(msg)  # type: ignore[misc]
        self.last_data_reply = (code, reply)
        return code, reply


class _SMTP(_RecordsDataReply, smtplib.SMTP):
    pass


class _SMTPSSL(_RecordsDataReply, smtplib.SMTP_SSL):
    pass


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _env_bool(env: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    value = env.get(name)
    if value is None or not value.strip():
        # Unset and blank mean the same (compose files often write `SMTP_STARTTLS=`): a blank
        # must not silently turn TLS off.
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


# Our Message-ID is longer than 78 characters, so the default policy would fold it onto a
# continuation line: legal, but some bounce and event parsers then miss it. Headers stored
# with `set_raw` are written as-is under refold_source="none"; all others fold as usual.
_MESSAGE_POLICY = email.policy.default.clone(refold_source="none")


def _header_url(url: str) -> str:
    """An ASCII URL safe inside <...>: spaces, <, >, CR/LF and non-ASCII are %-encoded."""
    return urllib.parse.quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%~")


def _single_line(value: str) -> str:
    # A CR/LF in a header value would be rejected by EmailMessage (or, worse, inject headers).
    return " ".join(value.splitlines()).strip()


class Env(StrEnum):
    HOST = "SMTP_HOST"
    PORT = "SMTP_PORT"                          # default 465 with SMTP_SSL, else 587
    FROM = "SMTP_FROM"                          # the sender: required with SMTP_HOST
    USERNAME = "SMTP_USERNAME"
    PASSWORD = "SMTP_PASSWORD"
    STARTTLS = "SMTP_STARTTLS"
    SSL = "SMTP_SSL"
    TIMEOUT = "SMTP_TIMEOUT"
    CA_FILE = "SMTP_CA_FILE"
    SENDGRID_SMTPAPI = "SMTP_SENDGRID_SMTPAPI"  # unset: on when the relay is SendGrid's
    MESSAGE_ID_DOMAIN = "SMTP_MESSAGE_ID_DOMAIN"


def message_id_domain(env: Mapping[str, str]) -> str:
    """The domain our Message-IDs carry: SMTP_MESSAGE_ID_DOMAIN, else the sender's domain. The
    SES receipt parser needs it even where SMTP itself is not configured."""
    _, sender_address = email.utils.parseaddr((env.get(Env.FROM) or "").strip())
    return (env.get(Env.MESSAGE_ID_DOMAIN) or "").strip() or (
        sender_address.rpartition("@")[2] or DEFAULT_MESSAGE_ID_DOMAIN)


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP_* variables, checked and typed."""

    host: str
    port: int
    sender: str
    username: str | None
    password: str | None
    starttls: bool
    use_ssl: bool
    timeout: float
    ca_file: str | None
    sendgrid_smtpapi: bool | None
    message_id_domain: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        """None when SMTP_HOST is unset (sandbox mode); ValueError naming a wrong variable."""
        host = (env.get(Env.HOST) or "").strip()
        if not host:
            return None
        sender = (env.get(Env.FROM) or "").strip()
        if not sender:
            raise ValueError("SMTP_HOST is set but SMTP_FROM is not: set SMTP_FROM to the sender address "
                             "(e.g. SMTP_FROM='Alerts <alerts@example.com>'), or unset SMTP_HOST for sandbox")
        use_ssl = bool(_env_bool(env, Env.SSL, False))
        starttls = bool(_env_bool(env, Env.STARTTLS, not use_ssl))
        port_text = (env.get(Env.PORT) or "").strip()
        try:
            port = int(port_text) if port_text else (465 if use_ssl else 587)
        except ValueError:
            raise ValueError(f"SMTP_PORT must be a number, got {port_text!r}") from None
        return cls(host, port, sender, username=env.get(Env.USERNAME) or None,
                   password=env.get(Env.PASSWORD) or None, starttls=starttls, use_ssl=use_ssl,
                   timeout=_env_timeout((env.get(Env.TIMEOUT) or "").strip()),
                   ca_file=(env.get(Env.CA_FILE) or "").strip() or None,
                   sendgrid_smtpapi=_env_bool(env, Env.SENDGRID_SMTPAPI, None),   # None: auto by host
                   message_id_domain=message_id_domain(env))

    def __repr__(self) -> str:  # never show the password
        return f"SmtpSettings(host={self.host!r}, port={self.port!r})"


class SMTPEmailProvider:
    name = PROVIDER_NAME
    channel = Channel.EMAIL

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        use_ssl: bool = False,
        sender: str,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        message_id_domain: str = DEFAULT_MESSAGE_ID_DOMAIN,
        sendgrid_smtpapi: bool | None = None,
    ) -> None:
        if starttls and use_ssl:
            raise ValueError("choose STARTTLS or implicit TLS (use_ssl), not both")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password go together")
        if not sender or "@" not in sender:
            raise ValueError("sender must be an email address")
        if username and not (starttls or use_ssl):
            log.warning("smtp: credentials will be sent without TLS to %s:%s", host, port)
        self.host = host
        self.port = int(port)
        self.username = username
        self.password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.sender = sender
        self.timeout = float(timeout)
        # Verifying the server certificate is the default; SMTP_CA_FILE adds a private CA.
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.message_id_domain = message_id_domain
        # SendGrid's relay reads custom args from X-SMTPAPI and echoes them on every event, so
        # opens and clicks (which carry no Message-ID) still map back to the attempt.
        # None = on when the relay is SendGrid's; the header is stripped by SendGrid.
        if sendgrid_smtpapi is None:
            sendgrid_smtpapi = host.lower().rstrip(".").endswith("sendgrid.net")
        self.sendgrid_smtpapi = sendgrid_smtpapi

    @classmethod
    def from_settings(cls, settings: SmtpSettings) -> SMTPEmailProvider:
        context = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else None
        return cls(settings.host, settings.port, username=settings.username, password=settings.password,
                   starttls=settings.starttls, use_ssl=settings.use_ssl, sender=settings.sender,
                   timeout=settings.timeout, ssl_context=context, message_id_domain=settings.message_id_domain,
                   sendgrid_smtpapi=settings.sendgrid_smtpapi)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SMTPEmailProvider | None:
        """Build from SMTP_* variables; None when SMTP_HOST is unset (sandbox mode)."""
        settings = SmtpSettings.from_env(env)
        return cls.from_settings(settings) if settings is not None else None

    # -- building -------------------------------------------------------------------------

    def build_message(self, delivery: Delivery) -> EmailMessage:
        """The message for one delivery: text/plain, or multipart/alternative with HTML."""
        message_id = make_message_id(delivery.attempt_id, delivery.message_id, self.message_id_domain)
        msg = EmailMessage(policy=_MESSAGE_POLICY)
        msg["From"] = self.sender
        msg["To"] = delivery.to
        msg["Subject"] = _single_line(delivery.title)
        if delivery.reply_to:
            msg["Reply-To"] = _single_line(delivery.reply_to)
        msg["Date"] = email.utils.formatdate(usegmt=True)
        # Bounces and provider events quote the Message-ID: it carries both of our ids.
        msg.set_raw("Message-ID", message_id.header_value)
        msg[ORCHESTRATOR_MESSAGE_ID_HEADER] = delivery.message_id
        msg[ORCHESTRATOR_ATTEMPT_ID_HEADER] = delivery.attempt_id
        if self.sendgrid_smtpapi:
            unique_args = {
                SENDGRID_ARG_MESSAGE_ID: delivery.message_id,
                SENDGRID_ARG_PROVIDER_MESSAGE_ID: message_id.bare,
            }
            msg.set_raw("X-SMTPAPI", json.dumps({"unique_args": unique_args}, separators=(",", ":")))
        if delivery.marketing and delivery.unsubscribe_url:
            # RFC 2369 + RFC 8058: bulk senders must offer one-click unsubscribe.
            # Written raw: the default folding turns a long URL into RFC 2047 encoded-words,
            # which mailbox providers do not decode in this header (the button disappears).
            msg.set_raw("List-Unsubscribe", f"<{_header_url(delivery.unsubscribe_url)}>")
            msg["List-Unsubscribe-Post"] = LIST_UNSUBSCRIBE_POST
        msg.set_content(delivery.body or "")
        if delivery.html:
            msg.add_alternative(delivery.html, subtype="html")
        return msg

    # -- sending --------------------------------------------------------------------------

    def send(self, delivery: Delivery) -> SendResult:
        if delivery.channel != Channel.EMAIL:
            raise ValueError(f"{self.name} sends email, not {delivery.channel}")
        _, recipient = email.utils.parseaddr(delivery.to)
        if "@" not in recipient or any(c in delivery.to for c in "\r\n"):
            raise ProviderError(
                ErrorClass.PERMANENT,
                "invalid_address",
                "recipient is not an email address",
                provider=self.name,
                deactivate_address=True,
            )
        msg = self.build_message(delivery)
        provider_message_id = msg["Message-ID"].strip("<>")
        data_reply = self._transmit(msg, recipient)
        log.info(
            "smtp: sent message %s attempt %s to %s",
            delivery.message_id,
            delivery.attempt_id,
            mask_email(recipient),
        )
        raw: dict[str, Any] = {"host": self.host, "port": self.port}
        if data_reply is not None:
            reply_text = _reply_text(data_reply[1])
            raw["smtp_reply"] = f"{data_reply[0]} {reply_text}"
            queued = _QUEUED_AS.search(reply_text)
            if queued:
                raw["queue_id"] = queued.group(1)
        return SendResult(
            provider=self.name,
            provider_message_id=provider_message_id,
            status=AttemptStatus.SENT,
            raw=raw,
        )

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return _SMTPSSL(self.host, self.port, timeout=self.timeout, context=self.ssl_context)
        return _SMTP(self.host, self.port, timeout=self.timeout)

    def _transmit(self, msg: EmailMessage, recipient: str) -> tuple[int, bytes] | None:
        """Run the SMTP conversation; translate every failure into a classified ProviderError."""
        stage = SMTPStage.CONNECT
        try:
            with self._connect() as smtp:
                stage = SMTPStage.HELO
                smtp.ehlo()
                if self.starttls:
                    stage = SMTPStage.STARTTLS
                    # Raises SMTPNotSupportedError when the server lacks STARTTLS: we never
                    # fall back to plain text, because credentials and content would leak.
                    smtp.starttls(context=self.ssl_context)
                    smtp.ehlo()
                if self.username is not None:
                    stage = SMTPStage.AUTH
                    smtp.login(self.username, self.password or "")
                stage = SMTPStage.MAIL
                refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=[recipient])
                raise_for_refused(refused, recipient)
                return smtp.last_data_reply  # type: ignore[attr-defined]
        except ProviderError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            raise_for_refused(exc.recipients, recipient)
            raise _transient("recipients_refused", SMTPStage.RCPT, "no refusal detail") from exc
        except smtplib.SMTPSenderRefused as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, SMTPStage.MAIL) from exc
        except smtplib.SMTPDataError as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, SMTPStage.DATA) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, SMTPStage.AUTH) from exc
        except smtplib.SMTPConnectError as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, SMTPStage.CONNECT) from exc
        except smtplib.SMTPHeloError as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, SMTPStage.HELO) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, stage) from exc
        except smtplib.SMTPNotSupportedError as exc:
            # STARTTLS or AUTH required by our settings but not offered by the server.
            raise ProviderError(
                ErrorClass.CONFIGURATION,
                "not_supported",
                f"{stage}: {mask_text(str(exc))}",
                provider=self.name,
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib turns a read timeout into "disconnected"; keep the cause visible.
            code = "timeout" if isinstance(exc.__context__, TimeoutError) else "disconnected"
            raise _transient(code, stage, str(exc)) from exc
        except ssl.SSLCertVerificationError as exc:
            # The server's certificate is not trusted: retrying cannot fix a trust setting.
            raise ProviderError(
                ErrorClass.CONFIGURATION,
                "tls_verify_failed",
                f"{stage}: {exc.verify_message or exc}",
                provider=self.name,
            ) from exc
        except TimeoutError as exc:   # socket.timeout is an alias since 3.10
            raise _transient("timeout", stage, str(exc)) from exc
        except ConnectionRefusedError as exc:
            raise _transient("connection_refused", stage, str(exc)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # DNS failures, resets, TLS EOFs, other protocol hiccups: worth a retry.
            raise _transient(type(exc).__name__, stage, mask_text(str(exc))) from exc


def _transient(code: str, stage: SMTPStage, detail: str) -> ProviderError:
    return ProviderError(ErrorClass.TRANSIENT, code, f"{stage}: {detail}"[:500], provider=PROVIDER_NAME)


def _env_timeout(text: str) -> float:
    if not text:
        return 10.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"SMTP_TIMEOUT must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"SMTP_TIMEOUT must be positive, got {text!r}")
    return value


SPEC = ProviderSpec(name=PROVIDER_NAME, channel=Channel.EMAIL, rank=20, settings=SmtpSettings.from_env,
                    build=SMTPEmailProvider.from_settings, signals=email_address_signal)
