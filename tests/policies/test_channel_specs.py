"""Issue #22: a channel is one unit, its spec (channels/<name>.py). These tests hold the
places that read the specs to them, so a channel added to channels/registry.py that some
per-channel table forgot fails here rather than in production."""

from __future__ import annotations

from dataclasses import fields

import pytest

import channels
from channels import DECLARED, ROUTE_ORDER, SPECS, Channel, Reach
from orchestrator.content.channels import CHANNEL_FIELDS, for_channel
from orchestrator.content.compiled import CHANNEL_SOURCE_FIELDS, REQUIRED_FIELDS
from orchestrator.content.schemas import ChannelSources
from orchestrator.lifecycle.planning import addresses_for
from orchestrator.review import charts
from orchestrator.schemas import ChannelOverrides, ChannelSwitches, Consents, Content
from policies import Device, RecipientFacts
from policies.constants import CHANNELS, CONSENT_KEYS, OUT_OF_APP_CHANNELS
from policies.document import DEFAULT_CONSENTS
from policies.labels import CHANNEL_NAMES
from providers.base import Channel as ProviderChannel
from providers.base import Delivery


def test_the_stored_channel_values_do_not_change():
    assert [c.value for c in Channel] == ["in_app", "push", "sms", "email", "whatsapp"]
    assert ProviderChannel is Channel
    assert set(SPECS) == {c.value for c in Channel}


def test_the_policy_vocabulary_comes_from_the_specs():
    assert CHANNELS == ROUTE_ORDER == ("in_app", "push", "email", "sms", "whatsapp")  # the golden scenarios' order
    assert CONSENT_KEYS == ("in_app", "push", "sms", "email", "whatsapp", "marketing")
    assert OUT_OF_APP_CHANNELS == {"push", "sms", "email", "whatsapp"}
    assert DEFAULT_CONSENTS == {"in_app": True, "push": True, "sms": True, "email": True, "whatsapp": False,
                                "marketing": False}
    assert CHANNEL_NAMES == {"in_app": "In-app", "push": "Push", "sms": "SMS", "email": "Email", "whatsapp": "WhatsApp"}


@pytest.mark.parametrize("spec", DECLARED, ids=lambda s: s.name)
def test_each_spec_is_complete(spec):
    delivery_fields = {f.name for f in fields(Delivery)}
    assert set(spec.delivery_fields.values()) <= delivery_fields
    assert set(spec.required_fields) <= set(spec.source_fields)
    assert spec.label and spec.word and spec.address_words and spec.unavailable_reason
    assert (spec.address_field is not None) == (spec.reach == Reach.FIELD)
    assert CHANNEL_FIELDS[spec.name] == spec.delivery_fields
    assert CHANNEL_SOURCE_FIELDS[spec.name] == spec.source_fields
    assert REQUIRED_FIELDS[spec.name] == spec.required_fields
    assert charts.COLOURS[spec.name] == spec.colour


def _variant(field):
    return next(t for t in field.annotation.__args__ if t is not type(None))


def test_the_request_models_are_built_from_the_specs():
    """Per channel: an inline override with every content key, a template variant with the
    templated ones, a consent and a preference switch."""
    assert list(ChannelOverrides.model_fields) == list(ChannelSources.model_fields) == list(channels.NAMES)
    for name, field in ChannelOverrides.model_fields.items():
        assert list(_variant(field).model_fields) == list(SPECS[name].delivery_fields), name
    for name, field in ChannelSources.model_fields.items():
        assert tuple(_variant(field).model_fields) == SPECS[name].source_fields, name
    assert [_variant(f).__name__ for f in ChannelOverrides.model_fields.values()] == [
        "InAppOverride", "PushOverride", "SmsOverride", "EmailOverride", "WhatsappOverride"]
    assert list(Consents.model_fields) == [*channels.NAMES, "marketing"]
    assert list(ChannelSwitches.model_fields) == list(channels.NAMES)


def _recipient(**kw) -> RecipientFacts:
    return RecipientFacts(user_id="u", **kw)


def test_reachability_and_addresses_follow_the_spec():
    device = Device(token="t1", platform="fcm")
    off = Device(token="t2", platform="apns", active=False)
    r = _recipient(email="a@example.com", phone="+447400123456", devices=(device, off), phone_valid=False)
    assert [s.name for s in DECLARED if s.reachable(r)] == ["in_app", "push", "email"]
    assert addresses_for("sms", r) == [("+447400123456", None)]   # planned anyway; the floor decides
    assert addresses_for("email", r) == [("a@example.com", None)]
    assert addresses_for("push", r) == [("t1", "fcm")]
    assert addresses_for("in_app", r) == [(None, None)]
    assert addresses_for("sms", _recipient()) == []


def test_channel_content_lays_over_the_base_by_the_spec():
    stored = {"title": "T", "body": "B", "html": "<p>B</p>",
              "channels": {"sms": {"text": "S"}, "push": {"body": "P"}, "email": {"subject": "E"}}}
    assert (for_channel(stored, "sms")["title"], for_channel(stored, "sms")["body"]) == ("", "S")  # text_is_whole
    assert for_channel(stored, "push")["html"] is None                                               # keeps_html off
    assert (for_channel(stored, "email")["title"], for_channel(stored, "email")["html"]) == ("E", "<p>B</p>")


@pytest.mark.parametrize(("channels_given", "field"), [
    ({"sms": {"text": ""}}, "channels.sms.text"),                     # required: never empty
    ({"push": {"image_url": "http://x.example"}}, "channels.push.image_url"),  # an image is https
    ({"email": {"subject": "s" * 501}}, "channels.email.subject"),   # a SHORT field's limit
    ({"email": {"reply_to": "not an address"}}, "channels.email.reply_to"),
])
def test_override_limits_follow_the_field_kinds(channels_given, field):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        Content(body="b", channels=channels_given)
    assert [".".join(map(str, e["loc"])) for e in caught.value.errors()] == [field]


def test_every_channel_has_its_own_chart_colour():
    # The review charts tell channels apart by colour alone in their bars.
    assert len({spec.colour for spec in DECLARED}) == len(DECLARED)
