"""A policy document as the browser editor shows it, and back.

The editor shows the thresholds as form fields and the rules as text. The document is kept as
text (its comments are part of what a reviewer reads), so both edits are made on the text:

- ``split(document)`` cuts it at the top-level ``rules:`` line into head, rules and tail;
- ``set_thresholds(head, values)`` rewrites the value of each ``thresholds:`` line in place,
  keeping its comment;
- ``set_version(document, version)`` rewrites the top-level ``version:`` line;
- ``lint(document, rules_start)`` compiles the document with the policy validator
  (compliance.policy_versions) and points each error at the editor field it belongs to and, for
  the rules, at the line of the rules text (1-based, as the editor counts).

No Flask here; errors are ``Problem`` values the page renders next to their field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from policies import yaml_text

from ..compliance import policy_versions
from ..errors import DomainError

RULES_FIELD = "rules"
DOCUMENT_FIELD = "document"
_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")
_RULES_LINE = re.compile(r"^rules\s*:\s*(#.*)?$")
_RULE_AT = re.compile(r"rule '([^']+)'|rules\[(\d+)\]")
# "  name: value  # comment": indent, name, colon, value (a [list], a quoted or a bare scalar), comment
_THRESHOLD_LINE = re.compile(r"^(\s+)([A-Za-z_][A-Za-z0-9_]*)(\s*:\s*)(\[[^\]#]*\]|\"[^\"]*\"|'[^']*'|[^#\n]*?)"
                             r"(\s+#.*)?(\r?\n)?$")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Problem:
    field: str            # the editor field: "rules", "thresholds.<name>", "reason", "document"...
    message: str
    line: int | None = None  # line in the rules text (1-based), when the problem is in a rule
    rule: str | None = None


def split(document: str) -> tuple[str, str, str]:
    """(head, rules, tail): rules runs from the top-level block ``rules:`` line to the next
    top-level key. A document without such a line (rules written inline) has rules ''."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _RULES_LINE.match(line)), None)
    if start is None:
        return document, "", ""
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    return "".join(lines[:start]), "".join(lines[start:end]), "".join(lines[end:])


def check_rules_text(rules: str) -> list[Problem]:
    """The rules text holds the `rules:` section alone: another top-level key there would
    silently replace the form's thresholds or the document's other sections."""
    problems = []
    seen_rules = False
    for n, line in enumerate(rules.replace("\r\n", "\n").split("\n"), 1):
        m = _TOP_KEY.match(line)
        if m is None:
            continue
        if m.group(1) == "rules" and not seen_rules:
            seen_rules = True
            continue
        problems.append(Problem(RULES_FIELD, f"'{m.group(1)}:' starts a new section; only the rules are edited "
                                "here (thresholds in the form above, other sections through the API)", n))
    if not seen_rules:
        problems.insert(0, Problem(RULES_FIELD, "rules: the text must start with the line 'rules:'", 1))
    return problems


def join(head: str, rules: str, tail: str) -> str:
    rules = rules.replace("\r\n", "\n")
    if rules and not rules.endswith("\n"):
        rules += "\n"
    return head + rules + tail


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON value is a YAML flow value


def set_thresholds(head: str, values: dict[str, Any]) -> str:
    """`head` with each threshold in `values` set, in place in a block ``thresholds:`` section
    (comments kept); missing ones are appended to it; a section written inline is rewritten."""
    lines = head.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"^thresholds\s*:", line)), None)
    if start is None:
        block = "".join(f"  {k}: {_scalar(v)}\n" for k, v in values.items())
        return head + ("" if not head or head.endswith("\n") else "\n") + "thresholds:\n" + block
    if re.match(r"^thresholds\s*:\s*[^\s#]", lines[start]):  # inline {…}: one line, rewritten
        inline = yaml_text.load(lines[start]).get("thresholds") or {}
        merged = {**(inline if isinstance(inline, dict) else {}), **values}
        lines[start] = "thresholds:\n" + "".join(f"  {k}: {_scalar(v)}\n" for k, v in merged.items())
        return "".join(lines)
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    pending = dict(values)
    for i in range(start + 1, end):
        m = _THRESHOLD_LINE.match(lines[i])
        if m and m.group(2) in pending:
            value = pending.pop(m.group(2))
            comment = m.group(5) or ""
            lines[i] = f"{m.group(1)}{m.group(2)}{m.group(3)}{_scalar(value)}{comment}{m.group(6) or ''}"
    last = end
    while last > start + 1 and not lines[last - 1].strip():
        last -= 1  # append after the section's last line, before blank lines
    if last and not lines[last - 1].endswith("\n"):
        lines[last - 1] += "\n"
    lines[last:last] = [f"  {k}: {_scalar(v)}\n" for k, v in pending.items()]
    return "".join(lines)


