"""SMTP provider against a real SMTP server (aiosmtpd) speaking STARTTLS and AUTH."""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import ssl

import pytest

from providers.base import AttemptStatus, Channel, Delivery, ErrorClass, ProviderError
from providers.email_common import parse_message_id
from providers.masking import mask_email
from providers.smtp_email import SMTPEmailProvider, SMTPStage, classify_reply, raise_for_refused
from tests.fakes.smtp_fake import DISCONNECT, SMTPFake, free_port

USER, PASSWORD = "relay-user", "relay-pass"
SENDER = "notify@example.org"
TO = "jane@example.com"


def delivery(**overrides) -> Delivery:
    fields = {
        "message_id": "01JMSG0000000000000000000A",
        "attempt_id": "01JATT0000000000000000000B",
        "channel": Channel.EMAIL,
        "to": TO,
        "title": "Your receipt",
        "body": "Thanks for your order.",
    }
    fields.update(overrides)
    return Delivery(**fields)


@pytest.fixture(scope="module")
def fake():
    with SMTPFake(tls=True, credentials={USER: PASSWORD}) as server:
        yield server


@pytest.fixture()
def smtp(fake):
    fake.reset()
    return fake


def provider_for(fake: SMTPFake, **overrides) -> SMTPEmailProvider:
    kwargs = {
        "username": USER,
        "password": PASSWORD,
        "sender": SENDER,
        "timeout": 5.0,
        "ssl_context": fake.client_ssl_context(),
        "message_id_domain": "mail.example.org",
    }
    kwargs.update(overrides)
    return SMTPEmailProvider(fake.host, fake.port, **kwargs)


def expect_error(provider: SMTPEmailProvider, d: Delivery | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.send(d or delivery())
    assert info.value.provider == "smtp"
    return info.value


# -- success ------------------------------------------------------------------------------


def test_send_over_starttls_with_login_delivers_multipart(smtp):
    result = provider_for(smtp).send(delivery(html="<p>Thanks for your order.</p>"))

    assert result.status == AttemptStatus.SENT
    assert result.provider == "smtp"
    expected_id = "01JATT0000000000000000000B.01JMSG0000000000000000000A@mail.example.org"
    assert result.provider_message_id == expected_id
    assert result.raw["queue_id"].startswith("FAKE")
    [got] = smtp.received
    assert got.tls is True
    assert got.authenticated_as == USER
    assert got.mail_from == SENDER
    assert got.rcpt_tos == [TO]
    msg = got.message
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("plain",)).get_content().strip() == "Thanks for your order."
    assert msg.get_body(("html",)).get_content().strip() == "<p>Thanks for your order.</p>"
    assert msg["Message-ID"] == f"<{result.provider_message_id}>"
    assert msg["X-Orchestrator-Message-Id"] == "01JMSG0000000000000000000A"
    assert msg["Subject"] == "Your receipt"
    assert msg["List-Unsubscribe"] is None
    ids = parse_message_id(msg["Message-ID"], domain="mail.example.org")
    assert (ids.attempt_id, ids.message_id) == ("01JATT0000000000000000000B", "01JMSG0000000000000000000A")


def test_text_only_without_html(smtp):
    provider_for(smtp).send(delivery())
    msg = smtp.received[-1].message
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().strip() == "Thanks for your order."


@pytest.mark.parametrize(
    ("marketing", "url", "expected"),
    [
        (True, "https://example.org/u/abc", "<https://example.org/u/abc>"),
        (False, "https://example.org/u/abc", None),   # transactional mail: no unsubscribe header
        (True, None, None),
    ],
)
def test_list_unsubscribe_only_on_marketing(smtp, marketing, url, expected):
    provider_for(smtp).send(delivery(marketing=marketing, unsubscribe_url=url))
    msg = smtp.received[-1].message
    assert msg["List-Unsubscribe"] == expected
    assert msg["List-Unsubscribe-Post"] == ("List-Unsubscribe=One-Click" if expected else None)


def test_long_unsubscribe_url_stays_a_plain_header(smtp):
    url = "https://example.org/unsubscribe?token=" + "a" * 150 + "&list=weekly"
    provider_for(smtp).send(delivery(marketing=True, unsubscribe_url=url + "\r\nBcc: x@example.net"))
    raw = smtp.received[-1].raw.decode()
    assert f"List-Unsubscribe: <{url}%0D%0ABcc:%20x@example.net>\r\n" in raw   # no encoded-words
    assert smtp.received[-1].message["Bcc"] is None


