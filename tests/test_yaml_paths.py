"""The two ways of building YAML (straight from libyaml's events, or from composed nodes) give
the same data, and the event path is the one plain files take.

The event path may decline any document (the node path then builds it, or says what is wrong);
what it builds must be exactly what the node path builds: same keys in the same order, same
values of the same types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetguard.rules import load_rules_text, yamlio
from budgetguard.rules.yamlio import YamlError, load_yaml

ROOT = Path(__file__).resolve().parent.parent

# scalars that resolve in every way there is (what the event path declines is tested below)
PLAIN = [
    "a", "b c", "on", "yes", "No", "null", "Null", "~", "true", "True", "FALSE", "1", "-7",
    "0x1F", "0o17", "1_000", "1.50", "-2.5e3", ".inf", "-.Inf", ".NaN", "2024-01-01", "<<",
    "0x", "1e400", "12:30", "proj_*", "gpt-4o*",
]  # fmt: skip
QUOTED = ["'null'", '"1"', "'<<'", "'~'", '"0x10"', "'True'", '"\\x24{X}"', "'a''b'", '""']
# keys that look alike but are not (``null`` is the key 'None', ``'null'`` is 'null')
KEYS = ["a", "null", "'null'", "~", "'~'", "True", "'True'", "0x10", "'0x10'", "1", '"1"']

scalars = st.sampled_from(PLAIN + QUOTED)
keys = st.sampled_from(KEYS)
flow = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]")
        | st.lists(st.tuples(keys, inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        )
    ),
    max_leaves=12,
)
documents = st.lists(st.tuples(keys, flow), max_size=5).map(
    lambda pairs: "".join(f"{k}: {v}\n" for k, v in pairs)
) | flow.map(lambda value: f"x: {value}\n")


def typed(value: Any) -> Any:
    """``value`` with every type spelled out: ``1 == Decimal(1) == True`` must not pass."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, str(value))


def through_nodes(text: str) -> Any:
    node = yamlio._compose(text)
    return None if node is None else yamlio._Builder().build(node, 0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_the_event_path_builds_what_the_node_path_builds(text: str) -> None:
    try:
        from_events = yamlio._Events(text).load()
    except yamlio._Unsupported:
        return  # the node path's to build or refuse
    assert typed(from_events) == typed(through_nodes(text)), text


@pytest.mark.parametrize(
    "text",
    [
        "a: {null: 1, 'null': 2}\n",  # a plain key and a quoted one of the same text
        "a: {~: 1, '~': 2, 0x10: 3, '0x10': 4, True: 5, 'True': 6}\n",
        "- {a: [1, {b: yes}], 'c': \"on\"}\n- - 1.0\n  - 1\n",
        "",
        "# only a comment\n",
        "---\n",
        "x:\n  y: |\n    text\n  z: >-\n    folded\n",
    ],
)
def test_the_two_paths_agree_where_keys_and_values_look_alike(text: str) -> None:
    assert typed(yamlio._Events(text).load()) == typed(through_nodes(text))


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "a: !!str 1\n",  # tags
        "b: {c: 1}\na: {<<: {c: 2}}\n",  # merge keys
        "a: 1\na: 2\n",  # a mistake: the node path says where
        "a: [\n",  # a syntax error
        "a: 1\n---\nb: 2\n",  # two documents
        "x: " + "[" * 70 + "]" * 70 + "\n",  # nested too deeply
        "x: " + "9" * 45 + "\n",  # a number too long
    ],
)
def test_the_event_path_leaves_the_rest_to_the_node_path(text: str) -> None:
    with pytest.raises(yamlio._Unsupported):
        yamlio._Events(text).load()
    try:
        load_yaml(text)
    except YamlError:
        return
    assert typed(load_yaml(text).data) == typed(through_nodes(text))


def test_plain_files_load_without_composing_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> None:
        raise AssertionError("composed nodes for a plain file that loaded without a mistake")

    monkeypatch.setattr(yamlio, "_compose", refuse)
    rules = load_rules_text((ROOT / "rules.example.yaml").read_text(), env={"X": "1"})
    assert rules.budgets
