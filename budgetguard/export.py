"""Settled costs out of the store: FOCUS 1.3 rows (the FinOps Open Cost and Usage
Specification's cost-and-usage dataset) for FinOps tools, or a plain daily table.

A row is one line of the costs endpoint for one UTC day: BilledCost = EffectiveCost = the
amount the endpoint gives, the project as the sub-account (with its name), the API key as the
resource, the SKU ``model:token kind``, and the consumed quantity in the line's own unit
(tokens, images, characters, seconds, GiB-hours): never a made-up "1 request". Costs of the
last two UTC days are not settled and are left out; with ``include_estimates`` those days come
from usage x prices instead, flagged (``x_CostSource = estimate``, ``ChargeClass`` unset).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.spend import NONE_VALUE, collect_spend
from budgetguard.rules.model import Budget, Rules
from budgetguard.store.columns import SyncMark

if TYPE_CHECKING:
    from budgetguard.store.reads import Reads

__all__ = [
    "CSV_COLUMNS",
    "FOCUS_COLUMNS",
    "ExportError",
    "ExportRange",
    "as_sent",
    "costs_query",
    "daily_table",
    "estimate_rows",
    "export",
    "focus_rows",
    "missing_days",
    "write_rows",
]

_DAY = 86400
_PROVIDER = "OpenAI"
#: The API's quantity units, as FOCUS's unit format spells them.
_UNITS = {
    "tokens": "Tokens",
    "1k_tokens": "1000 Tokens",
    "thousand_tokens": "1000 Tokens",
    "images": "Images",
    "characters": "Characters",
    "seconds": "Seconds",
    "duration_seconds": "Seconds",
    "gibibyte_hours": "GiB-Hours",
    "sessions": "Sessions",
    "requests": "Requests",
    "calls": "Calls",
}

FOCUS_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "HostProviderName",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
    "x_CostSource",
    "x_LineItem",
    "x_Model",
    "x_ServiceTier",
)
CSV_COLUMNS = (
    "day",
    "project_id",
    "project",
    "line_item",
    "model",
    "amount_usd",
    "quantity",
    "unit",
    "source",
)


class ExportError(RuntimeError):
    """The store cannot answer the export (nothing collected, days missing, not USD)."""


@dataclass(frozen=True)
class ExportRange:
    """UTC days ``[start, end)`` asked for, and the first day whose costs are not settled."""

    start: int
    end: int
    settled_before: int


def costs_query(marks: Sequence[SyncMark]) -> str | None:
    """The stored costs query with the finest grouping (project, line item, API key)."""
    keys = [m.query_key for m in marks if m.endpoint == "costs"]
    return max(keys, key=lambda k: (k.count(",") + 1, k), default=None)


def missing_days(spans: Iterable[tuple[int, int]], start: int, end: int) -> list[int]:
    """The UTC days of ``[start, end)`` the query's coverage does not hold whole."""
    held = list(spans)
    return [
        d for d in range(start, end, _DAY) if not any(a <= d and d + _DAY <= b for a, b in held)
    ]


def _iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(stamp: int) -> tuple[str, str]:
    day = datetime.fromtimestamp(stamp, UTC)
    first = day.replace(day=1, hour=0, minute=0, second=0)
    following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return _iso(int(first.timestamp())), _iso(int(following.timestamp()))


def _tags(rules: Rules, row: Mapping[str, Any]) -> str:
    """The labels of every budget whose match covers the row (ids or names), as FOCUS's
    key-value JSON; the later budget wins a key two of them set."""
    import fnmatch

    values = {
        "project": (row.get("project_id"), row.get("project")),
        "api_key": (row.get("api_key_id"), row.get("api_key")),
        "model": (row.get("model"),),
        "line_item": (row.get("line_item"),),
    }
    tags: dict[str, str] = {}
    for budget in rules.budgets:
        m = budget.match
        if not budget.labels or m.user is not None or m.endpoint is not None:
            continue
        if all(
            (globs := getattr(m, key)) is None
            or any(v and fnmatch.fnmatchcase(str(v), g) for v in found for g in globs)
            for key, found in values.items()
        ):
            tags.update(budget.labels)
    return json.dumps(tags, sort_keys=True) if tags else ""


#: the significant digits a binary double carries faithfully (C's DBL_DIG)
_DOUBLE_DIGITS = 15


