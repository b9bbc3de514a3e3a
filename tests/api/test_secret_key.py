"""SECRET_KEY is read once, into Settings.secret_key; each consumer keeps its own fallback
when it is unset (config.Settings.secret_key says which)."""

from __future__ import annotations

from orchestrator.config import Settings
from orchestrator.recipients.unsubscribe import UnsubscribeLinks
from orchestrator.sending.ack_links import link_secret
from tests.logcapture import captured_logs


def test_the_secret_key_is_a_settings_field_blank_meaning_unset():
    assert Settings.from_env({"SECRET_KEY": "s3cret"}).secret_key == "s3cret"
    assert Settings.from_env({"SECRET_KEY": ""}).secret_key is None
    assert Settings.from_env({}).secret_key is None
    assert "s3cret" not in repr(Settings.from_env({"SECRET_KEY": "s3cret"}))


def test_ack_links_use_the_secret_key_else_a_key_kept_in_the_data_dir(tmp_path):
    settings = Settings.from_env({"ORCHESTRATOR_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == str(tmp_path)
    assert link_secret("configured", settings.data_dir) == "configured"
    assert not (tmp_path / "ack-link.key").exists()
    first = link_secret(settings.secret_key, settings.data_dir)
    assert (tmp_path / "ack-link.key").read_text().strip() == first
    assert link_secret(settings.secret_key, settings.data_dir) == first  # the same key after a restart


def test_unsubscribe_links_without_the_key_are_per_process_and_warn():
    with captured_logs() as logs:
        one = UnsubscribeLinks.from_settings(Settings.from_env({}))
        two = UnsubscribeLinks.from_settings(Settings.from_env({}))
    assert "SECRET_KEY is not set" in logs.text
    assert two.read(one.token("u-1", "digest")) is None
    keyed = Settings.from_env({"SECRET_KEY": "shared"})
    token = UnsubscribeLinks.from_settings(keyed).token("u-1", "digest")
    assert UnsubscribeLinks.from_settings(keyed).read(token) == ("u-1", "digest")
