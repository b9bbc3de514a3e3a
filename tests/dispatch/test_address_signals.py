"""Issue #11 defect 5: address and consent signals live in one module, used by send-time
errors and every receipt webhook, and accept ORM attempts or plain plan rows alike."""

from __future__ import annotations

import pytest

from orchestrator.lifecycle import address_signals as signals
from orchestrator.lifecycle.plans import Row
from orchestrator.storage.models import Device, Recipient
from providers.base import AttemptStatus, ErrorClass, ProviderError


@pytest.mark.parametrize(("channel", "status", "code", "dead", "withdraw"), [
    ("sms", "undelivered", "30005", True, None),
    ("sms", "undelivered", "30006", True, None),
    ("sms", "failed", "21211", True, None),
    ("sms", "failed", "21614", True, None),
    ("sms", "failed", "21610", False, "sms"),
    ("sms", "undelivered", "30003", False, None),   # handset off: the number is fine
    ("sms", "undelivered", "30007", False, None),   # carrier filter: about content
    ("sms", "delivered", None, False, None),
    ("email", "bounced", "bounce", True, None),
    ("email", "bounced", "hard_bounce", True, None),
    ("email", "undelivered", "blocked", False, None),
    ("email", None, "unsubscribe", False, "marketing"),
    ("email", None, "spamreport", False, "marketing"),
    ("email", None, "complaint", False, "marketing"),
    ("push", "delivered", None, False, None),
])
def test_signal_for_receipt(channel, status, code, dead, withdraw):
    s = signals.signal_for_receipt(channel, AttemptStatus(status) if status else None, code)
    assert (s.address_dead, s.withdraw) == (dead, withdraw)


def test_signal_for_send_error():
    stop = ProviderError(ErrorClass.PERMANENT, "21610", provider="twilio", deactivate_address=True)
    assert signals.signal_for_error("sms", stop) == signals.Signal(withdraw="sms", why="sms opt-out (21610)")
    invalid = ProviderError(ErrorClass.PERMANENT, "21211", provider="twilio", deactivate_address=True)
    assert signals.signal_for_error("sms", invalid).address_dead
    transient = ProviderError(ErrorClass.TRANSIENT, "20429", provider="twilio")
    assert not signals.signal_for_error("sms", transient)


def _seed(state):
    with state.db.session() as s:
        s.add(Recipient(user_id="u-9", email="Ada@Example.com", phone="+447400123456",
                        consents={"sms": True, "email": True, "marketing": True}))
        s.flush()
        s.add(Device(user_id="u-9", token="tok-1", platform="fcm"))


def _row(channel, address):
    return Row({"id": "a-1", "channel": channel, "user_id": "u-9", "address": address})


def test_apply_works_on_plain_rows(state):
    _seed(state)
    now = state.clock()
    with state.db.session() as s:
        assert signals.apply_receipt(s, _row("sms", "+447400123456"), "undelivered", "30005", now)
        assert signals.apply_receipt(s, _row("email", "ada@example.com"), None, "unsubscribe", now)
        err = ProviderError(ErrorClass.PERMANENT, "UNREGISTERED", provider="fcm", deactivate_address=True)
        assert signals.apply_send_error(s, _row("push", "tok-1"), err, now)
        # Applying again changes nothing.
        assert not signals.apply_receipt(s, _row("sms", "+447400123456"), "undelivered", "30005", now)
    with state.db.session() as s:
        r = s.get(Recipient, "u-9")
        assert r.phone_valid is False and r.email_valid is True
        assert r.consents == {"sms": True, "email": True, "marketing": False}
        assert [d.active for d in r.devices] == [False]


def test_a_signal_for_an_old_address_leaves_the_new_one(state):
    _seed(state)
    with state.db.session() as s:
        assert not signals.apply_receipt(s, _row("sms", "+447400000000"), "failed", "21211", state.clock())
        assert not signals.apply_receipt(s, _row("email", "old@example.com"), "bounced", "bounce", state.clock())
    with state.db.session() as s:
        r = s.get(Recipient, "u-9")
        assert r.phone_valid is True and r.email_valid is True
