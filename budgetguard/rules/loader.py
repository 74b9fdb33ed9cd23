"""Load a rules file: YAML with positions, ``${ENV}`` interpolation, validation, and every
mistake reported at once as ``PATH:LINE:COL: message``.

Structure (types, allowed keys, enums) is checked by the pydantic models; what spans several
keys (window vs period, notifier names, thresholds, metric vs endpoint...) by ``checks``.
Nothing here quotes a value from the file, so no secret can reach an error message.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from budgetguard.rules.checks import build_rules
from budgetguard.rules.errors import RuleError, RulesError, did_you_mean
from budgetguard.rules.interpolate import interpolate
from budgetguard.rules.model import NotifyEntry, RawRules, Rules
from budgetguard.rules.notifiers import NotifierTypes, installed_notifier_types
from budgetguard.rules.yamlio import Positions, YamlError, load_yaml
from budgetguard.small_file import read_small_text

__all__ = ["MAX_RULES_BYTES", "Reporter", "load_rules", "load_rules_text"]

#: The largest rules file read (10,000 budgets take about 1 MB): past it, or anything but a
#: regular file (``/dev/zero``, a FIFO), is one error, never a read without end.
MAX_RULES_BYTES = 16 * 1024 * 1024

Loc = tuple[str | int, ...]
_DURATION_KEYS = frozenset({"window", "interval", "repeat", "max_staleness", "baseline"})


class Reporter:
    """Collects errors for one file, turning data paths into file positions."""

    def __init__(self, source: str, positions: Positions) -> None:
        self.source = source
        self.positions = positions
        self.errors: list[RuleError] = []
        self.warnings: list[RuleError] = []
        #: notifier name -> setting -> the variables it needs that are not set
        self.unresolved: dict[str, dict[str, list[str]]] = {}
        self._muted: set[Loc] = set()

    def mute(self, path: Loc) -> None:
        """Report nothing more about ``path`` (its value is already known to be wrong)."""
        self._muted.add(path)

    def at(self, path: Loc, message: str, *, key: bool = False) -> None:
        if path in self._muted:
            return
        line, col = self.positions.of_key(path) if key else self.positions.of_value(path)
        self.errors.append(RuleError(self.source, line + 1, col + 1, message))

    def warn(self, path: Loc, message: str) -> None:
        line, col = self.positions.of_value(path)
        self.warnings.append(RuleError(self.source, line + 1, col + 1, f"warning: {message}"))

    def validation(
        self,
        exc: ValidationError,
        prefix: Loc,
        model: type[BaseModel],
        skip: frozenset[str] = frozenset(),
    ) -> None:
        """Report each pydantic error in the file's words, at its place; none about the
        top-level keys in ``skip`` (settings whose variables are resolved later), nor then
        about the whole (what spans several keys is checked once they are resolved)."""
        errors = _none_branch(exc.errors(include_input=True, include_url=False))
        for err in _word_or_shape(_one_branch(errors)):
            loc: Loc = tuple(err["loc"])
            if skip and (not loc or loc[0] in skip):
                continue
            self._one(err, (*prefix, *loc), loc, model)

    def _one(self, err: Any, path: Loc, loc: Loc, model: type[BaseModel]) -> None:
        kind = err["type"]
        key = str(loc[-1]) if loc else ""
        name = key
        if key == "[key]" and len(loc) > 1:  # a mapping's key (a project id, say)
            name = f"key '{loc[-2]}'"
        if loc and isinstance(loc[-1], int):  # an item of a list: name the list
            name = str(loc[-2]) if len(loc) > 1 else "item"
            if self.positions.written(path):  # written as a list, not a single value
                name += f" (item {loc[-1] + 1})"
        value = err.get("input")
        if kind == "extra_forbidden":
            choices = _allowed_keys(model, loc[:-1])
            self.at(path, f"unknown key '{key}'{did_you_mean(key, choices)}", key=True)
        elif kind == "missing":
            self.at(path[:-1], f"missing required key '{key}'")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            got = " got a list" if isinstance(value, list) else f" got {_kind(value)}"
            self.at(path, f"{name}: expected a mapping (key: value),{got}")
        elif kind in ("tuple_type", "list_type"):
            self.at(path, f"{name}: expected a list, got {_kind(value)}")
        elif kind == "string_pattern_mismatch":
            self.at(path, f"{name}: {_pattern_message(key)}")
        elif kind == "literal_error":
            expected = err["msg"].removeprefix("Input should be ")
            self.at(path, f"{name}: expected {expected}")
        elif kind in (
            "decimal_parsing",
            "decimal_type",
            "float_parsing",
            "float_type",
            "int_parsing",
            "int_type",
        ):
            self.at(path, f"{name}: expected a number")
        elif kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
            self.at(path, f"{name}: {err['msg'].replace('Input should be', 'must be')}")
        elif kind == "too_short":
            self.at(path, f"{name}: give at least {err['ctx']['min_length']}")
        elif kind in ("bool_parsing", "bool_type"):
            self.at(path, f"{name}: expected true or false")
        elif kind in ("string_type",):
            self.at(path, f"{name}: expected text, got {_kind(value)}")
        elif kind == "value_error":
            self.at(
                path, f"{name + ': ' if name else ''}{err['msg'].removeprefix('Value error, ')}"
            )
        else:
            self.at(path, f"{name + ': ' if name else ''}{err['msg']}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise RulesError(self.errors)


#: pydantic's names of the branches of ``str | NotifyEntry`` (a ``notify`` entry), in ``loc``
_BRANCHES = frozenset({"str", NotifyEntry.__name__})


#: pydantic's name of the ``none`` branch of ``AMOUNT | none`` (``controls:``), in ``loc``
_NONE_BRANCH = "literal['none']"


def _none_branch(errors: list[Any]) -> list[Any]:
    """A setting that is a value or ``none``: when neither fits, pydantic reports both
    branches. Keep the value's errors (``none`` only when the value branch has none), at the
    file's own path (without the branch names)."""
    prefixes = {
        tuple(e["loc"])[: tuple(e["loc"]).index(_NONE_BRANCH)]
        for e in errors
        if _NONE_BRANCH in e["loc"]
    }
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        prefix = next((p for p in prefixes if loc[: len(p)] == p and len(loc) > len(p)), None)
        if prefix is None:
            kept.append(err)
            continue
        if loc[len(prefix)] == _NONE_BRANCH and any(
            tuple(o["loc"])[: len(prefix)] == prefix
            and tuple(o["loc"])[len(prefix)] != _NONE_BRANCH
            for o in errors
            if len(o["loc"]) > len(prefix)
        ):
            continue
        kept.append({**err, "loc": loc[: len(prefix)] + loc[len(prefix) + 1 :]})
    return kept