def set_version(document: str, version: str) -> str:
    lines = document.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if re.match(r"^version\s*:", line):
            lines[i] = f"version: {_scalar(version)}\n"
            return "".join(lines)
    return f"version: {_scalar(version)}\n" + document


def thresholds_of(document: str) -> dict[str, Any]:
    try:
        doc = yaml_text.load(document)
    except yaml.YAMLError:
        return {}
    found = doc.get("thresholds") if isinstance(doc, dict) else None
    return dict(found) if isinstance(found, dict) else {}


# -- lint ---------------------------------------------------------------------------------------
def _yaml_problem(exc: yaml.YAMLError, rules_start: int, rules_lines: int) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    text = " ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
    text = text or str(exc).splitlines()[0]
    if mark is not None and rules_start <= mark.line < rules_start + rules_lines:
        line = mark.line - rules_start + 1
        return Problem(RULES_FIELD, f"column {mark.column + 1}: not valid YAML: {text}", line)
    return Problem(DOCUMENT_FIELD, f"not valid YAML: {text}")


def _child(node: yaml.Node, part: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        return node.value[int(part)]
    return None


def _rule_node(rules: yaml.Node | None, message: str) -> tuple[yaml.Node | None, str | None]:
    m = _RULE_AT.search(message)
    if not isinstance(rules, yaml.SequenceNode) or m is None:
        return None, None
    if m.group(2) is not None:
        index = int(m.group(2))
        return (rules.value[index] if index < len(rules.value) else None), None
    for item in rules.value:
        rule_id = _child(item, "id")
        if isinstance(rule_id, yaml.ScalarNode) and rule_id.value == m.group(1):
            return item, m.group(1)
    return None, m.group(1)


def _line_of(rules: yaml.Node | None, detail: dict[str, Any], rules_start: int) -> tuple[int | None, str | None]:
    """The rules-text line a validator message points at: its rule, then as deep into the
    field's path ('then.route[1].mode') as the document goes."""
    node, rule_id = _rule_node(rules, detail["message"])
    if node is None:
        return None, rule_id or detail.get("rule")
    for name, index in _PATH_PART.findall(detail.get("field") or ""):
        child = _child(node, name or index)
        if child is None:
            break
        node = child
    return node.start_mark.line - rules_start + 1, rule_id or detail.get("rule")


def lint(document: str, rules_start: int, rules_lines: int) -> list[Problem]:
    """Every problem of `document`, each pointed at its field; rules_start is the 0-based line
    where the rules text starts in it and rules_lines how many lines it has."""
    try:
        yaml_text.load(document)
    except yaml.YAMLError as exc:
        return [_yaml_problem(exc, rules_start, rules_lines)]
    try:
        policy_versions.validate_document(document)
    except DomainError as exc:
        if not exc.details:
            return [Problem(DOCUMENT_FIELD, exc.message)]
        root = yaml.compose(document, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # bounded above
        rules = _child(root, "rules") if root is not None else None
        problems = []
        for detail in exc.details:
            field = detail.get("field") or ""
            if field.startswith("thresholds."):
                problems.append(Problem(field, detail["message"]))
                continue
            line, rule = _line_of(rules, detail, rules_start)
            if rule is not None or line is not None or field == "rules":
                problems.append(Problem(RULES_FIELD, detail["message"], line, rule))
            else:
                problems.append(Problem(DOCUMENT_FIELD, detail["message"]))
        return problems
    return []


__all__ = ["DOCUMENT_FIELD", "RULES_FIELD", "Problem", "check_rules_text", "join", "lint", "set_thresholds",
           "set_version", "split", "thresholds_of"]
