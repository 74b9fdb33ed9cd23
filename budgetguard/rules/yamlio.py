"""YAML in and out with positions: plain data plus where each key and value was written.

Parsing composes nodes with PyYAML's C loader (libyaml: fast, and every node carries its
mark) and builds the data with a constructor of our own, which is what makes the loader safe
on hostile input: aliases are shared nodes, so values built again through an alias are
counted (a billion-laughs bomb is refused after ``MAX_ALIASED`` of them, in about 0.15 s);
nesting is bounded at ``MAX_DEPTH``; unknown tags, control characters (with their line:col)
and numbers too long to be meant are refused. Plain scalars resolve as YAML 1.2 core
(``on``/``yes`` stay text); numbers load as exact ``Decimal`` (floats) or ``int``; merge keys
(``<<: *base``) merge, the mapping's own keys winning.
"""

from __future__ import annotations

import gc
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from yaml._yaml import CParser

__all__ = [
    "MAX_ALIASED",
    "MAX_DEPTH",
    "Located",
    "Positions",
    "YamlError",
    "dump_yaml",
    "load_yaml",
]

Path = tuple[str | int, ...]

#: values built again through aliases (``*name``, ``<<: *name``): an alias bomb stops here
MAX_ALIASED = 100_000
#: mappings and lists inside one another
MAX_DEPTH = 64
#: characters of a number (more is no budget anyone means, and int() would refuse it)
_MAX_NUMBER_CHARS = 40

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_INT = re.compile(r"[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+")
_FLOAT = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_TAG = "tag:yaml.org,2002:"
_PLAIN = "?plain"  # a plain scalar: resolved by ``_resolve_plain``, as YAML 1.2 core
_STANDARD_TAGS = frozenset(
    _TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp", "merge", "value")
)
_BASIC = frozenset({_TAG + "map", _TAG + "seq", _TAG + "omap"})


class YamlError(Exception):
    """Not YAML we accept; ``line`` and ``column`` are 1-based."""

    def __init__(self, line: int, column: int, message: str) -> None:
        self.line, self.column, self.message = line, column, message
        super().__init__(f"{line}:{column}: {message}")


@dataclass
class Positions:
    """0-based (line, column) of keys and values by their path in the data."""

    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: Path) -> tuple[int, int]:
        """Where the value at ``path`` (or the nearest enclosing one) was written."""
        for cut in range(len(path), -1, -1):
            found = self.values.get(path[:cut])
            if found is not None:
                return found
        return (0, 0)

    def of_key(self, path: Path) -> tuple[int, int]:
        return self.keys.get(path) or self.of_value(path)


@dataclass
class Located:
    data: Any
    positions: Positions


