from __future__ import annotations

import copy

import pytest

from policies import load_default_policy


@pytest.fixture(scope="session")
def policy():
    return load_default_policy()


@pytest.fixture(scope="session")
def default_doc(policy):
    return copy.deepcopy(policy.document)


@pytest.fixture
def doc_with_rules(default_doc):
    """The default taxonomy and thresholds with the given rules instead of the default ones."""

    def make(rules):
        doc = copy.deepcopy(default_doc)
        doc["rules"] = rules
        return doc

    return make
