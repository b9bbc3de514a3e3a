import pytest

from policies.conditions import compile_condition, fact_specs

SPECS = fact_specs({"otp": {"critical": True}, "promotion": {"critical": False}})
THRESHOLDS = {"sms_max_segments": 3}
FACTS = {
    "category": "otp", "category.critical": True, "presence": "offline", "lifecycle": "dormant",
    "sms_segments": 3, "expired": False,
}


def compiled(node):
    errors: list[str] = []
    cond = compile_condition(node, SPECS, THRESHOLDS, errors)
    assert errors == []
    return cond


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (None, True),
        ("always", True),
        ({"fact": "presence", "is": "offline"}, True),
        ({"fact": "presence", "is": "online"}, False),
        ({"fact": "presence", "is_not": "online"}, True),
        ({"fact": "category.critical", "is": True}, True),
        ({"fact": "category.critical", "is": False}, False),
        ({"fact": "lifecycle", "in": ["dormant", "churned"]}, True),
        ({"fact": "lifecycle", "in": ["active"]}, False),
        ({"fact": "lifecycle", "not_in": ["active", "unknown"]}, True),
        ({"fact": "sms_segments", "gt": 2}, True),
        ({"fact": "sms_segments", "gt": 3}, False),
        ({"fact": "sms_segments", "gte": 3}, True),
        ({"fact": "sms_segments", "lt": 3}, False),
        ({"fact": "sms_segments", "lte": 3}, True),
        ({"fact": "sms_segments", "is": 3}, True),
        ({"fact": "sms_segments", "gt": {"threshold": "sms_max_segments"}}, False),
        ({"fact": "sms_segments", "gte": {"threshold": "sms_max_segments"}}, True),
        ({"all": [{"fact": "presence", "is": "offline"}, {"fact": "expired", "is": False}]}, True),
        ({"all": [{"fact": "presence", "is": "offline"}, {"fact": "expired", "is": True}]}, False),
        ({"all": [{"fact": "presence", "is": "offline"}, {"fact": "expired", "is": False},
                  {"fact": "category", "is": "promotion"}]}, False),
        ({"all": [{"fact": "presence", "is": "offline"}]}, True),
        ({"any": [{"fact": "presence", "is": "online"}, {"fact": "category", "is": "otp"}]}, True),
        ({"any": [{"fact": "presence", "is": "online"}, {"fact": "category", "is": "promotion"}]}, False),
        ({"not": {"fact": "presence", "is": "online"}}, True),
        ({"not": {"all": [{"fact": "presence", "is": "offline"}, {"fact": "expired", "is": False}]}}, False),
    ],
)
def test_operators(node, expected):
    assert compiled(node)(FACTS) is expected


def test_category_attributes_become_facts():
    assert "category.critical" in SPECS
    assert SPECS["category"].values == ("otp", "promotion")


def test_errors_carry_the_prefix_and_path():
    errors: list[str] = []
    compile_condition({"any": [{"fact": "x", "is": 1}]}, SPECS, THRESHOLDS, errors, "rule 'r': ")
    assert errors == ["rule 'r': field 'when.any[0].fact': unknown fact 'x'"]
