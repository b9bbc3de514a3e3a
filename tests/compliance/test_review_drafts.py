"""Drafting a policy in the browser's review pages (orchestrator/review/drafts.py), through
Flask's test client on SQLite and PostgreSQL: start a draft from the active version, edit its
thresholds and rules, lint that points at the rule and the line, a reason on every save, the
golden scenarios and the changes in words after a save, the policy's audit log on its page,
four eyes, and hostile input (NUL, huge, invalid YAML, alias bombs, no CSRF) refused on the
page naming the field. The browser run is in test_review_drafts_browser.py."""

from __future__ import annotations

import re

from orchestrator.review import draft_text

from .conftest import DEFAULT_VERSION
from .test_review_pages import _status, _token, login, text

NEW = "2099-05-01.1"
OTP_ROUTE = "      route: [sms, email]\n    reason: one-time codes go by SMS, email as fallback"


def _start(client, source: str = DEFAULT_VERSION, version: str = NEW, reason: str = "start OTP change"):
    form = client.get(f"/review/policies/{source}/draft")
    assert form.status_code == 200, text(form)
    return client.post(f"/review/policies/{source}/draft",
                       data={"new_version": version, "reason": reason, "csrf_token": _token(form)})


def _form(client, version: str = NEW) -> dict[str, str]:
    """The editor's fields as the browser would post them back."""
    page = client.get(f"/review/drafts/{version}")
    assert page.status_code == 200, text(page)
    body = text(page)
    data = {"csrf_token": _token(page)}
    for name, value in re.findall(r'<input id="[^"]+" name="([a-z_]+)"[^>]*?value="([^"]*)"', body):
        data[name] = value
    data["rules"] = re.search(r'<textarea id="rules"[^>]*>(.*?)</textarea>', body, re.S).group(1)
    data["reason"] = ""
    return data


def _save(client, data: dict[str, str], version: str = NEW):
    return client.post(f"/review/drafts/{version}", data=data)


def _audit_count(state, version: str = NEW) -> int:
    from orchestrator.storage.models import AuditEntry

    with state.db.session() as s:
        return s.query(AuditEntry).filter_by(subject=f"policy:{version}").count()


def _document(state, version: str = NEW) -> str:
    from orchestrator.storage.models import PolicyVersion

    with state.db.session() as s:
        return s.query(PolicyVersion).filter_by(version=version).one().document


