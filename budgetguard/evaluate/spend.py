"""Spend of one budget over ``[start, end)``, per group and UTC day, by source.

Sums are exact ``Decimal``. ``costs`` reads the costs endpoint; ``estimate`` prices usage;
``auto`` takes costs for settled days and, for the last two UTC days, the larger of costs and
the estimate, so late costs never hide spend; usage metrics sum the usage columns.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from budgetguard.collect.plan import endpoints_of
from budgetguard.evaluate.data import CostRow, SpendData, UsageRow
from budgetguard.evaluate.windows import Window
from budgetguard.rules.model import Budget
from budgetguard.rules.vocabulary import parse_duration

__all__ = ["NONE_VALUE", "Spend", "collect_spend", "effective_source", "total_of"]

_DAY = 86400
_ZERO = Decimal(0)
NONE_VALUE = "(none)"

#: The usage metric each budget metric sums.
_METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "input_tokens": ("input_tokens",),
    "output_tokens": ("output_tokens",),
    "cached_tokens": ("input_cached_tokens",),
    "tokens": ("input_tokens", "output_tokens"),
    "images": ("images",),
    "characters": ("characters",),
    "seconds": ("seconds",),
    "usage_bytes": ("usage_bytes",),
    "sessions": ("num_sessions",),
}
_GROUP_FIELDS = {
    "project": "project",
    "model": "model",
    "user": "user",
    "api_key": "api_key",
    "line_item": "line_item",
}


@lru_cache(maxsize=65536)
def _glob(patterns: tuple[str, ...], value: str | None) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _matches(budget: Budget, row: UsageRow | CostRow) -> bool:
    m = budget.match
    checks: list[tuple[tuple[str, ...] | None, str | None]] = [
        (m.project, row.project),
        (m.api_key, row.api_key),
        (m.model, row.model),
    ]
    if isinstance(row, UsageRow):
        if m.line_item is not None:
            return False
        checks += [(m.user, row.user), (m.endpoint, row.endpoint)]
    else:
        if m.user is not None or m.endpoint is not None:
            return False
        checks.append((m.line_item, row.line_item))
    return all(patterns is None or _glob(patterns, value) for patterns, value in checks)


def _group(budget: Budget, row: UsageRow | CostRow) -> tuple[str, ...]:
    return tuple(getattr(row, _GROUP_FIELDS[k], None) or NONE_VALUE for k in budget.each)


class Spend:
    """Sums per group, per UTC day, by source."""

    def __init__(self) -> None:
        self.costs: dict[tuple[str, ...], dict[int, Decimal]] = defaultdict(dict)
        self.estimate: dict[tuple[str, ...], dict[int, Decimal]] = defaultdict(dict)
        self.usage: dict[tuple[str, ...], Decimal] = defaultdict(lambda: _ZERO)
        self.notes: set[str] = set()

    def add(
        self,
        table: dict[tuple[str, ...], dict[int, Decimal]],
        group: tuple[str, ...],
        start: int,
        amount: Decimal,
    ) -> None:
        day = start - start % _DAY
        days = table[group]
        days[day] = days.get(day, _ZERO) + amount

    def groups(self) -> set[tuple[str, ...]]:
        return set(self.costs) | set(self.estimate) | set(self.usage)


def _settled_before(now: int) -> int:
    """Costs of UTC days before this are settled; the last two days are not."""
    return now - now % _DAY - _DAY


def collect_spend(
    budget: Budget, data: SpendData, source: str, start: int, end: int, now: int
) -> Spend:
    """Spend of ``[start, end)`` seen at ``now``, per group and UTC day, by source."""
    spend = Spend()
    if budget.metric == "cost":
        if source in ("costs", "auto"):
            for cost in data.costs(start, end):
                if _matches(budget, cost):
                    if cost.currency != "usd":
                        spend.notes.add(f"costs in {cost.currency.upper()} left out")
                        continue
                    spend.add(spend.costs, _group(budget, cost), cost.start, cost.amount)
        if source in ("estimate", "auto"):
            # auto compares costs and estimate day by day, and only where costs are not yet
            # settled (settled days are the costs'); estimate alone needs no split
            if source == "auto":
                spans = _days(max(start, _settled_before(now)), end)
            else:
                spans = [(start, end)]
            for endpoint in sorted(endpoints_of(budget) - {"costs"}):
                for lo, hi in spans:
                    _estimate(budget, data, endpoint, lo, hi, spend)
        return spend
    for endpoint in sorted(endpoints_of(budget)):
        parts = data.usage_parts(endpoint, start, end)
        if budget.metric == "usage_bytes":  # a gauge: the figure of its latest bucket
            parts = parts[-1:]
        for series, lo, hi in parts:
            if series.cube is None:
                _usage_rows(budget, series.between(lo, hi), spend)
                continue
            h0, h1 = series.span(lo, hi)
            if budget.metric == "usage_bytes":
                h0 = max(h0, h1 - 1)
            columns = _columns(budget.metric, endpoint)
            for key, value in series.cube.values(budget, columns, h0, h1).items():
                spend.usage[key] += value
    return spend


def _days(start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut at UTC midnights."""
    spans = []
    lo = start
    while lo < end:
        hi = min(end, lo - lo % _DAY + _DAY)
        spans.append((lo, hi))
        lo = hi
    return spans


