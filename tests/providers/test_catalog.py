"""Issue #22: a provider is one module registered by name (providers/catalog.py), with typed
settings read from the environment and an error table that reports address signals; the
registry builds what is configured by iterating the catalog."""

from __future__ import annotations

import pytest

from orchestrator.config import ConfigError, Settings
from orchestrator.dispatch.registry import ProviderRegistry
from orchestrator.lifecycle import address_signals
from orchestrator.schemas import Platform
from providers import catalog
from providers.base import AttemptStatus, Channel
from providers.sandbox import SandboxProvider
from providers.ses_events import SesSettings
from providers.spec import AddressSignal
from providers.twilio_sms import TwilioSettings

SID, TOKEN = "AC" + "0" * 32, "twilio-token"
TWILIO = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": "+15005550006"}


def test_the_catalog_names_each_provider_once_with_its_channel():
    assert [s.name for s in catalog.PROVIDERS] == [
        "twilio", "twilio-whatsapp", "smtp", "sendgrid", "ses", "fcm", "apns", "webpush"]
    assert {s.name: s.channel for s in catalog.PROVIDERS}["twilio"] == Channel.SMS
    assert [s.name for s in catalog.for_channel("email")] == ["smtp", "sendgrid", "ses"]
    assert catalog.PUSH_PLATFORMS == ("fcm", "apns", "webpush")
    assert [p.value for p in Platform] == list(catalog.PUSH_PLATFORMS)  # what a device may name


@pytest.mark.parametrize(("channel", "code", "status", "signal"), [
    ("sms", "21610", AttemptStatus.FAILED, AddressSignal.OPT_OUT),
    ("sms", "21610", AttemptStatus.DELIVERED, None),
    ("sms", "21211", AttemptStatus.FAILED, AddressSignal.DEAD),
    ("sms", "30003", AttemptStatus.UNDELIVERED, None),      # handset off: the number is fine
    ("sms", "99999", AttemptStatus.FAILED, None),           # unlisted: never kills the number
    ("email", "unsubscribe", None, AddressSignal.MARKETING_OPT_OUT),
    ("email", "bounce", AttemptStatus.BOUNCED, AddressSignal.DEAD),
    ("email", "bounce", AttemptStatus.UNDELIVERED, None),
    ("push", "UNREGISTERED", AttemptStatus.FAILED, None),   # push reports it at send time (deactivate_address)
    ("sms", None, AttemptStatus.FAILED, None),
])
def test_address_signals_are_read_from_the_providers_tables(channel, code, status, signal):
    reading = catalog.address_signal(channel, code, status)
    assert (reading.signal if reading else None) == signal


def test_a_stop_at_send_time_withdraws_the_channel_consent_it_came_on():
    from providers.base import ErrorClass, ProviderError

    stop = ProviderError(ErrorClass.PERMANENT, "21610", provider="twilio", deactivate_address=True)
    assert address_signals.signal_for_error("sms", stop).withdraw == "sms"
    assert address_signals.signal_for_error("email", stop).address_dead  # not Twilio's code on email


def test_typed_settings_are_read_through_the_service_settings():
    assert Settings.from_env({}).provider_settings("twilio") is None
    twilio = Settings.from_env({**TWILIO, "TWILIO_WEBHOOK_PUBLIC_URL": " https://hooks.example.com/t "}
                               ).provider_settings("twilio")
    assert isinstance(twilio, TwilioSettings)
    assert (twilio.auth_token, twilio.webhook_public_url) == (TOKEN, "https://hooks.example.com/t")
    assert TOKEN not in repr(twilio)
    ses = Settings.from_env({"SES_SNS_TOPIC_ARNS": " arn:a , ,arn:b", "SMTP_FROM": "Ops <ops@mail.example.com>"}
                            ).provider_settings("ses")
    assert ses == SesSettings(("arn:a", "arn:b"), "mail.example.com")
    assert Settings.from_env({"SENDGRID_WEBHOOK_PUBLIC_KEY": "  "}).provider_settings("sendgrid") is None
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID"):
        Settings.from_env({"TWILIO_AUTH_TOKEN": TOKEN}).provider_settings("twilio")


def test_the_registry_builds_what_is_configured_from_the_catalog(tmp_path):
    env = {**TWILIO, "TWILIO_BACKUP_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_BACKUP_AUTH_TOKEN": "t2",
           "TWILIO_BACKUP_FROM_NUMBER": "+15005550007", "SANDBOX_SINK": str(tmp_path / "sink.jsonl")}
    registry = ProviderRegistry.from_settings(Settings.from_env(env))
    assert [p.name for p in registry.pool("sms")] == ["twilio", "twilio-backup"]
    assert isinstance(registry.pool("email")[0], SandboxProvider)
    fcm_pool, apns_pool = registry.pool("push", "fcm"), registry.pool("push", "apns")
    assert isinstance(fcm_pool[0], SandboxProvider) and fcm_pool == apns_pool == registry.pool("push")
    assert [p.name for p in registry.pool("in_app")] == ["inapp"]
    assert registry.summary() == ("live=sms(twilio,twilio-backup) in_app(inapp) "
                                  "sandbox=whatsapp email push/fcm push/apns push/webpush")


def test_a_mistake_in_a_backup_account_names_the_backup_variable():
    env = {**TWILIO, "TWILIO_BACKUP_ACCOUNT_SID": "AC" + "1" * 32}
    with pytest.raises(ConfigError, match="TWILIO_BACKUP_AUTH_TOKEN"):
        ProviderRegistry.from_settings(Settings.from_env(env))
