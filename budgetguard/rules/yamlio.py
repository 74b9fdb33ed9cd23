"""YAML in and out with positions: plain data plus where each key and value was written.

Parsing uses PyYAML's C parser (libyaml) and builds the data with a constructor of our own,
which is what makes the loader safe on hostile input: aliases are shared nodes, so values
built again through an alias are counted (a billion-laughs bomb is refused after
``MAX_ALIASED`` of them); nesting is bounded at ``MAX_DEPTH``; unknown tags, control
characters (with their line:col) and numbers too long to be meant are refused. Plain scalars
resolve as YAML 1.2 core (``on``/``yes`` stay text); numbers load as exact ``Decimal``
(floats) or ``int``; merge keys (``<<: *base``) merge, the mapping's own keys winning.

Two paths, one meaning. Most files are plain mappings, lists and scalars: those are built
straight from libyaml's events (``_Events``), with no node objects, in two thirds of the time
of composing nodes and building from them (0.2 s against 0.3 s at 10,000 budgets). The first
anchor, alias, tag or merge key, and every mistake, sends the file down the node path
(``_Builder``), which handles all of YAML we accept and says what is wrong and where; the
event path never reports anything itself. Positions are found in composed nodes only when
something is reported.
"""

from __future__ import annotations

import gc
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

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
_STR = _TAG + "str"
_MERGE = _TAG + "merge"
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


class Positions:
    """0-based (line, column) of keys and values by their path in the data.

    Found in the document's nodes, composed again the first time one is asked for: recording
    a position for every key and value cost more than building the data, and only mistakes
    and warnings are ever reported with one.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        #: each mapping's entries by name, made the first time one is looked up: errors are
        #: found in time linear in their number (2,000 unknown keys in one mapping took 43 s
        #: when each lookup scanned the mapping)
        self._entries: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    @cached_property
    def _root(self) -> yaml.Node | None:
        root = _compose(self._text)  # it was loaded, so it composes
        # a document that is one scalar was never given a position: it is reported at 1:1
        return root if isinstance(root, yaml.CollectionNode) else None

    def of_value(self, path: Path) -> tuple[int, int]:
        """Where the value at ``path`` (or the nearest enclosing one) was written."""
        _, _, node = self._find(path)
        return (0, 0) if node is None else _at(node)

    def of_key(self, path: Path) -> tuple[int, int]:
        found, key, node = self._find(path)
        if found == len(path) and key is not None:
            return _at(key)
        return (0, 0) if node is None else _at(node)

    def written(self, path: Path) -> bool:
        """Whether the data has a value at ``path`` (not only at an enclosing path)."""
        return self._root is not None and self._find(path)[0] == len(path)

    def _find(self, path: Path) -> tuple[int, yaml.Node | None, yaml.Node | None]:
        """How many parts of ``path`` the data has, and the key and value nodes of the
        last of them (no key for a list item or the whole document)."""
        key, node = None, self._root
        if node is None:
            return 0, None, None
        for depth, part in enumerate(path):
            entry: tuple[yaml.Node | None, yaml.Node] | None = None
            if (
                type(node) is yaml.SequenceNode
                and type(part) is int
                and 0 <= part < len(node.value)
            ):
                entry = (None, node.value[part])
            elif type(node) is yaml.MappingNode and type(part) is str:
                entries = self._entries.get(id(node))
                if entries is None:
                    entries = self._entries[id(node)] = _entries(node)
                entry = entries.get(part)
            if entry is None:
                return depth, key, node
            key, node = entry
        return len(path), key, node


def _entries(node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The key and value nodes that give each name its value, as ``_Builder`` chose them:
    the mapping's own first key of that name, else the first merged one."""
    own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in node.value:
        if _is_merge(key):
            merged.extend(_flattened(value))
        else:
            own.setdefault(_name(_value(key.value, key.tag)), (key, value))
    for key, value in merged:
        own.setdefault(_name(_value(key.value, key.tag)), (key, value))
    return own


def _flattened(
    value: yaml.Node, check: Callable[[yaml.Node], None] | None = None, depth: int = 0
) -> list[tuple[yaml.Node, yaml.Node]]:
    """The pairs ``<<: value`` merges, in the order that decides (the first pair of a name
    wins): each source's own pairs, then what its own ``<<`` merges (chained merges).
    ``check`` sees each source first (the builder refuses and counts there)."""
    if depth >= MAX_DEPTH:
        raise _fail(value, f"merges nested too deeply (more than {MAX_DEPTH} levels)")
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    for source in _merge_sources(value):
        if check is not None:
            check(source)
        nested: list[tuple[yaml.Node, yaml.Node]] = []
        for key, item in source.value:
            if _is_merge(key):
                nested.extend(_flattened(item, check, depth + 1))
            else:
                pairs.append((key, item))
        pairs.extend(nested)
    return pairs


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
            return _PLAIN if implicit[0] else _STR
        return _TAG + ("map" if kind is yaml.MappingNode else "seq")


