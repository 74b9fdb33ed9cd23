"""The JSON Schema of the rules file, for editors (``# yaml-language-server: $schema=...``).

Built from the same models the loader uses, with the notifier union made from the notifier
types the caller knows (each discriminated by its ``type``), and then every rule between
keys that a schema can say (``_between_keys``): limit or anomaly, exactly one of window and
period, forecast on periods, whole limits for counts, user budgets on the estimate, endpoint
budgets never on costs alone, line items on cost, the metrics each literal endpoint measures,
known endpoints and time zones, five-field crons, numbers written as text, thresholds above
0% and no repeats, line items never with the estimate, an endpoint or a user. What needs the
whole file or arithmetic (notifier names that exist, unique budget names, a baseline longer
than its window, a costs window or anomaly window of whole days, what ``defaults`` implies)
is ``validate``'s alone.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, Union

from pydantic import Field, create_model

from budgetguard.rules.model import RawBudget, RawRules, ThresholdInput
from budgetguard.rules.notifiers import NotifierTypes, installed_notifier_types
from budgetguard.rules.vocabulary import ENDPOINTS, METRIC_ENDPOINTS

__all__ = ["SCHEMA_ID", "rules_json_schema"]

SCHEMA_ID = "https://budgetguard.dev/schema/rules-v1.json"

#: A ``${VAR}`` placeholder: any string holding one is the environment's to fill.
_PLACEHOLDER = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
#: A number written as text (YAML ``"120"``), or a placeholder.
_DECIMAL_TEXT = rf"^([0-9]+(\.[0-9]+)?|[0-9]*\.[0-9]+)$|{_PLACEHOLDER}"
#: A percentage above 0 and at most 100000 (the loader's bounds, as far as a pattern goes).
_PERCENT = r"^(?=[^%]*[1-9])([0-9]{1,5}|100000)(\.[0-9]+)?%$"


def _cron_field(value: str) -> str:
    """One crontab field: ``*``, values, ranges, steps and lists, as APScheduler reads them."""
    item = rf"(\*|{value}(-{value})?)(/[0-9]+)?"
    return rf"{item}(,{item})*"


_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DAYS = "mon|tue|wed|thu|fri|sat|sun"
#: minute hour day-of-month month day-of-week (names in lower or upper case)
_CRON = (
    r"^\s*"
    + r"\s+".join(
        _cron_field(v)
        for v in (
            "[0-5]?[0-9]",
            "(2[0-3]|[01]?[0-9])",
            "(3[01]|[12][0-9]|0?[1-9])",
            f"(1[0-2]|0?[1-9]|{_MONTHS}|{_MONTHS.upper()})",
            f"([0-7]|{_DAYS}|{_DAYS.upper()})",
        )
    )
    + r"\s*$"
)


def rules_json_schema(
    notifier_types: NotifierTypes | None = None,
) -> dict[str, Any]:
    types = tuple((notifier_types or installed_notifier_types()).values())
    notifier: Any = (
        Annotated[Union[types], Field(discriminator="type")]  # noqa: UP007
        if len(types) > 1
        else types[0]
    )
    thresholds = (tuple[ThresholdInput, ...] | None, None)
    budget = create_model("Budget", __base__=RawBudget, thresholds=thresholds)  # type: ignore[arg-type]
    rules = create_model(
        "BudgetguardRules",
        __base__=RawRules,
        notifiers=(dict[str, notifier], Field(default_factory=dict)),
        budgets=(tuple[budget, ...], ()),
    )
    schema = rules.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "budgetguard rules"
    schema["description"] = (
        "Budgets, notifiers and the digest of budgetguard. Strings may hold ${VAR} or "
        "${VAR:-default} placeholders, filled from the environment."
    )
    _between_keys(schema)
    return schema


def _between_keys(schema: dict[str, Any]) -> None:
    """Add the rules the models' types cannot carry, but a schema can."""
    _decimal_text(schema)
    defs = schema["$defs"]
    budget = defs["Budget"]
    thresholds = _thresholds_schema()
    budget["properties"]["thresholds"] = {"anyOf": [thresholds, {"type": "null"}]}
    defs["Defaults"]["properties"]["thresholds"] = {"anyOf": [thresholds, {"type": "null"}]}
    defs["RawThreshold"]["properties"]["at"] = _threshold_at()
    each = budget["properties"]["each"]["anyOf"][1]
    each["uniqueItems"] = True
    endpoint = {"anyOf": [{"enum": list(ENDPOINTS)}, {"type": "string", "pattern": r"[*?\[]"}]}
    defs["Match"]["properties"]["endpoint"] = {
        "anyOf": [endpoint, {"type": "array", "items": endpoint, "minItems": 1}, {"type": "null"}]
    }
    zones = sorted(zoneinfo.available_timezones())
    schema["properties"]["timezone"] = {
        "default": "UTC",
        "anyOf": [{"enum": zones}, {"type": "string", "pattern": _PLACEHOLDER}],
    }
    defs["Digest"]["properties"]["schedule"]["pattern"] = _CRON
    budget["allOf"] = _budget_rules()


