"""What one render may cost (issue #19 §1): every filter, loop, comparison and written value
is bounded, the whole render runs under a CPU budget, and a source whose own work is over a
limit is refused when saved (the dry run). Pure: no database, no app."""

from __future__ import annotations

import gc
import time
import tracemalloc

import pytest

from orchestrator.content import limits
from orchestrator.content.render import RenderError, compile_source, dry_run

# Each costs seconds to minutes of CPU, or hundreds of MB, without the limits.
CONSTANT_BOMBS = {
    "sort_in_loop": "{% for i in range(50) %}{% if ((range(1000)|list)*100)|sort|first %}{% endif %}{% endfor %}",
    "capped_sort_in_loop": "{% for i in range(1000) %}{% if ((range(1000)|list)*10)|sort|first %}{% endif %}"
                           "{% endfor %}",
    "join_separator": "{{ range(1000)|join('x' * 100000) }}",
    "join_shared_items": "{{ (['y' * 100000] * 1000)|join }}",
    "write_shared_items": "{{ ['y' * 100000] * 1000 }}",
    "string_filter": "{{ (['y' * 100000] * 1000)|string|length }}",
    "tojson": "{{ (['y' * 100000] * 1000)|tojson|length }}",
    "urlencode": "{{ (['y' * 100000] * 1000)|urlencode|length }}",
    "striptags": "{{ (['<b>' * 30000] * 1000)|striptags|length }}",
    "concat_shared_items": "{{ (['y' * 100000] * 1000) ~ 'z' }}",
    "compare_in_loop": "{% for i in range(1000) %}{% if (range(1000)|list)*10 == (range(1000)|list)*10 %}"
                       "{% endif %}{% endfor %}",
    "in_test_in_loop": "{% for i in range(1000) %}{% if " + " or ".join(
        f"-{n} is in (range(1000)|list)*10" for n in range(1, 9)) + " %}{% endif %}{% endfor %}",
    "sum_of_lists": "{{ ([[1] * 10000] * 10000)|sum(start=[]) }}",
    "map_list": "{{ ([range(1000)|list] * 10000)|map('unique')|map('list')|list|length }}",
    "unique_in_loop": "{% for i in range(1000) %}{{ ((range(1000)|list) * 10)|unique|list|length }}{% endfor %}",
    "loop_over_built_list": "{% for i in (range(1000)|list) * 100 %}{% endfor %}",
    # One call into C each, which no tick can interrupt: refused by what the values hold.
    "nested_compare": "{% if [[[1] * 2000] * 2000] * 2000 == [[[1] * 2000] * 2000] * 2000 %}x{% endif %}",
    "sort_case_folds_shared_strings": "{{ (['A' * 100000] * 10000)|sort|length }}",
    "sort_long_common_prefixes": "{{ (['A' * 99900 ~ 'b', 'A' * 99900 ~ 'a'] * 5000)|sort(true)|length }}",
    "literal_of_big_values": "{% if [(['A' * 90000] * 10), (['A' * 90000] * 10)] == [(['A' * 90000] * 10)] %}"
                             "{% endif %}",
}


def _refused(source: str, variables: dict | None = None) -> RenderError:
    compiled = compile_source(source)
    with pytest.raises(RenderError) as caught:
        compiled.render(variables or {})
    assert caught.value.over_limit, caught.value.message
    return caught.value


@pytest.mark.parametrize("case", sorted(CONSTANT_BOMBS))
def test_each_bomb_is_refused_in_bounded_time_and_memory(case):
    tracemalloc.start()
    cpu = time.process_time()
    try:
        error = _refused(CONSTANT_BOMBS[case])
    finally:
        spent = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert error.message.startswith("refused: ")
    # A bound, not a speed test: the budget is 0.1 s; without the limits these take seconds to minutes.
    assert spent < 2, (case, spent)
    assert peak < 50_000_000, (case, peak)


@pytest.mark.parametrize("case", sorted(CONSTANT_BOMBS))
def test_the_dry_run_refuses_each_bomb_when_saved(case):
    with pytest.raises(RenderError) as caught:
        dry_run(compile_source(CONSTANT_BOMBS[case]))
    assert caught.value.over_limit


def test_the_cpu_budget_stops_work_that_no_single_limit_catches():
    error = _refused(CONSTANT_BOMBS["capped_sort_in_loop"])
    assert "ms of CPU time" in error.message


def test_a_render_inside_a_budget_spends_that_budget():
    """One message's render is one budget, however many fields it has: a field's render
    inside an open budget does not start a fresh one."""
    piece = compile_source("{% for i in range(3) %}{{ i }}{% endfor %}")
    assert piece.render({}) == "012"
    with limits.cpu_budget(0.0), pytest.raises(RenderError) as caught:
        piece.render({})
    assert caught.value.over_limit and "ms of CPU time" in caught.value.message