def test_ids_in_headers_and_sendgrid_custom_args(smtp):
    provider_for(smtp, sendgrid_smtpapi=True).send(delivery())
    msg = smtp.received[-1].message
    assert msg["X-Orchestrator-Attempt-Id"] == "01JATT0000000000000000000B"
    assert json.loads(msg["X-SMTPAPI"]) == {"unique_args": {
        "orchestrator_message_id": "01JMSG0000000000000000000A",
        "orchestrator_provider_message_id": msg["Message-ID"].strip("<>"),
    }}
    provider_for(smtp).send(delivery())   # off by default for a relay that is not SendGrid's
    assert smtp.received[-1].message["X-SMTPAPI"] is None
    assert SMTPEmailProvider("smtp.sendgrid.net", sender=SENDER).sendgrid_smtpapi is True


def test_header_injection_in_title_is_flattened(smtp):
    provider_for(smtp).send(delivery(title="Hello\r\nBcc: victim@example.net"))
    msg = smtp.received[-1].message
    assert msg["Bcc"] is None
    assert smtp.received[-1].rcpt_tos == [TO]


def test_implicit_tls_send():
    with SMTPFake(implicit_tls=True, credentials={USER: PASSWORD}) as fake:
        provider = provider_for(fake, starttls=False, use_ssl=True)
        provider.send(delivery())
        assert fake.received[-1].tls is True


# -- error classification via the wire --------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "reply", "error_class", "deactivate", "code"),
    [
        ("MAIL", "421 4.3.2 Service shutting down", ErrorClass.TRANSIENT, False, "421 4.3.2"),
        ("RCPT", "450 4.2.1 Mailbox busy", ErrorClass.TRANSIENT, False, "450 4.2.1"),
        ("DATA", "451 4.3.0 Try again later", ErrorClass.TRANSIENT, False, "451 4.3.0"),
        ("RCPT", "452 4.5.3 Too many recipients", ErrorClass.TRANSIENT, False, "452 4.5.3"),
        ("RCPT", "550 5.1.1 No such user", ErrorClass.PERMANENT, True, "550 5.1.1"),
        ("RCPT", "550 Mailbox unavailable", ErrorClass.PERMANENT, True, "550"),
        ("RCPT", "551 5.1.6 User not local", ErrorClass.PERMANENT, True, "551 5.1.6"),
        ("RCPT", "553 5.1.3 Bad address syntax", ErrorClass.PERMANENT, True, "553 5.1.3"),
        ("DATA", "552 5.3.4 Message too big", ErrorClass.PERMANENT, False, "552 5.3.4"),
        ("DATA", "552 5.2.2 Mailbox full", ErrorClass.PERMANENT, False, "552 5.2.2"),
        ("DATA", "554 5.6.0 Transaction failed", ErrorClass.PERMANENT, False, "554 5.6.0"),
        ("MAIL", "550 5.7.1 Sender not allowed", ErrorClass.CONFIGURATION, False, "550 5.7.1"),
        ("MAIL", "553 5.1.8 Sender domain does not exist", ErrorClass.CONFIGURATION, False, "553 5.1.8"),
        ("MAIL", "530 5.7.0 Authentication required", ErrorClass.CONFIGURATION, False, "530 5.7.0"),
        ("RCPT", "550 5.7.1 Relaying denied", ErrorClass.CONFIGURATION, False, "550 5.7.1"),
        ("DATA", "554 5.7.1 Message rejected by policy", ErrorClass.CONFIGURATION, False, "554 5.7.1"),
    ],
)
def test_reply_codes_are_classified(smtp, stage, reply, error_class, deactivate, code):
    smtp.script_next(reply, at=stage)
    err = expect_error(provider_for(smtp))
    assert (err.error_class, err.deactivate_address, err.code) == (error_class, deactivate, code)
    assert smtp.received == []


def test_refused_recipient_is_permanent_and_masked(smtp):
    smtp.refuse_recipient(TO, f"550 5.1.1 <{TO}>: Recipient address rejected")
    err = expect_error(provider_for(smtp))
    assert err.error_class == ErrorClass.PERMANENT
    assert err.deactivate_address is True
    assert TO not in str(err) and TO not in err.detail
    assert mask_email(TO) in err.detail