def _compose(text: str) -> yaml.Node | None:
    """The document's nodes (libyaml's errors raised as they come)."""
    composer = _Composer(text)
    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles to collect: the collector would triple the time
    try:
        return composer.get_single_node()
    finally:
        composer.dispose()
        if collecting:
            gc.enable()


def _at(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line, node.start_mark.column)


def _fail(node: yaml.Node, message: str) -> YamlError:
    line, col = _at(node)
    return YamlError(line + 1, col + 1, message)


def _is_merge(key: yaml.Node) -> bool:
    return bool(key.tag == _MERGE or (key.tag == _PLAIN and key.value == "<<"))


def _merge_sources(value: yaml.Node) -> list[yaml.Node]:
    """What ``<<:`` merges: one mapping, or a list of them (checked by ``_Builder``)."""
    return value.value if isinstance(value, yaml.SequenceNode) else [value]


def _name(key: Any) -> str:
    """A key's value as the key it is in the data: text (``true``, ``1``, ``None``...)."""
    return str(key).lower() if isinstance(key, bool) else str(key)


class _Unsupported(Exception):
    """What the event path leaves to the node path."""


class _Events:
    """Plain data straight from libyaml's events, for documents of plain mappings, lists
    and scalars only: anything else raises ``_Unsupported`` (see the module's docstring).

    It accepts exactly what ``_Builder`` builds without a word, and builds the same data.
    """

    def __init__(self, text: str) -> None:
        self.parser = CParser(text)
        self.next = self.parser.get_event
        self.plain: dict[str, Any] = {}  # plain scalar text -> its (immutable) value
        self.names: dict[str, str] = {}  # plain key text -> the key (never a merge key)

    def load(self) -> Any:
        try:
            self.next()  # the stream's start
            event = self.next()
            data = None
            if type(event) is not StreamEndEvent:  # a document (else: none, as when empty)
                data = self.node(self.next(), 0)
                self.next()  # the document's end
                if type(self.next()) is not StreamEndEvent:
                    raise _Unsupported  # another document: the node path refuses it
            return data
        except (_Refused, yaml.YAMLError):
            raise _Unsupported from None
        finally:
            self.parser.dispose()

    def node(self, event: Any, depth: int) -> Any:
        kind = type(event)
        if kind is ScalarEvent:
            return self.scalar(event)
        if kind not in (MappingStartEvent, SequenceStartEvent) or depth >= MAX_DEPTH:
            raise _Unsupported  # an alias, or nested too deeply
        if event.anchor is not None or event.tag is not None:
            raise _Unsupported
        if kind is SequenceStartEvent:
            items = []
            while type(event := self.next()) is not SequenceEndEvent:
                items.append(self.node(event, depth + 1))
            return items
        out: dict[str, Any] = {}
        names = self.names
        while type(event := self.next()) is not MappingEndEvent:
            plain = type(event) is ScalarEvent and event.implicit[0]
            name = names.get(event.value) if plain else None
            if name is None:  # not a plain key seen before
                if type(event) is not ScalarEvent or (plain and event.value == "<<"):
                    raise _Unsupported  # a key that is not text, or a merge key
                name = _name(self.scalar(event))
                if plain:
                    names[event.value] = name
            if name in out:
                raise _Unsupported  # a duplicate key
            event = self.next()
            out[name] = (
                self.scalar(event) if type(event) is ScalarEvent else self.node(event, depth + 1)
            )
        return out

    def scalar(self, event: Any) -> Any:
        if event.anchor is not None or event.tag is not None:
            raise _Unsupported
        if not event.implicit[0]:  # quoted, or a block scalar: text
            return event.value
        found = self.plain.get(event.value, self)
        if found is self:
            found = self.plain[event.value] = _value(event.value, _PLAIN)
        return found