def _one_branch(errors: list[Any]) -> list[Any]:
    """A ``notify`` entry is a name or a mapping; when it is neither right, pydantic reports
    both branches. Keep the errors of the branch the value's shape picks (a mapping: the
    entry's own errors; anything else: "expected text"), at the file's own path, and no
    length error for a list whose items are already reported."""
    mapped: set[Loc] = set()
    for err in errors:
        loc = tuple(err["loc"])
        at = next((i for i, part in enumerate(loc) if part in _BRANCHES), None)
        if at is not None and loc[at] == "str" and isinstance(err.get("input"), dict):
            mapped.add(loc[:at])
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        at = next((i for i, part in enumerate(loc) if part in _BRANCHES), None)
        if at is not None:
            if (loc[at] == "str") == (loc[:at] in mapped):
                continue
            kept.append({**err, "loc": loc[:at] + loc[at + 1 :]})
            continue
        kept.append(err)
    deeper = [tuple(e["loc"]) for e in kept]
    return [
        e
        for e in kept
        if e["type"] not in ("too_short", "too_long")
        or not any(len(d) > len(e["loc"]) and d[: len(e["loc"])] == tuple(e["loc"]) for d in deeper)
    ]


def _word_or_shape(errors: list[Any]) -> list[Any]:
    """A setting that is a word or another shape (``burn_rate: default | off | [pairs]``,
    ``revert: period_end | manual | {after: 1h}``): when neither fits, pydantic reports every
    branch under its type name. Keep the branch the value's shape picks (a list or a mapping:
    its own errors; anything else: the words expected, and what else it may be), at the
    file's own path, without the type names."""
    words: dict[Loc, Any] = {}  # the path of such a setting -> its value
    for err in errors:
        loc = tuple(err["loc"])
        at = next((i for i, p in enumerate(loc) if str(p).startswith("literal[")), None)
        if at is not None:
            words[loc[:at]] = err.get("input")
    others: dict[Loc, set[str]] = {}
    for err in errors:
        loc = tuple(err["loc"])
        for prefix in words:
            if len(loc) > len(prefix) and loc[: len(prefix)] == prefix:
                tag = str(loc[len(prefix)])
                if not tag.startswith("literal["):
                    others.setdefault(prefix, set()).add(tag)
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        found = [p for p in words if len(loc) > len(p) and loc[: len(p)] == p]
        if not found:
            kept.append(err)
            continue
        prefix = found[0]
        tag, value = str(loc[len(prefix)]), words[prefix]
        listed = tag.startswith(("tuple[", "list["))
        if isinstance(value, list | tuple | dict):  # the shape's own errors
            if not tag.startswith("literal[") and listed == isinstance(value, list | tuple):
                kept.append({**err, "loc": prefix + loc[len(prefix) + 1 :]})
        elif tag.startswith("literal["):
            shapes = others.get(prefix, set())
            more = " or ".join(
                sorted(
                    {"a list" if t.startswith(("tuple[", "list[")) else "a mapping" for t in shapes}
                )
            )
            msg = f"{err['msg']}, or {more}" if more else err["msg"]
            kept.append({**err, "loc": prefix + loc[len(prefix) + 1 :], "msg": msg})
    return kept


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float) or type(value).__name__ == "Decimal":
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _pattern_message(key: str) -> str:
    if key == "name":
        return "budget names use only lower-case letters, digits, '.', '_' and '-'"
    if key in _DURATION_KEYS:
        return "not a duration: use Nm, Nh or Nd with N >= 1 (e.g. 15m, 24h, 7d)"
    return "not in the expected form"