def as_sent(value: Decimal) -> Decimal:
    """An amount or quantity as the decimal its sender meant. The costs endpoint sends JSON
    numbers: doubles, whose shortest text can carry the sender's float arithmetic
    (``7.109999999999999`` for 7.11, ``2.4409171499999998``); a double holds 15 significant
    digits faithfully, so a value is rounded to 15 (exactly, in Decimal) before it is summed
    or written."""
    if not value.is_finite() or not value:
        return value
    return value.quantize(Decimal(1).scaleb(value.adjusted() - _DOUBLE_DIGITS + 1))


def _number(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _unit(row: Mapping[str, Any]) -> str:
    unit = str(row.get("quantity_unit") or "").strip().lower()
    if unit in _UNITS:
        return _UNITS[unit]
    item = str(row.get("line_item") or "").lower()
    if not unit and "code interpreter" in item:
        return "Sessions"
    if not unit and "search" in item:  # web and file search tool calls
        return "Calls"
    return unit.replace("_", " ").title() if unit else "Units"


def _service(row: Mapping[str, Any]) -> str:
    product = str(row.get("product") or "").strip()
    return f"OpenAI {product.title()}" if product and product != "batch" else "OpenAI API"


def focus_rows(
    rows: Iterable[Mapping[str, Any]], names: Mapping[str, str], rules: Rules
) -> Iterator[dict[str, str]]:
    """FOCUS rows of stored costs lines (``cost_rows``), in USD."""
    for row in rows:
        day = int(row["day_start"])
        if str(row.get("currency") or "").lower() != "usd":
            raise ValueError(f"costs in {row.get('currency')!r} on {_iso(day)[:10]}: only USD")
        amount = as_sent(Decimal(str(row["amount"])))
        quantity = (
            None if row.get("quantity") in (None, "") else as_sent(Decimal(str(row["quantity"])))
        )
        model, kind = row.get("model") or "", row.get("kind") or ""
        tier = "batch" if row.get("product") == "batch" else ""
        sku = f"{model}:{kind}" if model else str(row.get("line_item") or "").strip()
        project, key = row.get("project_id") or "", row.get("api_key_id") or ""
        unit = _unit(row)
        price = None if not quantity else (amount / quantity).quantize(Decimal("1e-12"))
        named = dict(row) | {"project": names.get(project), "api_key": names.get(key)}
        billing_start, billing_end = _month(day)
        yield {
            "BilledCost": _number(amount),
            "BillingAccountId": "openai-organization",
            "BillingAccountName": "OpenAI organization",
            "BillingCurrency": "USD",
            "BillingPeriodEnd": billing_end,
            "BillingPeriodStart": billing_start,
            "ChargeCategory": "Usage",
            "ChargeClass": "",
            "ChargeDescription": str(row.get("line_item") or sku),
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": _iso(day + _DAY),
            "ChargePeriodStart": _iso(day),
            "ConsumedQuantity": _number(quantity) if quantity is not None else "0",
            "ConsumedUnit": unit,
            "ContractedCost": _number(amount),
            "ContractedUnitPrice": _number(price),
            "EffectiveCost": _number(amount),
            "HostProviderName": _PROVIDER,
            # the costs endpoint names no invoice: the billing month's, provisional
            "InvoiceId": f"openai-{billing_start[:7]}",
            "InvoiceIssuerName": _PROVIDER,
            "ListCost": _number(amount),
            "ListUnitPrice": _number(price),
            "PricingCategory": "Standard",
            "PricingCurrency": "USD",
            "PricingQuantity": _number(quantity) if quantity is not None else "0",
            "PricingUnit": unit,
            "ProviderName": _PROVIDER,
            "PublisherName": _PROVIDER,
            "RegionId": "",
            "RegionName": "",
            "ResourceId": key,
            "ResourceName": names.get(key, key) if key else "",
            "ResourceType": "API Key" if key else "",
            "ServiceCategory": "AI and Machine Learning",
            "ServiceName": _service(row),
            "ServiceProviderName": _PROVIDER,
            "ServiceSubcategory": "Generative AI",
            "SkuId": sku,
            "SkuMeter": kind.title() if kind else sku,
            "SkuPriceId": f"{sku}:{tier}" if tier else sku,
            "SubAccountId": project,
            "SubAccountName": names.get(project, project) if project else "",
            "SubAccountType": "Project" if project else "",
            "Tags": _tags(rules, named),
            "x_CostSource": "costs",
            "x_LineItem": str(row.get("line_item") or ""),
            "x_Model": model,
            "x_ServiceTier": tier or "default",
        }


def estimate_rows(
    data: SpendData, days: Iterable[int], now: int, names: Mapping[str, str], rules: Rules
) -> Iterator[dict[str, str]]:
    """Rows for days whose costs are not settled, from usage x prices per project and model,
    flagged as estimates (``x_CostSource = estimate``)."""
    budget = Budget.model_validate(
        {
            "name": "export",
            "limit": 1,
            "window": "1d",
            "each": ["project", "model"],
            "cost_source": "estimate",
        }
    )
    for day in days:
        spend = collect_spend(budget, data, "estimate", day, min(day + _DAY, now), now)
        for (project, model), by_day in sorted(spend.estimate.items()):
            amount = sum(by_day.values(), Decimal(0))
            known = None if model == NONE_VALUE else model
            row = {
                "day_start": day,
                "project_id": None if project == NONE_VALUE else project,
                "model": known,
                "amount": amount,
                "currency": "usd",
                "quantity": None,
                "quantity_unit": None,
                "kind": "estimate",
                "line_item": f"{known or 'usage without a model'} (estimate: usage x prices)",
            }
            sku = f"{known}:estimate" if known else "estimate"
            out = next(focus_rows([row], names, rules))
            out |= {
                "x_CostSource": "estimate",
                "ConsumedQuantity": "",
                "ConsumedUnit": "",
                "PricingQuantity": "",
                "PricingUnit": "",
                "ListUnitPrice": "",
                "ContractedUnitPrice": "",
                "SkuId": sku,
                "SkuPriceId": sku,
            }
            yield out


def daily_table(
    rows: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """The plain table: one row per UTC day, project and line item (API keys summed)."""
    sums: dict[tuple[int, str, str], list[Any]] = {}
    for row in rows:
        key = (int(row["day_start"]), row.get("project_id") or "", row.get("line_item") or "")
        entry = sums.setdefault(key, [Decimal(0), Decimal(0), row])
        entry[0] += as_sent(Decimal(str(row["amount"])))
        if row.get("quantity") not in (None, ""):
            entry[1] += as_sent(Decimal(str(row["quantity"])))
    for (day, project, line_item), (amount, quantity, row) in sorted(sums.items()):
        yield {
            "day": _iso(day)[:10],
            "project_id": project,
            "project": names.get(project, ""),
            "line_item": line_item,
            "model": row.get("model") or "",
            "amount_usd": _number(amount),
            "quantity": _number(quantity),
            "unit": _unit(row),
            "source": "costs",
        }


def write_rows(
    out: io.TextIOBase | Any,
    rows: Iterable[Mapping[str, str]],
    columns: Sequence[str],
    jsonl: bool,
) -> int:
    """CSV with a header, or JSON lines (empty values as null); how many rows."""
    count = 0
    if jsonl:
        for row in rows:
            out.write(json.dumps({c: (row.get(c) or None) for c in columns}) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
        count += 1
    return count


def export(
    store: Reads,
    rules: Rules,
    now: datetime,
    span: ExportRange,
    kind: str,
    include_estimates: bool,
) -> tuple[list[dict[str, str]], Sequence[str], list[int]]:
    """(rows, columns, the unsettled days of the span) of a ``focus`` or ``csv`` export;
    ``ExportError`` when the store cannot answer it whole."""
    from budgetguard import offline

    query = costs_query(store.sync_marks())
    if query is None:
        raise ExportError("no costs collected: run `budgetguard collect` first")
    settled_end = min(span.end, span.settled_before)
    missing = missing_days(store.coverage().get(query, []), span.start, settled_end)
    if missing:
        first = datetime.fromtimestamp(missing[0], UTC).date().isoformat()
        raise ExportError(
            f"costs of {len(missing)} day(s) from {first} are not in the store: run "
            "`budgetguard collect --since` that day"
        )
    at = int(now.timestamp())
    names = offline.display_names(store)
    stored = list(store.cost_rows(query_keys=[query], start=span.start, end=settled_end))
    late = list(range(max(span.start, span.settled_before), min(span.end, at), _DAY))
    if kind == "csv":
        return list(daily_table(stored, names)), CSV_COLUMNS, late
    try:
        rows = list(focus_rows(stored, names, rules))
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    if include_estimates and late:
        data = offline.spend_data(store, offline.named_rules(store, rules), now)
        rows += list(estimate_rows(data, late, at, names, rules))
    return rows, FOCUS_COLUMNS, late