def test_sender_refused_is_configuration(smtp):
    smtp.refuse_sender("550 5.7.1 Sender address not allowed")
    err = expect_error(provider_for(smtp))
    assert err.error_class == ErrorClass.CONFIGURATION
    assert err.deactivate_address is False


def test_wrong_password_is_configuration(smtp):
    err = expect_error(provider_for(smtp, password="wrong"))
    assert err.error_class == ErrorClass.CONFIGURATION
    assert err.code.startswith("535")
    assert smtp.auth_attempts[-1][1:] == (USER, False)


def test_missing_credentials_is_configuration(smtp):
    err = expect_error(provider_for(smtp, username=None, password=None))
    assert err.error_class == ErrorClass.CONFIGURATION
    assert err.code == "530 5.7.0"


def test_disconnect_mid_transaction_is_transient(smtp):
    smtp.script_next(DISCONNECT, at="DATA")
    err = expect_error(provider_for(smtp))
    assert err.error_class == ErrorClass.TRANSIENT


def test_connection_refused_is_transient():
    provider = SMTPEmailProvider("127.0.0.1", free_port(), sender=SENDER, timeout=2.0)
    err = expect_error(provider)
    assert (err.error_class, err.code) == (ErrorClass.TRANSIENT, "connection_refused")


def test_silent_server_times_out_as_transient():
    # Listening but never greeting: connect succeeds, the 220 banner never comes.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        provider = SMTPEmailProvider("127.0.0.1", listener.getsockname()[1], sender=SENDER, timeout=0.3)
        err = expect_error(provider)
    assert (err.error_class, err.code) == (ErrorClass.TRANSIENT, "timeout")


def test_untrusted_server_certificate_is_configuration(smtp):
    err = expect_error(provider_for(smtp, ssl_context=ssl.create_default_context()))
    assert (err.error_class, err.code) == (ErrorClass.CONFIGURATION, "tls_verify_failed")
    assert smtp.auth_attempts == []   # credentials never left over an unverified channel


def test_starttls_missing_is_configuration():
    with SMTPFake() as plain:   # no STARTTLS offered
        err = expect_error(SMTPEmailProvider(plain.host, plain.port, sender=SENDER, timeout=2.0))
        assert (err.error_class, err.code) == (ErrorClass.CONFIGURATION, "not_supported")
        assert plain.received == []


def test_invalid_recipient_is_permanent_without_network():
    provider = SMTPEmailProvider("127.0.0.1", free_port(), sender=SENDER)
    err = expect_error(provider, delivery(to="not-an-address"))
    assert (err.error_class, err.code) == (ErrorClass.PERMANENT, "invalid_address")
    assert err.deactivate_address is True


# -- partial refusals ---------------------------------------------------------------------


def test_partial_refusal_dict_is_classified_by_recipient(smtp):
    # Get the exact dict smtplib returns when one of two recipients is refused, then feed it
    # to the classifier the provider uses on sendmail's return value.
    smtp.refuse_recipient("gone@example.com", "550 5.1.1 No such user")
    smtp.refuse_recipient("full@example.com", "452 4.2.2 Mailbox full")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as client:
        client.starttls(context=smtp.client_ssl_context())
        client.login(USER, PASSWORD)
        recipients = [TO, "gone@example.com", "full@example.com"]
        refused = client.sendmail(SENDER, recipients, b"Subject: x\r\n\r\nx")
    assert set(refused) == {"gone@example.com", "full@example.com"}

    raise_for_refused({}, TO)   # nothing refused: no error
    with pytest.raises(ProviderError) as gone:
        raise_for_refused(refused, "gone@example.com")
    assert (gone.value.error_class, gone.value.deactivate_address) == (ErrorClass.PERMANENT, True)
    with pytest.raises(ProviderError) as full:
        raise_for_refused(refused, "full@example.com")
    assert full.value.error_class == ErrorClass.TRANSIENT