def test_draft_from_active_edit_settings_and_rules_then_scenarios_changes_and_history(app, state, people):
    alice = login(app, people["alice"])
    index = text(alice.get("/review/"))
    assert f'href="/review/policies/{DEFAULT_VERSION}/draft"' in index  # "Draft a change to the active policy"
    r = _start(alice)
    assert r.status_code == 302 and r.headers["Location"] == f"/review/drafts/{NEW}"
    assert _status(state, NEW) == "draft"

    data = _form(alice)
    assert data["quiet_hours_start"] == "22:00" and data["in_app_cap_per_day"] == "3"
    assert data["rules"].startswith("rules:\n") and "otp-by-sms" in data["rules"]
    data.update(in_app_cap_per_day="5", quiet_hours_end="07:30", reason="Fewer pop-ups; OTP by email first")
    assert OTP_ROUTE in data["rules"]
    data["rules"] = data["rules"].replace(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]", "[email, sms]"))
    r = _save(alice, data)
    assert r.status_code == 302, text(r)

    page = text(alice.get(f"/review/drafts/{NEW}"))
    summary = re.search(r"Golden scenarios: (\d+) of (\d+) pass", page)
    assert summary and int(summary.group(1)) < int(summary.group(2))  # OTP now goes by email first
    failed = re.search(r'<table class="data" id="scenarios-failed">(.*?)</table>', page, re.S).group(1)
    assert re.search(r"OTP goes by SMS[^<]*</td>\s*<td><span class=\"result fail\">fail", failed)
    passed = re.search(r'<table class="data" id="scenarios-passed">(.*?)</table>', page, re.S).group(1)
    assert passed.count('<span class="result pass">pass</span>') == int(summary.group(1))
    changes = re.search(r'<ol class="changes" id="changes-in-words">(.*?)</ol>', page, re.S).group(1)
    assert "In-app messages per day (cap) changed from 3 to 5." in changes
    assert "Quiet hours changed from 22:00–08:00 to 22:00–07:30." in changes
    assert ("Category otp (rule 'otp-by-sms'): email moved from fallback to first; "
            "SMS moved from first to fallback.") in changes

    stored = _document(state)
    assert "  in_app_cap_per_day: 5\n" in stored
    assert 'quiet_hours: ["22:00", "07:30"]  # recipient\'s local time' in stored  # comments kept
    assert "route: [email, sms]" in stored

    # The history, on the editor and on the policy page, for any policy reader.
    carol = login(app, people["carol"])
    policy_page = text(carol.get(f"/review/policies/{NEW}"))
    history = re.search(r'<table class="data stacked" id="policy-history">(.*?)</table>', policy_page, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", history, re.S)[1:]
    assert len(rows) == 2
    assert "alice" in rows[0] and "drafted" in rows[0] and "start OTP change" in rows[0]
    assert "alice" in rows[1] and "edited" in rows[1] and "Fewer pop-ups; OTP by email first" in rows[1]
    assert "Threshold &#39;in_app_cap_per_day&#39; changed from 3 to 5." in rows[1] or \
        "Threshold 'in_app_cap_per_day' changed from 3 to 5." in html_unescape(rows[1])
    assert 'id="start-draft"' not in policy_page  # carol cannot write
    assert 'id="edit-draft"' in text(alice.get(f"/review/policies/{NEW}"))


def html_unescape(value: str) -> str:
    import html

    return html.unescape(value)


def test_every_save_needs_a_reason_naming_the_field(app, state, people):
    alice = login(app, people["alice"])
    assert _start(alice, reason="").status_code == 422
    r = _start(alice, reason="   ")
    assert r.status_code == 422 and "reason: required" in text(r) and 'aria-invalid="true"' in text(r)
    assert _start(alice).status_code == 302
    before = _audit_count(state)
    data = _form(alice)
    data["in_app_cap_per_day"] = "4"
    r = _save(alice, data)
    page = text(r)
    assert r.status_code == 422 and "reason: required, say why" in page
    assert re.search(r'<textarea id="reason"[^>]*aria-invalid="true" aria-describedby="reason-error"', page)
    assert 'value="4"' in page  # the edit is kept in the form
    assert _audit_count(state) == before and "in_app_cap_per_day: 3\n" in _document(state)


def test_lint_points_at_the_rule_and_line_live_and_on_save(app, state, people):
    alice = login(app, people["alice"])
    assert _start(alice).status_code == 302
    data = _form(alice)
    lines = data["rules"].split("\n")
    line = next(i for i, x in enumerate(lines) if x == "    then: {exclude: sms}") + 1
    assert lines[line - 2].startswith("    when: {fact: reachable.sms")
    data["rules"] = "\n".join(lines[:line - 1] + ["    then: {exclude: fax}"] + lines[line:])
    r = alice.post(f"/review/drafts/{NEW}/lint", data=data)
    fragment = text(r)
    assert r.status_code == 200
    assert f'data-line="{line}">Line {line}</a>, rule <code>sms-needs-phone</code>' in fragment
    assert "field 'then.exclude': unknown channel 'fax'" in fragment
    assert 'data-fields="rules"' in fragment

    data["reason"] = "try fax"
    r = _save(alice, data)
    assert r.status_code == 422 and f"Line {line} of the rules: rule 'sms-needs-phone'" in text(r)
    assert "exclude: fax" not in _document(state)

    data["rules"] = data["rules"].replace("{exclude: fax}", "{exclude: sms}")
    assert "No problems found." in text(alice.post(f"/review/drafts/{NEW}/lint", data=data))
    data["in_app_cap_per_week"] = "-1"
    fragment = text(alice.post(f"/review/drafts/{NEW}/lint", data=data))
    assert "field 'thresholds.in_app_cap_per_week': expected a number >= 0, got -1" in fragment
    assert 'href="#t-in_app_cap_per_week"' in fragment


def test_hostile_input_gets_a_page_error_naming_the_field(app, state, people):
    alice = login(app, people["alice"])
    assert _start(alice).status_code == 302
    good = _form(alice)
    good["reason"] = "hostile"
    bomb = ("rules:\n  - &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
            + "".join(f"  - &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcde", "bcdef", strict=True)))
    cases = [
        ({"rules": good["rules"] + "\x00"}, "rules: must not contain NUL"),
        ({"reason": "why\x00"}, "reason: must not contain NUL"),
        ({"rules": "rules:\n" + "#" * 250_000}, "rules: at most 200000 characters"),
        ({"rules": "rules:\n  - id: [unclosed\n"}, "not valid YAML"),
        ({"rules": bomb}, "once its aliases (*) are expanded"),
        ({"rules": "rules:\n  - \"\\0\"\n"}, "must not contain NUL"),
        ({"in_app_cap_per_day": "abc"}, "in_app_cap_per_day: In-app messages per day: a whole number"),
        ({"in_app_cap_per_day": "9" * 30}, "in_app_cap_per_day: at most 20 characters"),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start: quiet hours start: a time HH:MM"),
        ({"rules": "   "}, "rules: required"),
        ({"rules": good["rules"] + "thresholds:\n  sms_max_segments: 9\n"}, "'thresholds:' starts a new section"),
        ({"rules": "- id: x\n"}, "rules: the text must start with the line 'rules:'"),
    ]
    for change, message in cases:
        r = _save(alice, {**good, **change})
        assert r.status_code == 422, (change, r.status_code)
        assert message in text(r), (message, text(r)[:3000])
    r = _save(alice, {**good, "rules": "rules:\n" + "가" * 700_000})  # 6 MB URL-encoded
    assert r.status_code == 413 and "body: the form is larger than 2097152 bytes" in text(r)
    r = alice.post(f"/review/drafts/{NEW}/lint", data={**good, "rules": bomb})
    assert r.status_code == 200 and "once its aliases (*) are expanded" in text(r)
    assert _audit_count(state) == 1  # only the draft itself

    # No CSRF token: refused before anything runs.
    r = alice.post(f"/review/drafts/{NEW}", data={k: v for k, v in good.items() if k != "csrf_token"})
    assert r.status_code == 400 and "security token" in text(r)
    r = alice.post(f"/review/drafts/{NEW}/lint", data={**good, "csrf_token": "forged"})
    assert r.status_code == 400
    # A version name that is not one, or already taken.
    for name, message in (("a/b", "new_version: letters, digits"), ("x\x00", "new_version: must not contain NUL"),
                          (NEW, f"policy version '{NEW}' already exists")):
        r = _start(alice, version=name)
        assert r.status_code == 422 and message in text(r), name
    # Only drafts can be edited.
    r = alice.get(f"/review/drafts/{DEFAULT_VERSION}")
    assert r.status_code == 409 and "only drafts can be edited" in text(r)
    assert alice.get("/review/drafts/nope").status_code == 404


