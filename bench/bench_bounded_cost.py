"""What the hostile bodies of issue #19 cost now: CPU time and peak Python memory of each,
through the same code the routes run (policy loading, template compile + render, the JSON
parser), in this process. Not a speed benchmark: each line is a bound that used to be
seconds to minutes and gigabytes (the issue's figures; the audits' reproductions).

    .venv/bin/python bench/bench_bounded_cost.py
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.content.render import RenderError, compile_source  # noqa: E402
from policies import PolicyError, load_policy  # noqa: E402
from providers import safe_json  # noqa: E402


def alias_bomb(levels: int = 8, width: int = 10) -> str:
    lines = ['a0: &a0 [' + ",".join(['"x"'] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def long_text_aliases(chars: int = 50_000, refs: int = 800) -> str:
    return (f'description: &s "{"A" * chars}"\nthresholds: {{sms_max_segments: [' + ", ".join(["*s"] * refs)
            + "]}\n")


def wide_policy(categories: int = 1016, rules: int = 10, leaves: int = 200) -> str:
    """Categories and rules by aliases: compiling cost categories x rules x leaves before."""
    when = "[" + ", ".join(f"{{fact: category, is: c{i}}}" for i in range(leaves)) + "]"
    cats = "".join(f"  c{i}: *a\n" for i in range(categories))
    rule_lines = "".join(f"  - {{id: r{i}, title: t, cites: x, when: {{any: *w}}, then: {{route: [email]}}, "
                         f"reason: r}}\n" for i in range(rules))
    return (f"version: x\nx-a: &a {{critical: false, legal: false, marketing: false}}\nx-w: &w {when}\n"
            f"categories:\n{cats}rules:\n{rule_lines}")


def cost(fn) -> str:
    tracemalloc.start()
    cpu = time.process_time()
    try:
        fn()
        outcome = "accepted"
    except (PolicyError, RenderError, ValueError) as exc:
        outcome = f"refused ({type(exc).__name__})"
    spent, peak = time.process_time() - cpu, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return f"{spent * 1000:8.1f} ms CPU  {peak / 1e6:7.2f} MB peak  {outcome}"


TEMPLATES = {
    "template: sort in a loop (the issue's, 8.8 s)": "{% for i in range(50) %}{% if ((range(1000)|list)*100)|sort"
                                                     "|first %}{% endif %}{% endfor %}",
    "template: its range(1000) version (~3 min)": "{% for i in range(1000) %}{% if ((range(1000)|list)*10)|sort"
                                                  "|first %}{% endif %}{% endfor %}",
    "template: join, 100k separator (430 MB)": "{{ range(1000)|join('x' * 100000) }}",
    "template: nested lists compared (13 s)": "{% if [[[1]*2000]*2000]*2000 == [[[1]*2000]*2000]*2000 %}x"
                                              "{% endif %}",
    "template: sort of shared long strings (1.2 GB)": "{{ (['A' * 100000] * 10000)|sort|length }}",
}


def main() -> None:
    rows = [("policy: alias bomb, 472 bytes (30 s, 3.7 GB)", lambda: load_policy(alias_bomb())),
            ("policy: one long string aliased 800 times", lambda: load_policy(long_text_aliases())),
            ("policy: 1,016 aliased categories x 10 rules (82 s)", lambda: load_policy(wide_policy()))]
    rows += [(name, lambda src=src: compile_source(src).render({})) for name, src in TEMPLATES.items()]
    for k in (16_000, 128_000):
        body = '"' + '\\"' * k
        rows.append((f"JSON: a quote and {k:,} escaped quotes", lambda body=body: safe_json.loads(body)))
    for name, fn in rows:
        print(f"{name:52s} {cost(fn)}")


if __name__ == "__main__":
    main()
