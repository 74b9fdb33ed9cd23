"""YAML in and out with positions: plain data plus where each key and value was written.

Numbers load as exact ``Decimal`` (floats) or ``int``; ruamel's round-trip types become plain
Python. Every mapping key and value, and every sequence item, gets its (line, column), so an
error about any part of the data can point at the place in the file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.nodes import ScalarNode

__all__ = ["Located", "Positions", "dump_yaml", "load_yaml"]

Path = tuple[str | int, ...]


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


class _ExactConstructor(RoundTripConstructor):
    """Floats become ``Decimal`` from their text, so money never passes through binary."""

    def construct_yaml_float(self, node: ScalarNode) -> Any:
        text = str(node.value).replace("_", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            return text  # .inf / .nan: left as text for the checks to refuse
        return value if value.is_finite() else text


_ExactConstructor.add_constructor("tag:yaml.org,2002:float", _ExactConstructor.construct_yaml_float)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _ExactConstructor
    yaml.allow_duplicate_keys = False
    return yaml


def _plain(node: Any, path: Path, positions: Positions) -> Any:
    if isinstance(node, CommentedMap):
        positions.values.setdefault(path, (node.lc.line, node.lc.col))
        out: dict[str, Any] = {}
        for key in node:
            name = str(key)
            positions.keys[(*path, name)] = node.lc.key(key)
            positions.values[(*path, name)] = node.lc.value(key)
            out[name] = _plain(node[key], (*path, name), positions)
        return out
    if isinstance(node, CommentedSeq):
        positions.values.setdefault(path, (node.lc.line, node.lc.col))
        items = []
        for index, item in enumerate(node):
            positions.values[(*path, index)] = node.lc.item(index)
            items.append(_plain(item, (*path, index), positions))
        return items
    if isinstance(node, bool):
        return bool(node)
    if type(node).__name__ == "ScalarBoolean":
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, str):
        return str(node)
    if node is None or isinstance(node, Decimal):
        return node
    return str(node)  # dates and other YAML types are text to the rules


def load_yaml(text: str) -> Located:
    """Parse ``text``; ruamel's errors propagate (the loader turns them into RuleErrors)."""
    node = _yaml().load(text)
    positions = Positions()
    data = _plain(node, (), positions)
    return Located(data, positions)


def dump_yaml(data: Any) -> str:
    """Plain data (dicts, lists, Decimals) as block-style YAML."""
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
