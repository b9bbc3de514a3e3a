"""YAML text from untrusted authors, loaded in bounded time and memory, into plain JSON values.

`yaml.safe_load` is safe from code execution, not from cost or from values nothing else can
hold. Its gaps, and what `load` does instead (no maintained library closes them: PyYAML,
ruamel.yaml and libyaml all expand aliases without a bound, so this is a SafeLoader subclass):

- aliases: 8 levels of anchors, each alias list 10 wide, are 472 bytes of text and 10^8 nodes
  to anything that walks the result (lint, diff, JSON). Each node's size is counted with its
  aliases expanded while the document is composed, and a document over MAX_NODES is refused
  before anything walks it. Nodes are not all: one alias of a 50,000-character string is one
  node, but 10,000 of them are 500 MB of JSON or error text. So the expanded *characters*
  (each scalar its length, each alias its anchor's) are counted too, up to MAX_EXPANDED_CHARS;
- nesting: composing recurses once per level (10,000 `[` raise RecursionError), and PyYAML's
  scanner spends the square of the number of unclosed `[`: refused past MAX_DEPTH (libyaml
  scans, where PyYAML has it; PyYAML's own scanner otherwise, with the same limit);
- values: a timestamp that does not exist (`0000-01-01`, `2026-13-45`) raises ValueError, a
  10,000-digit integer too (Python's digit limit), `.nan`/`.inf` and `!!binary`, `!!set`… are
  not JSON, and `"\\ud800"`/`"\\0"` escapes make strings no database stores. Dates stay the
  text they were written as; out-of-range numbers, other tags and such strings are refused.

Every refusal is a `yaml.YAMLError` whose text says where (line and column)."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

MAX_CHARS = 200_000
MAX_DEPTH = 64
MAX_NODES = 100_000
# Characters of scalars once aliases are expanded: 5x MAX_CHARS, so a document may reuse its
# text through anchors (a shared `when`, a repeated list) but no answer or error built from it
# (the JSON of a version, a diff, a review page) can grow past a few MB.
MAX_EXPANDED_CHARS = 5 * MAX_CHARS
MAX_INT_DIGITS = 20
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class YamlLimitError(yaml.MarkedYAMLError):
    """The document is over a limit (size, depth, nodes with aliases expanded)."""


class _PythonParser(Reader, Scanner, Parser):
    """PyYAML's own scanner and parser, for a PyYAML built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)

    def fetch_flow_collection_start(self, token_class: type) -> None:
        """`[` or `{`. The scanner reads every unclosed one ahead before it hands out the first
        (each may start a key), at a cost growing with the square of their number: 10,000 `[`
        take seconds. So the nesting is refused here, as it is scanned (libyaml has a limit)."""
        if self.flow_level >= MAX_DEPTH:
            raise YamlLimitError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)


class _Bounded(Composer, SafeConstructor, Resolver):
    """Events from a parser (mixed in below), composed by PyYAML's Composer in Python so that
    each node can be counted (libyaml's composer cannot be hooked), constructed as safe_load
    does, with the limits and value checks of this module."""

    def __init__(self, stream: str) -> None:
        self._parser_init(stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        # id(node) -> (nodes in it, characters of its scalars), aliases expanded
        self._sizes: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        alias = self.check_event(AliasEvent)
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimitError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if not alias:
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [child for pair in node.value for child in pair]
            else:
                children = []
            count, chars = 1, len(node.value) if isinstance(node.value, str) else 0
            for child in children:
                child_count, child_chars = self._sizes.get(id(child), (1, 0))  # (1, 0): an anchor still open
                count += child_count
                chars += child_chars
            if count > MAX_NODES:
                raise YamlLimitError(None, None, f"more than {MAX_NODES} values once its aliases (*) are "
                                     "expanded", mark)
            if chars > MAX_EXPANDED_CHARS:
                raise YamlLimitError(None, None, f"more than {MAX_EXPANDED_CHARS} characters of text once "
                                     "its aliases (*) are expanded", mark)
            self._sizes[id(node)] = (count, chars)
        return node

    # -- values ---------------------------------------------------------------------------

    def construct_yaml_str(self, node: Node) -> str:
        value = super().construct_yaml_str(node)
        if _UNSTORABLE.search(value):
            raise ConstructorError(None, None, "a string must not contain NUL (\\0) or lone surrogate "
                                   "(\\ud800-\\udfff) characters", node.start_mark)
        return value

    def construct_yaml_int(self, node: Node) -> int:
        text = str(self.construct_scalar(node)).replace("_", "").lstrip("+-")
        if len(text.lstrip("0")) > MAX_INT_DIGITS:
            raise ConstructorError(None, None, f"integer too large (at most {MAX_INT_DIGITS} digits)",
                                   node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: Node) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise ConstructorError(None, None, "a number must be finite (not .nan or .inf)", node.start_mark)
        return value

    def construct_yaml_timestamp(self, node: Node) -> str:  # type: ignore[override]
        """A date or time stays the text it was written as (no ValueError for 2026-13-45)."""
        return str(self.construct_scalar(node))

    def construct_unsupported(self, node: Node) -> Any:
        raise ConstructorError(None, None, f"the tag {node.tag} is not supported (only strings, numbers, "
                               "true/false, null, lists and mappings)", node.start_mark)


_Bounded.add_constructor("tag:yaml.org,2002:str", _Bounded.construct_yaml_str)
_Bounded.add_constructor("tag:yaml.org,2002:int", _Bounded.construct_yaml_int)
_Bounded.add_constructor("tag:yaml.org,2002:float", _Bounded.construct_yaml_float)
_Bounded.add_constructor("tag:yaml.org,2002:timestamp", _Bounded.construct_yaml_timestamp)
for _tag in ("binary", "set", "omap", "pairs"):
    _Bounded.add_constructor(f"tag:yaml.org,2002:{_tag}", _Bounded.construct_unsupported)


class _PythonLoader(_Bounded, _PythonParser):
    _parser_init = _PythonParser.__init__


try:  # libyaml scans and parses about 5x faster than PyYAML's Python, and limits flow nesting
    from yaml.cyaml import CParser

    class _CLoader(_Bounded, CParser):
        _parser_init = CParser.__init__

    _FAST: type[_Bounded] = _CLoader
except ImportError:  # PyYAML built without libyaml
    _FAST = _PythonLoader


def load(text: str, *, max_chars: int = MAX_CHARS, pure_python: bool = False) -> Any:
    """`text` parsed as one YAML document, within the limits above; yaml.YAMLError if not.
    `pure_python`: PyYAML's own parser even where libyaml is there (for tests)."""
    if len(text) > max_chars:
        raise YamlLimitError(None, None, f"the document is {len(text)} characters; the limit is {max_chars}")
    loader = (_PythonLoader if pure_python else _FAST)(text)
    try:
        return loader.get_single_data()
    except RecursionError:  # a construct the depth check does not see (never expected)
        raise YamlLimitError(None, None, "nested too deeply") from None
    finally:
        loader.dispose()