# -- the table itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reply", "stage", "error_class", "deactivate"),
    [
        (421, b"4.7.0 Try again", SMTPStage.RCPT, ErrorClass.TRANSIENT, False),
        (454, b"4.7.0 Temporary authentication failure", SMTPStage.AUTH, ErrorClass.TRANSIENT, False),
        (535, b"5.7.8 Authentication credentials invalid", SMTPStage.AUTH, ErrorClass.CONFIGURATION, False),
        (554, b"No SMTP service here", SMTPStage.CONNECT, ErrorClass.CONFIGURATION, False),
        (550, b"5.1.1 User unknown", SMTPStage.RCPT, ErrorClass.PERMANENT, True),
        (550, b"5.1.10 Null MX", SMTPStage.RCPT, ErrorClass.PERMANENT, True),
        (550, b"5.1.1 User unknown", SMTPStage.MAIL, ErrorClass.CONFIGURATION, False),
        (550, b"5.7.26 DMARC policy", SMTPStage.DATA, ErrorClass.CONFIGURATION, False),
        (552, b"Storage exceeded", SMTPStage.RCPT, ErrorClass.PERMANENT, False),
        (554, b"Transaction failed", SMTPStage.DATA, ErrorClass.PERMANENT, False),
        (559, b"Something new", SMTPStage.DATA, ErrorClass.PERMANENT, False),
        (-1, b"garbled", SMTPStage.DATA, ErrorClass.TRANSIENT, False),
    ],
)
def test_classify_reply_table(code, reply, stage, error_class, deactivate):
    rule = classify_reply(code, reply, stage)
    assert (rule.error_class, rule.deactivate_address) == (error_class, deactivate)


# -- configuration ------------------------------------------------------------------------


def test_from_env_absent_host_means_sandbox():
    assert SMTPEmailProvider.from_env({}) is None
    assert SMTPEmailProvider.from_env({"SMTP_HOST": "  ", "SMTP_FROM": SENDER}) is None


def test_from_env_sends_through_private_ca(smtp, tmp_path):
    env = {
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_USERNAME": USER,
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_STARTTLS": "true",
        "SMTP_SSL": "false",
        "SMTP_FROM": f"Orchestrator <{SENDER}>",
        "SMTP_CA_FILE": str(smtp.write_ca_file(tmp_path / "ca.pem")),
    }
    provider = SMTPEmailProvider.from_env(env)
    assert provider.message_id_domain == "example.org"   # defaults to the sender's domain
    result = provider.send(delivery())
    assert result.provider_message_id.endswith("@example.org")
    assert smtp.received[-1].tls is True
    assert smtp.received[-1].mail_from == SENDER   # envelope sender is the bare address
    assert smtp.received[-1].message["From"] == f"Orchestrator <{SENDER}>"


@pytest.mark.parametrize(
    "env",
    [
        {"SMTP_HOST": "smtp.example.org"},                                      # no SMTP_FROM
        {"SMTP_HOST": "smtp.example.org", "SMTP_FROM": SENDER, "SMTP_STARTTLS": "maybe"},
        {"SMTP_HOST": "smtp.example.org", "SMTP_FROM": SENDER, "SMTP_PORT": "smtp"},
        {"SMTP_HOST": "smtp.example.org", "SMTP_FROM": SENDER, "SMTP_SSL": "true", "SMTP_STARTTLS": "true"},
    ],
)
def test_from_env_rejects_bad_settings(env):
    with pytest.raises(ValueError):
        SMTPEmailProvider.from_env(env)


def test_from_env_blank_flags_keep_defaults():
    env = {"SMTP_HOST": "smtp.sendgrid.net", "SMTP_FROM": SENDER, "SMTP_STARTTLS": "", "SMTP_SSL": " "}
    provider = SMTPEmailProvider.from_env(env)
    assert (provider.port, provider.starttls, provider.use_ssl) == (587, True, False)
    assert provider.sendgrid_smtpapi is True   # auto-detected from the host
    env["SMTP_SENDGRID_SMTPAPI"] = "false"
    assert SMTPEmailProvider.from_env(env).sendgrid_smtpapi is False


def test_from_env_implicit_tls_defaults():
    env = {"SMTP_HOST": "smtp.example.org", "SMTP_FROM": SENDER, "SMTP_SSL": "1"}
    provider = SMTPEmailProvider.from_env(env)
    assert (provider.port, provider.use_ssl, provider.starttls) == (465, True, False)


def test_logs_mask_addresses(smtp, caplog):
    caplog.set_level(logging.DEBUG, logger="providers.smtp_email")
    provider_for(smtp).send(delivery())
    assert TO not in caplog.text
    assert "j***@example.com" in caplog.text