class _Builder:
    """Plain data from composed nodes, counting what it builds again through aliases.

    One call per collection, none per scalar but a look-up of plain scalars already seen
    (``limit: 100`` resolved once, however often written).
    """

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.aliased = 0
        self.plain: dict[str, Any] = {}  # plain scalar text -> its (immutable) value
        self.names: dict[str, str] = {}  # plain key text -> the key (never a merge key)

    def scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            if node.tag == _PLAIN:
                found = self.plain.get(node.value, self)
                if found is self:
                    found = self.plain[node.value] = _value(node.value, _PLAIN)
                return found
            return _value(node.value, node.tag)
        except _Refused as exc:
            raise _fail(node, str(exc)) from None

    def build(self, node: yaml.Node, depth: int, again: bool = False) -> Any:
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
        scalar, inner = yaml.ScalarNode, depth + 1
        if type(node) is yaml.SequenceNode:
            return [
                self.scalar(item) if type(item) is scalar else self.build(item, inner, again)
                for item in node.value
            ]
        out: dict[str, Any] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        names = self.names
        for key, value in node.value:
            name = names.get(key.value) if type(key) is scalar and key.tag == _PLAIN else None
            if name is None:  # not a plain key seen before
                if _is_merge(key):
                    merged.extend(self._merge_pairs(value))
                    continue
                name = self._key(key)
            if name in out:
                raise _fail(key, f"duplicate key '{name}' (each key may appear once per mapping)")
            out[name] = (
                self.scalar(value) if type(value) is scalar else self.build(value, inner, again)
            )
        for key, value in merged:  # explicit keys win, then the first merged one
            name = self._key(key)
            if name not in out:
                out[name] = self.build(value, inner, True)
        return out

    def _merge_pairs(self, value: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
        return _flattened(value, self._merge_source)

    def _merge_source(self, source: yaml.Node) -> None:
        if not isinstance(source, yaml.MappingNode):
            raise _fail(source, "a merge key (<<) takes a mapping or a list of mappings")
        self.aliased += len(source.value)  # merged values are built again, too
        if self.aliased > MAX_ALIASED:
            raise _fail(source, f"aliases expand to more than {MAX_ALIASED:,} values")

    def _key(self, node: yaml.Node) -> str:
        if type(node) is not yaml.ScalarNode:
            raise _fail(node, "a key must be plain text, not a mapping or a list")
        name = _name(self.scalar(node))
        if node.tag == _PLAIN and node.value != "<<":  # a merge key must stay one, later on
            self.names[node.value] = name
        return name


class _Refused(Exception):
    """A scalar we do not accept; the node path reports it at the scalar."""


def _value(text: str, tag: str) -> Any:
    """A scalar's value by its tag (``_PLAIN``: resolved as YAML 1.2 core)."""
    if tag == _PLAIN:
        tag = _resolve_plain(text)
    elif tag not in _STANDARD_TAGS:
        raise _Refused(f"unsupported tag '{tag}'")
    if tag == _STR:
        return text
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise _Refused("expected true or false")
    if tag in (_TAG + "int", _TAG + "float"):
        return _number(text, tag)
    return text  # dates too: the rules read them as text


def _resolve_plain(text: str) -> str:
    if text in _NULL:
        return _TAG + "null"
    if text in _TRUE or text in _FALSE:
        return _TAG + "bool"
    if _INT.fullmatch(text):
        return _TAG + "int"
    if _FLOAT.fullmatch(text):
        return _TAG + "float"
    return _STR


def _number(text: str, tag: str) -> Any:
    if len(text) > _MAX_NUMBER_CHARS:
        raise _Refused(f"number too long (more than {_MAX_NUMBER_CHARS} characters)")
    clean = text.replace("_", "")
    if clean.lstrip("+-").lower() in (".inf", ".nan"):
        return text  # left as text, for the checks to refuse
    try:
        if tag == _TAG + "int" and _INT.fullmatch(text):
            return int(clean, 0) if clean[:2] in ("0o", "0x") else int(clean)
        value = Decimal(clean)
    except (ValueError, InvalidOperation):
        raise _Refused("not a number") from None
    return value


#: the line breaks of YAML (libyaml's marks count these): CRLF, CR, LF, NEL, LS, PS
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _control_character(text: str) -> YamlError | None:
    found = _CONTROL.search(text)
    if found is None:
        return None
    breaks = list(_BREAK.finditer(text, 0, found.start()))  # as libyaml counts lines
    line = len(breaks) + 1
    column = found.start() - (breaks[-1].end() if breaks else 0) + 1
    return YamlError(
        line, column, f"control character U+{ord(found.group()):04X} is not allowed in YAML"
    )


def load_yaml(text: str) -> Located:
    """Parse ``text`` into plain data and positions; ``YamlError`` says where and what."""
    bad = _control_character(text)
    if bad is not None:
        raise bad
    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles to collect: the collector would triple the time
    try:
        try:
            return Located(_Events(text).load(), Positions(text))
        except _Unsupported:
            pass
        node = _compose(text)
        data = None if node is None else _Builder().build(node, 0)
        return Located(data, Positions(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise YamlError(line, col, f"YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:  # the reader: what the scan above did not catch
        raise YamlError(1, 1, f"not YAML: {exc}") from None
    finally:
        if collecting:
            gc.enable()


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