class _Composer(CParser):  # type: ignore[misc]
    """libyaml's parser and composer, without PyYAML's YAML 1.1 resolver (slow, and wrong
    for us: it reads ``on`` as true): plain scalars are resolved as YAML 1.2 core later."""

    def descend_resolver(self, *_: Any) -> None:
        return None

    def ascend_resolver(self, *_: Any) -> None:
        return None

    def resolve(self, kind: type[yaml.Node], _value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _TAG + "str"
        return _TAG + ("map" if kind is yaml.MappingNode else "seq")


def _at(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line, node.start_mark.column)


def _fail(node: yaml.Node, message: str) -> YamlError:
    line, col = _at(node)
    return YamlError(line + 1, col + 1, message)


class _Builder:
    """Plain data from composed nodes, counting what it builds."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.seen: set[int] = set()
        self.aliased = 0
        self.plain: dict[str, Any] = {}  # plain scalar text -> its (immutable) value

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _PLAIN:
            found = self.plain.get(node.value, self)
            if found is self:
                found = self.plain[node.value] = _scalar(node)
            return found
        return _scalar(node)

    def build(self, node: yaml.Node, path: Path, depth: int, again: bool = False) -> Any:
        if type(node) is yaml.ScalarNode:
            return self.scalar(node)
        again = again or id(node) in self.seen
        self.seen.add(id(node))
        if again:  # built once more through an alias: count it and all it holds
            self.aliased += 1 + len(node.value)
            if self.aliased > MAX_ALIASED:
                raise _fail(node, f"aliases expand to more than {MAX_ALIASED:,} values")
        if depth >= MAX_DEPTH:
            raise _fail(node, f"nested too deeply (more than {MAX_DEPTH} levels)")
        if node.tag not in _BASIC:
            raise _fail(node, f"unsupported tag '{node.tag}'")
        self.positions.values.setdefault(path, _at(node))
        if isinstance(node, yaml.SequenceNode):
            items = []
            values = self.positions.values
            for index, item in enumerate(node.value):
                mark = item.start_mark
                values[(*path, index)] = (mark.line, mark.column)
                if type(item) is yaml.ScalarNode:
                    items.append(self.scalar(item))
                else:
                    items.append(self.build(item, (*path, index), depth + 1, again))
            return items
        return self._mapping(node, path, depth, again)

    def _mapping(
        self, node: yaml.MappingNode, path: Path, depth: int, again: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        explicit: set[str] = set()
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge" or (
                key_node.tag == _PLAIN and key_node.value == "<<"
            ):
                merged.extend(self._merge_pairs(value_node))
                continue
            name = self._key(key_node)
            if name in explicit:
                raise _fail(
                    key_node, f"duplicate key '{name}' (each key may appear once per mapping)"
                )
            explicit.add(name)
            self._put(out, (path, name), key_node, value_node, depth, again)
        for key_node, value_node in merged:  # explicit keys win, then the first merged one
            name = self._key(key_node)
            if name not in out:
                self._put(out, (path, name), key_node, value_node, depth, True)
        return out

    def _put(
        self,
        out: dict[str, Any],
        where: tuple[Path, str],
        key_node: yaml.Node,
        value_node: yaml.Node,
        depth: int,
        again: bool,
    ) -> None:
        path, name = where
        at = (*path, name)
        self.positions.keys[at] = _at(key_node)
        self.positions.values[at] = _at(value_node)
        if type(value_node) is yaml.ScalarNode:
            out[name] = self.scalar(value_node)
        else:
            out[name] = self.build(value_node, at, depth + 1, again)

    def _merge_pairs(self, value: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise _fail(source, "a merge key (<<) takes a mapping or a list of mappings")
            self.aliased += len(source.value)  # merged values are built again, too
            if self.aliased > MAX_ALIASED:
                raise _fail(source, f"aliases expand to more than {MAX_ALIASED:,} values")
            pairs.extend(source.value)
        return pairs

    def _key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise _fail(node, "a key must be plain text, not a mapping or a list")
        value = self.scalar(node)
        return str(value).lower() if isinstance(value, bool) else str(value)


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    tag = node.tag
    if tag == _PLAIN:
        tag = _resolve_plain(text)
    elif tag not in _STANDARD_TAGS:
        raise _fail(node, f"unsupported tag '{tag}'")
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise _fail(node, "expected true or false")
    if tag in (_TAG + "int", _TAG + "float"):
        return _number(node, text, tag)
    return text  # text, and dates too: the rules read them as text


def _resolve_plain(text: str) -> str:
    if text in _NULL:
        return _TAG + "null"
    if text in _TRUE or text in _FALSE:
        return _TAG + "bool"
    if _INT.fullmatch(text):
        return _TAG + "int"
    if _FLOAT.fullmatch(text):
        return _TAG + "float"
    return _TAG + "str"


def _number(node: yaml.ScalarNode, text: str, tag: str) -> Any:
    if len(text) > _MAX_NUMBER_CHARS:
        raise _fail(node, f"number too long (more than {_MAX_NUMBER_CHARS} characters)")
    clean = text.replace("_", "")
    if clean.lstrip("+-").lower() in (".inf", ".nan"):
        return text  # left as text, for the checks to refuse
    try:
        if tag == _TAG + "int" and _INT.fullmatch(text):
            return int(clean, 0) if clean[:2] in ("0o", "0x") else int(clean)
        value = Decimal(clean)
    except (ValueError, InvalidOperation):
        raise _fail(node, "not a number") from None
    return value


def _control_character(text: str) -> YamlError | None:
    found = _CONTROL.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return YamlError(
        line, column, f"control character U+{ord(found.group()):04X} is not allowed in YAML"
    )


def load_yaml(text: str) -> Located:
    """Parse ``text`` into plain data and positions; ``YamlError`` says where and what."""
    bad = _control_character(text)
    if bad is not None:
        raise bad
    loader = _Composer(text)
    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles to collect: the collector would triple the time
    try:
        node = loader.get_single_node()
        positions = Positions()
        data = None if node is None else _Builder(positions).build(node, (), 0)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise YamlError(line, col, f"YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:  # the reader: what the scan above did not catch
        raise YamlError(1, 1, f"not YAML: {exc}") from None
    finally:
        loader.dispose()
        if collecting:
            gc.enable()
    return Located(data, positions)


def dump_yaml(data: Any) -> str:
    """Plain data (dicts, lists, Decimals) as block-style YAML."""
    from ruamel.yaml import YAML  # only for writing: off the loading path

    yaml = YAML(typ="rt")
    yaml.default_flow_style = False

    def decimal(representer: Any, value: Decimal) -> Any:
        if value == value.to_integral_value() and "E" not in str(value):
            return representer.represent_scalar("tag:yaml.org,2002:int", str(int(value)))
        text = format(value, "f")
        return representer.represent_scalar("tag:yaml.org,2002:float", text)

    yaml.representer.add_representer(Decimal, decimal)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