def _estimate(
    budget: Budget, data: SpendData, endpoint: str, start: int, end: int, spend: Spend
) -> None:
    for series, lo, hi in data.usage_parts(endpoint, start, end):
        if series.cube is None:
            for row in series.between(lo, hi):
                if not _matches(budget, row):
                    continue
                if row.estimate is None:
                    if row.note:
                        spend.notes.add(row.note)
                    continue
                spend.add(spend.estimate, _group(budget, row), row.start, row.estimate)
            continue
        if not series.cube.groups:  # nothing collected in this series
            continue
        h0, h1 = series.span(lo, hi)
        if h0 >= h1:
            continue
        amounts, notes = series.cube.amounts(budget, h0, h1)
        spend.notes |= notes
        for key, amount in amounts.items():
            spend.add(spend.estimate, key, lo, amount)


def _columns(metric: str, endpoint: str) -> tuple[str, ...]:
    columns = _METRIC_COLUMNS.get(metric)
    if columns is None:  # requests: model requests, or search calls
        return ("num_requests",) if endpoint.endswith("search_calls") else ("num_model_requests",)
    return columns


def _usage_rows(budget: Budget, rows: Iterable[UsageRow], spend: Spend) -> None:
    """Row-kept series (very wide ones): the same sums, row by row."""
    matched = [r for r in rows if _matches(budget, r)]
    if budget.metric == "usage_bytes" and matched:
        last = max(r.start for r in matched)
        matched = [r for r in matched if r.start == last]
    for row in matched:
        value = sum(row.metrics.get(c, 0) for c in _columns(budget.metric, row.endpoint))
        spend.usage[_group(budget, row)] += Decimal(value)


def total_of(
    spend: Spend, group: tuple[str, ...], source: str, window: Window, now: int
) -> tuple[Decimal, str]:
    """The group's spend and the source that gave it (costs | estimate | mixed | usage)."""
    if source == "usage":
        return spend.usage.get(group, _ZERO), "usage"
    costs, estimate = spend.costs.get(group, {}), spend.estimate.get(group, {})
    if source == "costs":
        return sum(costs.values(), _ZERO), "costs"
    if source == "estimate":
        return sum(estimate.values(), _ZERO), "estimate"
    if window.sub_day:
        c, e = sum(costs.values(), _ZERO), sum(estimate.values(), _ZERO)
        return (c, "costs") if c >= e else (e, "estimate")
    settled_before = _settled_before(now)
    total, used = _ZERO, set()
    for day in sorted(set(costs) | set(estimate)):
        c, e = costs.get(day, _ZERO), estimate.get(day, _ZERO)
        if day < settled_before:
            total += c
            used.add("costs")
        elif e > c:
            total += e
            used.add("estimate")
        else:
            total += c
            used.add("costs")
    return total, (used.pop() if len(used) == 1 else "mixed" if used else "costs")


def effective_source(budget: Budget) -> str:
    """The source a budget can really use: costs know nothing per endpoint or per user, and
    their daily buckets cannot measure a window shorter than a day."""
    if budget.metric != "cost":
        return "usage"
    if budget.match.endpoint is not None or budget.match.user is not None or "user" in budget.each:
        return "estimate"
    anomaly = budget.anomaly.window if budget.anomaly else None
    windows = [parse_duration(w) for w in (budget.window, anomaly) if w is not None]
    if budget.cost_source == "auto" and windows and min(windows) < timedelta(days=1):
        return "estimate"
    return budget.cost_source
