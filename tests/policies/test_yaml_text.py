"""Policy YAML from untrusted authors (issue #19 §1, §2): loaded in bounded time and memory
into plain JSON values, or refused with a YAML error saying where. Both parsers: libyaml's
(used where PyYAML has it) and PyYAML's own."""

from __future__ import annotations

import time
import tracemalloc

import pytest
import yaml

from policies import yaml_text


def alias_bomb(levels: int = 8, width: int = 10) -> str:
    lines = ['a0: &a0 [' + ",".join(['"x"'] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.fixture(params=[False, True], ids=["libyaml", "python"])
def load(request):
    return lambda text, **kw: yaml_text.load(text, pure_python=request.param, **kw)


HOSTILE = {
    "alias_bomb": (alias_bomb(), "aliases"),
    "alias_bomb_in_a_mapping": ("a: &a {x: 1, y: 2}\n" + "".join(
        f"l{i}: &l{i} {{" + ", ".join(f"k{j}: *{'a' if i == 0 else f'l{i - 1}'}" for j in range(10)) + "}\n"
        for i in range(7)), "aliases"),
    "merge_key_bomb": ("a: &a {x: 1}\n" + "".join(
        f"m{i}: &m{i} {{<<: [" + ", ".join([f"*{'a' if i == 0 else f'm{i - 1}'}"] * 10) + "], y: 1}\n"
        for i in range(8)), ""),
    "deep_flow": ("a: " + "[" * 10_000, "nest"),
    "deep_flow_mapping": ("a: " + "{b: " * 10_000, "nest"),
    "deep_block": ("".join("  " * i + f"k{i}:\n" for i in range(200)), "nested deeper"),
    "huge_integer": ("version: " + "9" * 10_000 + "\n", "integer too large"),
    "huge_negative_integer": ("n: -" + "9" * 30 + "\n", "integer too large"),
    "nan": ("n: .nan\n", "finite"),
    "infinity": ("n: -.inf\n", "finite"),
    "binary": ("b: !!binary aGVsbG8=\n", "not supported"),
    "set": ("s: !!set {a: null}\n", "not supported"),
    "python_object": ("p: !!python/object/apply:os.system ['true']\n", "python/object"),
    "nul_escape": ('s: "a\\0b"\n', ""),
    "surrogate_escape": ('s: "\\ud800"\n', ""),
    "too_long": ("a: " + "x" * (yaml_text.MAX_CHARS + 1) + "\n", "the limit is"),
    # one 10,000-character string aliased 1,000 times: 14 KB of text, 10 MB expanded
    "long_scalar_aliases": ('s: &s "' + "A" * 10_000 + '"\nl: [' + ", ".join(["*s"] * 1_000) + "]\n",
                            "characters of text once its aliases"),
    "long_scalar_alias_chain": ('s: &s "' + "A" * 30_000 + '"\nt: &t [' + ", ".join(["*s"] * 6) + "]\nu: ["
                                + ", ".join(["*t"] * 6) + "]\n",
                                "characters of text once its aliases"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_are_refused_in_bounded_time_and_memory(load, case):
    text, needle = HOSTILE[case]
    tracemalloc.start()
    cpu = time.process_time()
    try:
        with pytest.raises(yaml.YAMLError) as caught:
            load(text)
    finally:
        spent = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert needle in str(caught.value), str(caught.value)
    assert spent < 2, spent              # a bound, not a speed test: seconds to minutes without the limits
    assert peak < 50_000_000, peak


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 2026-01-15\n", {"version": "2026-01-15"}),
    ("version: 0000-01-01\n", {"version": "0000-01-01"}),   # no such date: still a name
    ("version: 2026-13-45\n", {"version": "2026-13-45"}),
    ("at: 2026-01-15T10:00:00Z\n", {"at": "2026-01-15T10:00:00Z"}),
    ("n: 12345678901234567890\nf: 1.5e+10\nb: true\nz: null\n",
     {"n": 12345678901234567890, "f": 1.5e10, "b": True, "z": None}),
    ("base: &b {x: 1}\nuse: {<<: *b, y: 2}\nlist: [*b, *b]\n",
     {"base": {"x": 1}, "use": {"x": 1, "y": 2}, "list": [{"x": 1}, {"x": 1}]}),
    ('s: "\\U0001F600 \\u00e9"\n', {"s": "\U0001F600 \u00e9"}),
])
def test_ordinary_documents_load_as_plain_values(load, text, expected):
    assert load(text) == expected


def test_aliases_within_the_limit_are_fine(load):
    doc = load(alias_bomb(levels=3, width=10))
    assert len(doc["a3"]) == 10 and doc["a3"][0][0][0][0] == "x"


def test_expanded_text_is_counted_up_to_its_limit_and_the_refusal_says_where(load):
    text = 's: &s "' + "A" * 40_000 + '"\nl: [' + ", ".join(["*s"] * 23) + "]\n"   # 960,003 expanded
    assert len(load(text)["l"]) == 23
    with pytest.raises(yaml_text.YamlLimitError) as caught:
        load(text.replace("]", ", *s, *s, *s]"))   # the list alone: 1,040,000
    assert caught.value.problem_mark.line == 1 and "line 2, column 4" in str(caught.value)


def test_the_shipped_policy_loads_the_same_as_before(load):
    from policies.document import CATEGORIES_DEFAULT_PATH

    text = open(CATEGORIES_DEFAULT_PATH, encoding="utf-8").read()
    assert load(text) == yaml.safe_load(text)
