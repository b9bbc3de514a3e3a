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
- the output is streamed and stopped at its limit.
StrictUndefined makes a missing variable an error, never an empty string. HTML autoescaping
is on for the email HTML source only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment

MAX_RANGE = 1000
MAX_VALUE_CHARS = 100_000       # any string or list an expression builds
MAX_OUTPUT_CHARS = 500_000      # one rendered field
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
    """What went wrong, in a sentence; `variable` when a variable is at fault."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.variable = variable


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


def _capped_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return rng


class _Generator(CodeGenerator):
    """`a ~ b ~ c` builds one string: check its size before joining the parts."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.checked_join({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    code_generator_class = _Generator

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER_EXPONENT:
                raise SecurityError(f"exponents are limited to {MAX_POWER_EXPONENT}")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
                raise SecurityError(f"numbers are limited to {MAX_INT_BITS} bits")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise SecurityError(f"numbers are limited to {MAX_INT_BITS} bits")
            for seq, n in ((left, right), (right, left)):
                if isinstance(n, int) and _size(seq) * n > MAX_VALUE_CHARS:
                    raise SecurityError(f"a repeated value would exceed {MAX_VALUE_CHARS} characters")
        elif operator == "%":
            if isinstance(left, str):
                raise SecurityError("'%' string formatting is not allowed; use variables directly")
        elif operator == "+" and _size(left) + _size(right) > MAX_VALUE_CHARS:
            raise SecurityError(f"a joined value would exceed {MAX_VALUE_CHARS} characters")
        return super().call_binop(context, operator, left, right)

    def checked_join(self, join, parts: Iterable[Any]) -> str:
        parts = tuple(parts)
        if sum(len(p) if isinstance(p, str) else len(str(p)) for p in parts) > MAX_VALUE_CHARS:
            raise SecurityError(f"a joined value would exceed {MAX_VALUE_CHARS} characters")
        return join(parts)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if __obj is _capped_range or isinstance(owner, LoopContext) or (
                name in SAFE_METHODS and isinstance(owner, str | dict)):
            return super().call(__context, __obj, *args, **kwargs)
        raise SecurityError(f"calling {name or type(__obj).__name__}() is not allowed in templates")


def _environment(autoescape: bool) -> _Sandbox:
    env = _Sandbox(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True)
    env.globals.clear()
    env.globals["range"] = _capped_range
    env.filters = {k: v for k, v in env.filters.items() if k in SAFE_FILTERS}
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


@dataclass(frozen=True)
class Compiled:
    """One source, checked and compiled; `variables` it reads from the caller."""

    source: str
    html: bool
    template: Any
    variables: frozenset[str]

    def render(self, variables: dict[str, Any], limit: int = MAX_OUTPUT_CHARS) -> str:
        out: list[str] = []
        size = 0
        try:
            for chunk in self.template.generate(variables):
                size += len(chunk)
                if size > limit:
                    raise RenderError(f"the rendered text is longer than {limit} characters")
                out.append(chunk)
        except RenderError:
            raise
        except UndefinedError as exc:
            raise RenderError(f"{exc.message or exc}", variable=_undefined_name(exc)) from None
        except SecurityError as exc:
            raise RenderError(f"refused: {exc}") from None
        except RecursionError:
            raise RenderError("the template nests too deeply to render") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            raise RenderError(f"cannot render: {type(exc).__name__}: {str(exc)[:200]}") from None
        return str("".join(out))


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
        template = env.from_string(tree)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except SecurityError as exc:
        raise RenderError(f"refused: {exc}") from None
    except RecursionError:
        raise RenderError("the template nests too deeply") from None
    return Compiled(source, html, template, variables)