def _decimal_text(node: Any) -> None:
    """A number the models also take as text (``Decimal``): only numbers as text."""
    if isinstance(node, dict):
        choices = node.get("anyOf")
        if isinstance(choices, list) and any(c.get("type") == "number" for c in choices):
            for choice in choices:
                if choice == {"type": "string"}:
                    choice["pattern"] = _DECIMAL_TEXT
        for value in node.values():
            _decimal_text(value)
    elif isinstance(node, list):
        for item in node:
            _decimal_text(item)


def _threshold_at() -> dict[str, Any]:
    """``80%`` or an amount above 0."""
    return {
        "anyOf": [
            {"type": "string", "pattern": _PERCENT},
            {"type": "number", "exclusiveMinimum": 0, "maximum": 1e15},
            {"type": "string", "pattern": _DECIMAL_TEXT},
        ]
    }


def _thresholds_schema() -> dict[str, Any]:
    return {
        "type": "array",
        "uniqueItems": True,
        "items": {"anyOf": [{"$ref": "#/$defs/RawThreshold"}, *_threshold_at()["anyOf"]]},
    }


def _has(key: str, inner: dict[str, Any] | None = None) -> dict[str, Any]:
    """The budget sets ``key`` (to something ``inner`` accepts): not null."""
    return {"required": [key], "properties": {key: {"not": {"type": "null"}, **(inner or {})}}}


def _split_by(key: str) -> dict[str, Any]:
    """``each`` names ``key`` (alone or in a list)."""
    return _has("each", {"anyOf": [{"const": key}, {"type": "array", "contains": {"const": key}}]})


def _matches_on(key: str) -> dict[str, Any]:
    return _has("match", {"required": [key], "properties": {key: {"not": {"type": "null"}}}})


def _not_cost() -> dict[str, Any]:
    return _has("metric", {"not": {"const": "cost"}})


def _budget_rules() -> list[dict[str, Any]]:
    shape: list[dict[str, Any]] = [
        # a limit, unless it is an anomaly-only budget
        {"if": {"not": _has("anomaly")}, "then": _has("limit")},
        # with a limit: exactly one of window (rolling) and period (calendar)
        {
            "if": _has("limit"),
            "then": {
                "oneOf": [
                    {**_has("window"), "not": _has("period")},
                    {**_has("period"), "not": _has("window")},
                ]
            },
        },
        # without one: neither, nor thresholds or a forecast
        {
            "if": {"not": _has("limit")},
            "then": {
                "not": {"anyOf": [_has(k) for k in ("window", "period", "thresholds")]},
                "properties": {"forecast": {"not": {"const": True}}},
            },
        },
        # a forecast needs a period's end (the budget's, or a threshold's)
        {"if": _has("forecast", {"const": True}), "then": _has("period")},
        {
            "if": _has(
                "thresholds",
                {
                    "type": "array",
                    "contains": {
                        "type": "object",
                        "required": ["forecast"],
                        "properties": {"forecast": {"const": True}},
                    },
                },
            ),
            "then": _has("period"),
        },
        # burn rates are paces of a limit
        {"if": _has("burn_rate", {"not": {"const": "off"}}), "then": _has("limit")},
        # counts are whole
        {
            "if": _not_cost(),
            "then": {
                "properties": {
                    "limit": {
                        "anyOf": [
                            {"type": "integer", "exclusiveMinimum": 0},
                            {"type": "number", "multipleOf": 1, "exclusiveMinimum": 0},
                            {"type": "string", "pattern": rf"^[0-9]+$|{_PLACEHOLDER}"},
                            {"type": "null"},
                        ]
                    }
                }
            },
        },
        # the costs endpoint has no users: a cost budget by user is an estimate
        {
            "if": {"anyOf": [_matches_on("user"), _split_by("user")], "not": _not_cost()},
            "then": {"properties": {"cost_source": {"enum": ["estimate", None]}}},
        },
        # nor endpoints: a cost budget on an endpoint never reads costs alone
        {
            "if": {"allOf": [_matches_on("endpoint"), {"not": _not_cost()}]},
            "then": {"properties": {"cost_source": {"not": {"const": "costs"}}}},
        },
        # line items exist only in costs, which have no endpoint and no user
        {
            "if": {"anyOf": [_matches_on("line_item"), _split_by("line_item")]},
            "then": {
                "properties": {
                    "metric": {"const": "cost"},
                    "cost_source": {"not": {"const": "estimate"}},
                },
                "not": {"anyOf": [_matches_on("endpoint"), _matches_on("user"), _split_by("user")]},
            },
        },
    ]
    for metric, usable in METRIC_ENDPOINTS.items():
        others = [e for e in ENDPOINTS if e not in usable]
        if not others:
            continue
        literal = {"anyOf": [{"enum": others}, {"type": "array", "items": {"enum": others}}]}
        shape.append(
            {  # a metric the one endpoint matched does not measure
                "if": {"allOf": [_has("metric", {"const": metric}), _matches_on("endpoint")]},
                "then": {"properties": {"match": {"properties": {"endpoint": {"not": literal}}}}},
            }
        )
    return shape
