"""Rendering template sources in Jinja2's SandboxedEnvironment, hardened for sources
written by API clients and variables sent per message.

Jinja2's sandbox stops attribute escapes (`''.__class__`), but not work or memory: nested
loops, `'x' * 10**9`, `"%999999999d" % 1`, `{{ v ~ v ~ v … }}` or `"{:>999999999}".format(1)`
are all fine by it. So on top of it:
- sources are checked when saved: no `{% set %}`, macros, includes/imports/extends,
  recursive or nested loops, no underscore attributes (`refused` names the construct);
- the globals are only a `range` capped at MAX_RANGE; filters are an allow-list of the
  linear-cost ones; method calls are an allow-list (`upper`, `items`, …);
- `+ * ** %` and `~` check the size of what they would build before building it;
- every render runs under a CPU-time budget, and every filter, test, loop and written value is
  bounded in work and memory (limits.py, filters.py);
- the output is streamed and stopped at its limit.
When saved, a version is also rendered once with stand-in variables (`dry_run`), so a source
whose constant work alone is over the budget is refused then, not at its first send.
StrictUndefined makes a missing variable an error, never an empty string. HTML autoescaping
is on for the email HTML source only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame, operators
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment

from .filters import each, guard_filter, guard_test
from .limits import (
    MAX_EXPANDED,
    MAX_ITEMS,
    MAX_OUTPUT_CHARS,
    MAX_VALUE_CHARS,
    LimitExceeded,
    check_expanded,
    check_text,
    text_size,
    tick,
    within_budget,
)

MAX_RANGE = 1000
MAX_POWER_EXPONENT = 64
MAX_INT_BITS = 10_000           # any integer an expression builds

SAFE_FILTERS = frozenset({
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
    "forceescape", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "reverse", "round", "select", "selectattr", "sort", "string", "striptags",
    "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "wordcount",
})
SAFE_METHODS = frozenset({
    "capitalize", "casefold", "endswith", "get", "isalnum", "isalpha", "isdigit", "islower", "isupper",
    "items", "keys", "lower", "lstrip", "rstrip", "split", "startswith", "strip", "title", "upper", "values",
})
_REFUSED_NODES: dict[type, str] = {
    nodes.Assign: "{% set %}", nodes.AssignBlock: "{% set %}", nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}", nodes.Include: "{% include %}", nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}", nodes.Extends: "{% extends %}", nodes.Block: "{% block %}",
    nodes.FilterBlock: "{% filter %}", nodes.With: "{% with %}",
    # `{% autoescape false %}` would let variables write raw HTML into the email.
    nodes.ScopedEvalContextModifier: "{% autoescape %}", nodes.EvalContextModifier: "{% autoescape %}",
}


class RenderError(Exception):
    """What went wrong, in a sentence; `variable` when a variable is at fault; `over_limit`
    when the render would cost more than one may (limits.py)."""

    def __init__(self, message: str, variable: str | None = None, *, over_limit: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.variable = variable
        self.over_limit = over_limit


def _repeat_limit(value: Any) -> int | None:
    """How large `value * n` may grow, in the unit len() counts; None for non-sequences."""
    if isinstance(value, str):
        return MAX_VALUE_CHARS
    if isinstance(value, list | tuple):
        return MAX_ITEMS
    return None


def _capped_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise LimitExceeded(f"range() is limited to {MAX_RANGE} items")
    return rng


class _Generator(CodeGenerator):
    """`a ~ b ~ c` builds one string: check its size before joining the parts. A comparison
    (`a == b`, `a in b`: one call into C, walking everything its operands hold) ticks the
    budget first and takes operands within MAX_EXPANDED only."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.checked_join({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("(environment.tick() or (environment.compared(")
        self.visit(node.expr, frame)
        self.write(")")
        for op in node.ops:
            self.visit(op, frame)
        self.write("))")

    def visit_Operand(self, node: nodes.Operand, frame: Frame) -> None:
        self.write(f" {operators[node.op]} environment.compared(")
        self.visit(node.expr, frame)
        self.write(")")


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    code_generator_class = _Generator

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        tick()
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER_EXPONENT:
                raise LimitExceeded(f"exponents are limited to {MAX_POWER_EXPONENT}")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
                raise LimitExceeded(f"numbers are limited to {MAX_INT_BITS} bits")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise LimitExceeded(f"numbers are limited to {MAX_INT_BITS} bits")
            for seq, n in ((left, right), (right, left)):
                limit = _repeat_limit(seq)
                if limit is not None and isinstance(n, int) and len(seq) * n > limit:
                    unit = "characters" if isinstance(seq, str) else "items"
                    raise LimitExceeded(f"a repeated value would exceed {limit} {unit}")
                if isinstance(seq, list | tuple) and isinstance(n, int) and n > 0 \
                        and text_size(seq, MAX_EXPANDED) * n > MAX_EXPANDED:
                    raise LimitExceeded(f"a repeated value would hold more than {MAX_EXPANDED} characters, "
                                        "counted with what it holds")
        elif operator == "%":
            if isinstance(left, str):
                raise SecurityError("'%' string formatting is not allowed; use variables directly")
        elif operator == "+":
            limit = _repeat_limit(left)
            if limit is not None and isinstance(right, str | list | tuple) and len(left) + len(right) > limit:
                raise LimitExceeded(f"a joined value would exceed {limit} "
                                    f"{'characters' if isinstance(left, str) else 'items'}")
            if isinstance(left, list | tuple):
                check_expanded([left, right], "a joined value")
        return super().call_binop(context, operator, left, right)

    def checked_join(self, join, parts: Iterable[Any]) -> str:
        tick()
        parts = tuple(parts)
        check_text(parts, what="a joined value")
        return join(parts)

    @staticmethod
    def tick() -> None:
        tick()

    compared = staticmethod(check_expanded)

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        return super().getitem(obj, argument)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
        tick()
        if isinstance(__obj, _Stand_in):
            return __obj
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if __obj is _capped_range or isinstance(owner, LoopContext) or (
                name in SAFE_METHODS and isinstance(owner, str | dict)):
            return super().call(__context, __obj, *args, **kwargs)
        raise SecurityError(f"calling {name or type(__obj).__name__}() is not allowed in templates")


def _finalize(value: Any) -> Any:
    """Every `{{ value }}` before it is turned into text."""
    tick()
    check_text(value, MAX_OUTPUT_CHARS, "a written value")
    return value


_EACH = "orchestrator_each"  # the filter every loop's iterable goes through (added after the checks)


def _environment(autoescape: bool) -> _Sandbox:
    env = _Sandbox(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True, finalize=_finalize)
    env.globals.clear()
    env.globals["range"] = _capped_range
    env.filters = {k: guard_filter(k, v) for k, v in env.filters.items() if k in SAFE_FILTERS}
    env.filters[_EACH] = each
    env.tests = {k: guard_test(v) for k, v in env.tests.items()}
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def _env(html: bool) -> _Sandbox:
    return _HTML if html else _TEXT


def _check_tree(tree: nodes.Template) -> None:
    def walk(node: nodes.Node, loop_depth: int) -> None:
        refused = _REFUSED_NODES.get(type(node))
        if refused:
            raise RenderError(f"{refused} is not allowed in templates")
        if isinstance(node, nodes.For):
            if node.recursive:
                raise RenderError("recursive loops are not allowed in templates")
            if loop_depth >= 1:
                raise RenderError("loops may not be nested in templates")
            loop_depth += 1
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(name, str) and name.startswith("_"):
                raise RenderError(f"attribute '{name}' is not allowed in templates")
        if isinstance(node, nodes.Filter) and node.name not in SAFE_FILTERS:
            raise RenderError(f"filter '{node.name}' is not allowed in templates")
        for child in node.iter_child_nodes():
            walk(child, loop_depth)

    walk(tree, 0)


def _bound_loops(tree: nodes.Template) -> None:
    """Every `{% for x in iterable %}` iterates `iterable|orchestrator_each` (filters.each)."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, _EACH, [], [], None, None, lineno=loop.lineno)


@dataclass(frozen=True)
class Compiled:
    """One source, checked and compiled; `variables` it reads from the caller."""

    source: str
    html: bool
    template: Any
    variables: frozenset[str]

    def render(self, variables: dict[str, Any], limit: int = MAX_OUTPUT_CHARS) -> str:
        """The text, under the render's CPU budget (the caller's, or one of its own)."""
        out: list[str] = []
        size = 0
        try:
            with within_budget():
                for chunk in self.template.generate(variables):
                    size += len(chunk)
                    if size > limit:
                        raise RenderError(f"the rendered text is longer than {limit} characters", over_limit=True)
                    out.append(chunk)
        except RenderError:
            raise
        except UndefinedError as exc:
            raise RenderError(f"{exc.message or exc}", variable=_undefined_name(exc)) from None
        except LimitExceeded as exc:
            raise RenderError(f"refused: {exc}", over_limit=True) from None
        except SecurityError as exc:
            raise RenderError(f"refused: {exc}") from None
        except (RecursionError, MemoryError):
            raise RenderError("the template nests too deeply to render") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            raise RenderError(f"cannot render: {type(exc).__name__}: {str(exc)[:200]}") from None
        return str("".join(out))


class _Stand_in:  # noqa: N801 - reads as what it is in tracebacks
    """Every variable in a dry run: any attribute or item of it is itself, it iterates as
    nothing, is false, empty and zero, and any arithmetic on it gives itself. What a dry run
    measures is therefore the work a source does whatever its variables are."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return ""

    def __html__(self) -> str:
        return ""

    def __int__(self) -> int:
        return 0

    __index__ = __int__

    def __float__(self) -> float:
        return 0.0

    def __eq__(self, other: object) -> bool:
        return other is self

    __hash__ = object.__hash__

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __contains__(self, item: object) -> bool:
        return False

    def _self(self, *args: Any) -> Any:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _self
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _self


STAND_IN = _Stand_in()


def dry_run(compiled: Compiled, limit: int = MAX_OUTPUT_CHARS) -> None:
    """Render `compiled` with every variable a stand-in: RenderError (over_limit) when its
    work alone, whatever the variables, is over a limit. Other failures are not the source's
    fault here (the stand-ins are not real values) and are left to the real render."""
    try:
        compiled.render(dict.fromkeys(compiled.variables, STAND_IN), limit)
    except RenderError as exc:
        if exc.over_limit:
            raise


def _undefined_name(exc: UndefinedError) -> str | None:
    message = exc.message or ""
    if message.startswith("'") and message.endswith("' is undefined"):
        return message[1:-len("' is undefined")]
    return None


def compile_source(source: str, *, html: bool = False) -> Compiled:
    """Parse, check and compile one source; RenderError says what is wrong (with the line)."""
    env = _env(html)
    try:
        tree = env.parse(source)
        _check_tree(tree)
        variables = frozenset(find_undeclared_variables(tree)) - set(env.globals)
        _bound_loops(tree)
        template = env.from_string(tree)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except SecurityError as exc:
        raise RenderError(f"refused: {exc}") from None
    except RecursionError:
        raise RenderError("the template nests too deeply") from None
    return Compiled(source, html, template, variables)