def _model_of(annotation: Any) -> Any:
    """The BaseModel or container inside Optional/Annotated/union annotations."""
    origin = get_origin(annotation)
    if origin is None:
        return annotation
    if origin in (tuple, list, dict):
        return annotation
    for arg in get_args(annotation):
        inner = _model_of(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
        if get_origin(inner) in (tuple, list, dict):
            return inner
    return annotation


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model at ``loc`` (inside ``model``) accepts, for suggestions."""
    current: Any = model
    for part in loc:
        current = _model_of(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {(f.alias or n): f for n, f in current.model_fields.items()}
            if part not in fields:
                return []
            current = fields[str(part)].annotation
        elif get_origin(current) in (tuple, list):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return []
    current = _model_of(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def load_rules_text(
    text: str,
    *,
    source: str = "<rules>",
    env: Mapping[str, str] | None = None,
    notifier_types: NotifierTypes | None = None,
    notifier_warnings: list[RuleError] | None = None,
) -> Rules:
    """Check ``text`` and return the rules; ``RulesError`` lists every mistake.

    With a ``notifier_warnings`` list, unset variables in notifier settings are warnings
    (appended there) instead of errors, for commands that send nothing: such notifiers come
    back with ``unresolved`` set, and must not send.
    """
    collecting = gc.isenabled()
    gc.disable()  # a rules file is many small acyclic objects: collecting them costs a third
    try:
        return _load_rules_text(text, source, env, notifier_types, notifier_warnings)
    except RulesError as exc:  # without the loading's frames, which hold the whole document
        raise exc.with_traceback(None) from None
    finally:
        if collecting:
            gc.enable()


def _load_rules_text(
    text: str,
    source: str,
    env: Mapping[str, str] | None,
    notifier_types: NotifierTypes | None,
    notifier_warnings: list[RuleError] | None,
) -> Rules:
    environment = os.environ if env is None else env
    try:
        located = load_yaml(text)
    except YamlError as exc:
        raise RulesError([RuleError(source, exc.line, exc.column, exc.message)]) from None
    report = Reporter(source, located.positions)
    data = located.data
    if data is None:
        report.at(
            (),
            "the rules file is empty; start from rules.example.yaml "
            "(at least 'version: 1' and 'budgets:')",
        )
        report.raise_if_any()
    if not isinstance(data, dict):
        report.at(
            (), f"the rules file must be a mapping (version:, budgets:, ...), got {_kind(data)}"
        )
        report.raise_if_any()

    def placeholder_problem(path: Loc, message: str) -> None:
        report.at(path, message)
        report.mute(path)

    def notifier_unset(path: Loc, name: str) -> bool:
        if notifier_warnings is None or len(path) < 3 or path[0] != "notifiers":
            return False
        notifier, setting = str(path[1]), str(path[2])
        report.unresolved.setdefault(notifier, {}).setdefault(setting, []).append(name)
        report.warn(
            path,
            f"notifier '{notifier}': environment variable '{name}' is not set; it is needed "
            "when the notifier sends (check --notify, digest --send, notify-test, run)",
        )
        return True

    data = interpolate(data, environment, placeholder_problem, unset=notifier_unset)
    if notifier_warnings is not None:
        notifier_warnings.extend(report.warnings)
    types = notifier_types
    if types is None:  # the plugins are only asked when the rules declare notifiers
        types = installed_notifier_types() if data.get("notifiers") else {}
    return build_rules(data, report, types, raw_model=RawRules)


def load_rules(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    notifier_types: NotifierTypes | None = None,
    notifier_warnings: list[RuleError] | None = None,
) -> Rules:
    """Read and check the rules file at ``path`` (``notifier_warnings``: as in
    ``load_rules_text``)."""
    try:
        text = read_small_text(path, MAX_RULES_BYTES)
    except FileNotFoundError:
        raise RulesError(
            [
                RuleError(
                    str(path),
                    1,
                    1,
                    "no such file; create one from rules.example.yaml, or point --rules "
                    "or BUDGETGUARD_RULES at yours",
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RulesError([RuleError(str(path), 1, 1, f"cannot read the file: {reason}")]) from None
    return load_rules_text(
        text,
        source=str(path),
        env=env,
        notifier_types=notifier_types,
        notifier_warnings=notifier_warnings,
    )