def test_scopes_and_four_eyes(app, state, people):
    carol = login(app, people["carol"])
    assert carol.get(f"/review/policies/{DEFAULT_VERSION}/draft").status_code == 403
    alice = login(app, people["alice"])
    assert _start(alice).status_code == 302
    assert carol.get(f"/review/drafts/{NEW}").status_code == 403
    token = _token(carol.get("/review/"))
    assert carol.post(f"/review/drafts/{NEW}/lint", data={"csrf_token": token}).status_code == 403
    # alice's approving key carries her name: she drafted it, so she may not approve it.
    alice_approver = login(app, people["alice_approver"])
    form = alice_approver.get(f"/review/policies/{NEW}")
    r = alice_approver.post(f"/review/policies/{NEW}/approve", data={"reason": "mine", "csrf_token": _token(form)})
    assert r.status_code == 403 and "self_approval_forbidden" in text(r)
    bob = login(app, people["bob"])
    form = bob.get(f"/review/policies/{NEW}")
    r = bob.post(f"/review/policies/{NEW}/approve", data={"reason": "reviewed", "csrf_token": _token(form)})
    assert r.status_code == 302 and _status(state, NEW) == "approved"
    history = text(bob.get(f"/review/policies/{NEW}"))
    assert re.search(r'<td data-label="Who">bob</td>\s*<td data-label="Action">approved</td>\s*'
                     r'<td data-label="Reason">reviewed</td>', history)
    assert alice.get(f"/review/drafts/{NEW}").status_code == 409  # approved: no more edits


def test_rules_text_round_trips_the_document():
    doc = "version: \"1\"\nthresholds: {sms_max_segments: 3}\nrules:\n  - id: a\ncategories: {}\n"
    head, rules, tail = draft_text.split(doc)
    assert rules == "rules:\n  - id: a\n" and tail == "categories: {}\n"
    assert draft_text.join(head, rules, tail) == doc
    head = draft_text.set_thresholds(head, {"sms_max_segments": 4, "in_app_cap_per_day": 2})
    assert "thresholds:\n  sms_max_segments: 4\n  in_app_cap_per_day: 2\n" in head
    assert draft_text.set_version(doc, 'x"y').startswith('version: "x\\"y"\n')


def test_route_changes_in_words():
    from orchestrator.review import diff_words

    before = ["in_app", {"channel": "push", "mode": "escalate", "after": "10m", "unless": "read"}, "email"]
    after = [{"channel": "push", "mode": "escalate", "after": "2h", "unless": "read"}, "email", "sms"]
    assert diff_words.route_words(before, after) == [
        "in-app removed (was first)",
        "push moved from escalation after 10 minutes unless read to escalation after 2 hours unless read",
        "email moved from step 3 to step 2",
        "SMS added as fallback",
    ]
    assert diff_words.route_words(["email", "sms"], ["sms", "email"]) == [
        "SMS moved from fallback to first", "email moved from first to fallback"]
    changes = [{"kind": "effect_changed", "subject": "winback", "field": "then", "sentence": "(raw)",
                "before": {"route": ["email"]}, "after": {"route": ["email"], "exclude": "sms"}},
               {"kind": "threshold_changed", "subject": "quiet_hours", "field": None, "sentence": "(raw)",
                "before": ["22:00", "08:00"], "after": ["21:00", "08:00"]},
               {"kind": "rule_added", "subject": "x", "field": None, "sentence": "Rule 'x' added.",
                "before": None, "after": {}}]
    document = {"rules": [{"id": "winback", "when": {"fact": "category", "is": "winback"}}]}
    assert diff_words.sentences(changes, document) == [
        "Category winback (rule 'winback'): excluded channels added: SMS.",
        "Quiet hours changed from 22:00–08:00 to 21:00–08:00.",
        "Rule 'x' added.",
    ]