@pytest.mark.parametrize(("source", "variables"), [
    ("{{ items|join(sep) }}", {"items": list(range(1000)), "sep": "x" * 100_000}),
    ("{% for i in range(1000) %}{{ (items * 10)|sort|first }}{% endfor %}", {"items": list(range(1000))}),
    ("{{ items * n }}", {"items": [1, 2], "n": 10**6}),
    ("{% for x in items %}{% endfor %}", {"items": list(range(limits.MAX_ITEMS + 1))}),
    ("{{ items|sort }}", {"items": list(range(limits.MAX_ITEMS + 1))}),
    ("{% if go %}{{ (['A' * 100000] * 10000)|sort|length }}{% endif %}ok", {"go": True}),  # hidden from the dry run
])
def test_variables_that_make_a_source_too_costly_are_refused_at_render(source, variables):
    dry_run(compile_source(source))  # saved: with stand-ins it costs nothing
    _refused(source, variables)


@pytest.mark.parametrize(("source", "variables", "expected"), [
    ("{{ items|join(', ') }}", {"items": ["a", "b", "c"]}, "a, b, c"),
    ("{{ items|sort|join }}", {"items": [3, 1, 2]}, "123"),
    ("{{ items|sum }}", {"items": [1, 2, 3.5]}, "6.5"),
    ("{{ (items|map('upper')|list)|join(' ') }}", {"items": ["a", "b"]}, "A B"),
    ("{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 2, "a": 1}}, "a=1;b=2;"),
    ("{% for x in items if x > 1 %}{{ loop.index }}/{{ loop.length }} {% endfor %}", {"items": [1, 2, 3]},
     "1/2 2/2 "),
    ("{% for x in items %}{{ x }}{% else %}none{% endfor %}", {"items": []}, "none"),
    ("{{ items|unique|list|length }} {{ 2 in items }} {{ items is sequence }}", {"items": [1, 2, 2]}, "2 True True"),
    ("{{ name|tojson }} {{ name|urlencode }} {{ '<b>x</b>'|striptags }}", {"name": "a b"}, '"a b" a%20b x'),
    ("{{ (items * 2)|length }}", {"items": list(range(limits.MAX_ITEMS // 2))}, str(limits.MAX_ITEMS)),
    ("{% for x in items %}.{% endfor %}", {"items": list(range(limits.MAX_ITEMS))}, "." * limits.MAX_ITEMS),
])
def test_ordinary_templates_render_as_before(source, variables, expected):
    assert compile_source(source).render(variables) == expected


@pytest.mark.parametrize("source", [
    "Hi {{ user.name.upper() }}, {{ user['plan'] }} {{ n * 2 }} {{ n + 1 }}",
    "{% for item in items %}{{ item.title }}{% endfor %}{{ items|length }}",
    "{% if total > 100 %}big{% endif %}{{ code|string }}{{ code|int }}",
    "{{ (items|sort)|join(', ') }} {{ price|round(2) }}",
])
def test_the_dry_run_accepts_sources_whatever_their_variables(source):
    """Stand-ins are not real values: a source failing on them for other reasons is not refused."""
    dry_run(compile_source(source))


def test_a_budget_is_per_thread_and_ends_with_its_block():
    with limits.cpu_budget(0.0):
        with pytest.raises(limits.LimitExceeded):
            limits.tick()
    limits.tick()  # outside a budget: nothing to spend


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_garbage_collection_during_a_render_is_not_charged_to_it():
    """A full collection of a large heap can take longer than a render's budget; it is the
    process's work, not the template's."""
    def slow_collection(phase, info):
        if phase == "start":
            _burn(0.15)

    gc.callbacks.append(slow_collection)
    try:
        with limits.cpu_budget(0.1):
            gc.collect()
            limits.tick()  # 0.15 s of CPU spent, all of it collecting: not refused
            _burn(0.11)
            with pytest.raises(limits.LimitExceeded):
                limits.tick()
    finally:
        gc.callbacks.remove(slow_collection)


def test_the_renders_of_one_request_share_a_pool():
    """A batch of 1,000 items each just under its own budget would cost 100 s: the items'
    renders share one pool, counted over the renders only."""
    with limits.render_pool(0.05):
        with limits.cpu_budget(1.0):
            _burn(0.03)
            limits.tick()
        _burn(0.1)  # work between renders is not counted
        with limits.cpu_budget(1.0), pytest.raises(limits.LimitExceeded) as caught:
            _burn(0.03)
            limits.tick()
    assert "50 ms" in str(caught.value)
