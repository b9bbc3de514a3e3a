"""The policy's optional `labels` section: human names of categories and channels per locale
for the in-app preference center, checked like the rest of the document, with fallbacks."""

from __future__ import annotations

import copy

import pytest

from policies import PolicyError, load_default_policy, load_policy
from policies.constants import CHANNELS
from policies.labels import humanise


@pytest.fixture
def doc(default_doc):
    return copy.deepcopy(default_doc)


def errors_of(doc) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(doc)
    return info.value.errors


def test_the_default_policy_labels_every_category_and_channel_in_english_and_korean():
    policy = load_default_policy()
    labels = policy.labels
    assert {"en", "ko"} <= labels.locales
    for category in policy.categories:
        for locale in ("en", "ko"):
            assert labels.categories[category][locale], (category, locale)
            assert labels.descriptions[category][locale], (category, locale)
    assert labels.categories["security_alert"] == {"en": "Security alerts", "ko": "보안 알림"}
    for channel in CHANNELS:
        assert set(labels.channels[channel]) == {"en", "ko"}
    assert labels.channel_order == ("in_app", "push", "sms", "email", "whatsapp")  # as the section lists them
    # Korean labels are Korean, not copies of the English ones.
    assert all(labels.categories[c]["ko"] != labels.categories[c]["en"] for c in policy.categories)


def test_lookups_fall_back_to_the_language_then_english_then_the_humanised_id(doc):
    doc["labels"] = {"categories": {"social": {"en": "Social activity", "pt-br": "Atividade social"}}}
    labels = load_policy(doc).labels
    assert labels.category("social", "pt-br") == "Atividade social"
    assert labels.category("social", "ko") == "Social activity"
    assert labels.category("trial_expiry", "ko") == "Trial expiry"
    assert labels.category("winback", "en") == "Winback"
    assert humanise("in_app") == "In app" and humanise("a-b.c") == "A b c"
    assert labels.description("social", "en") == ""
    assert labels.channel("sms", "ko") == "SMS" and labels.channel("in_app", "en") == "In-app"
    assert labels.channel_order == CHANNELS  # nothing listed: the canonical order
    assert labels.locale_for(["PT-BR"]) == "pt-br"
    assert labels.locale_for(["pt"]) == "en"  # "pt" is not "pt-br"
    assert labels.locale_for(["fr", "pt-BR"]) == "pt-br"
    assert labels.locale_for(["fr"]) == "en"
    assert labels.locale_for([]) == "en"


def test_a_regional_tag_falls_back_to_its_language():
    labels = load_default_policy().labels
    assert labels.locale_for(["ko-KR"]) == "ko"
    assert labels.category("otp", "ko-kr") == "일회용 인증 코드"


def test_a_policy_without_labels_still_loads_and_humanises(doc):
    del doc["labels"]
    labels = load_policy(doc).labels
    assert labels.category("feature_announcement", "en") == "Feature announcement"
    assert labels.locales == {"en"}
    assert [labels.channel(c, "en") for c in labels.channel_order] == ["In-app", "Push", "Email", "SMS", "WhatsApp"]


@pytest.mark.parametrize("labels, message", [
    ("nope", "field 'labels': expected a mapping"),
    ({"colours": {}}, "field 'labels.colours': unknown field"),
    ({"categories": {"pigeon": {"en": "Pigeons"}}}, "field 'labels.categories.pigeon': unknown category 'pigeon'"),
    ({"channels": {"fax": {"en": "Fax"}}}, "field 'labels.channels.fax': unknown channel 'fax'"),
    ({"categories": {"social": "Social"}}, "field 'labels.categories.social': expected a mapping of locale"),
    ({"categories": {"social": {}}}, "field 'labels.categories.social': expected a mapping of locale"),
    ({"categories": {"social": {"english": "Social"}}}, "'english' is not a language tag"),
    ({"categories": {"social": {"e\x00": "Social"}}}, "is not a language tag"),
    ({"categories": {"social": {"en": ""}}}, "field 'labels.categories.social.en': expected a non-empty text"),
    ({"categories": {"social": {"en": 3}}}, "field 'labels.categories.social.en': expected a non-empty text"),
    ({"categories": {"social": {"en": "x" * 81}}}, "81 characters; at most 80"),
    ({"descriptions": {"social": {"en": "x" * 301}}}, "301 characters; at most 300"),
    ({"categories": {"social": {"en": "So\x00cial"}}}, "control characters are not allowed"),
    ({"channels": {"sms": None}}, "field 'labels.channels.sms': expected a mapping of locale"),
])
def test_bad_labels_are_refused_naming_the_field(doc, labels, message):
    doc["labels"] = labels
    errors = errors_of(doc)
    assert any(message in e for e in errors), errors



def test_a_label_change_shows_in_the_review_diff(doc):
    from policies.diff import LABELS_CHANGED, diff_documents

    new = copy.deepcopy(doc)
    new["labels"]["categories"]["social"] = {"en": "Friends", "ko": "친구"}
    del new["labels"]["descriptions"]["winback"]
    changes = [c for c in diff_documents(doc, new) if c.kind == LABELS_CHANGED]
    assert [(c.subject, c.after) for c in changes] == [("categories.social", {"en": "Friends", "ko": "친구"}),
                                                       ("descriptions.winback", None)]
    assert "Label 'categories.social' changed from" in changes[0].sentence
