"""Budgets x data -> findings: spend, limit, ratio, forecast, anomaly, severity, data status.

Spend is summed exactly in ``Decimal``. Missing data is never zero: a budget whose sources are
stale, failed or absent is ``unknown``. ``cost_source: auto`` takes the costs endpoint for
settled days and, for the last two UTC days and sub-day windows, the larger of costs and the
usage estimate, so late costs never hide spend.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from budgetguard.collect.plan import endpoints_of
from budgetguard.evaluate.data import CostRow, SpendData, UsageRow
from budgetguard.evaluate.windows import Window, budget_window
from budgetguard.rules.model import Budget, Rules, Threshold
from budgetguard.rules.vocabulary import parse_duration

__all__ = ["SEVERITY_ORDER", "Finding", "evaluate", "group_label"]

SEVERITY_ORDER = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
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


@dataclass(frozen=True)
class Finding:
    """One budget (or one group of an ``each`` budget) at one instant."""

    budget: Budget
    group: dict[str, str]
    window: Window
    spend: Decimal | None
    limit: Decimal | None
    forecast: Decimal | None
    severity: str
    source: str
    complete: bool
    note: str | None
    crossed: tuple[Threshold, ...] = ()
    forecast_crossed: tuple[Threshold, ...] = ()
    anomaly: bool = False
    anomaly_baseline: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> Decimal | None:
        if self.spend is None or not self.limit:
            return None
        return self.spend / self.limit


def group_label(group: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "—"


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


class _Spend:
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


def _collect(
    budget: Budget, data: SpendData, source: str, start: int, end: int, now: int
) -> _Spend:
    """Spend of ``[start, end)`` seen at ``now``, per group and UTC day, by source."""
    spend = _Spend()
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
    budget: Budget, data: SpendData, endpoint: str, start: int, end: int, spend: _Spend
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


def _usage_rows(budget: Budget, rows: Iterable[UsageRow], spend: _Spend) -> None:
    """Row-kept series (very wide ones): the same sums, row by row."""
    matched = [r for r in rows if _matches(budget, r)]
    if budget.metric == "usage_bytes" and matched:
        last = max(r.start for r in matched)
        matched = [r for r in matched if r.start == last]
    for row in matched:
        value = sum(row.metrics.get(c, 0) for c in _columns(budget.metric, row.endpoint))
        spend.usage[_group(budget, row)] += Decimal(value)


def _total(
    spend: _Spend, group: tuple[str, ...], source: str, window: Window, now: int
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


def _effective_source(budget: Budget) -> str:
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


def evaluate(
    rules: Rules,
    data: SpendData,
    now: datetime,
    expect: Iterable[tuple[dict[str, str], Decimal]] = (),
) -> list[Finding]:
    """Every enabled budget (and group) at ``now``; ``expect`` adds planned spend."""
    expectations = list(expect)
    findings: list[Finding] = []
    for budget in rules.budgets:
        if budget.enabled:
            findings.extend(_evaluate_budget(rules, budget, data, now, expectations))
    return findings


def _expected(
    budget: Budget, group: dict[str, str], expectations: list[tuple[dict[str, str], Decimal]]
) -> Decimal:
    extra = _ZERO
    for selector, amount in expectations:
        ok = True
        for key, value in selector.items():
            patterns = getattr(budget.match, key, None)
            if key in group:
                ok = ok and fnmatch.fnmatchcase(group[key], value)
            elif patterns is not None:
                ok = ok and any(fnmatch.fnmatchcase(value, p) for p in patterns)
        if ok:
            extra += amount
    return extra


def _evaluate_budget(
    rules: Rules,
    budget: Budget,
    data: SpendData,
    now: datetime,
    expectations: list[tuple[dict[str, str], Decimal]],
) -> list[Finding]:
    window = budget_window(budget, now, rules.timezone)
    start, end = int(window.start.timestamp()), int(now.timestamp())
    source = _effective_source(budget)
    sources = endpoints_of(budget)
    if source == "estimate":
        sources -= {"costs"}
    needed = start
    if budget.anomaly is not None:  # the baseline before the window must be there too
        needed -= int(parse_duration(budget.anomaly.baseline).total_seconds())
    problem = data.status(sources, needed, end, int(budget.staleness_delta.total_seconds()))
    if problem is not None:
        return [
            Finding(budget, {}, window, None, budget.limit, None, "unknown", source, False, problem)
        ]
    spend = _collect(budget, data, source, start, end, end)
    # No spend at all still shows the budget (at zero), split or not.
    groups = spend.groups() or {()}
    forecaster = _Forecast(budget, data, source, window, now)
    anomalies = _Anomaly(budget, data, source, now)
    note = "; ".join(sorted(spend.notes)) or None
    limit = budget.limit
    at_amounts = [] if limit is None else [(t, t.ratio * limit) for t in budget.thresholds]
    findings = []
    for key in sorted(groups):
        group = dict(zip(budget.each, key, strict=True)) if key else {}
        total, used = _total(spend, key, source, window, end)
        if budget.metric == "cost":
            total += _expected(budget, group, expectations)
        forecast, forecast_note = forecaster.of(key, total), forecaster.note
        crossed = tuple(t for t, amount in at_amounts if total >= amount)
        forecast_crossed = tuple(
            t
            for t in budget.thresholds
            if forecast is not None
            and budget.limit is not None
            and t.ratio >= 1
            and forecast >= t.ratio * budget.limit
            and t not in crossed
        )
        anomaly, baseline = anomalies.of(key)
        severity = max((t.severity for t in crossed), key=SEVERITY_ORDER.__getitem__, default="ok")
        if anomaly and severity == "ok":
            severity = "warning"
        findings.append(
            Finding(
                budget,
                group,
                window,
                total,
                budget.limit,
                forecast,
                severity,
                used,
                not spend.notes,
                "; ".join(n for n in (note, forecast_note) if n) or None,
                crossed,
                forecast_crossed,
                anomaly,
                baseline,
            )
        )
    return findings


class _Forecast:
    """Spend so far + the mean daily spend of the last 7 complete UTC days x days left. The
    history is summed once per budget, then read per group."""

    def __init__(
        self, budget: Budget, data: SpendData, source: str, window: Window, now: datetime
    ) -> None:
        self.source, self.now, self.window = source, now, window
        self.history: _Spend | None = None
        self.note: str | None = None
        if not budget.forecast or window.period_end is None:
            return
        now_ts = int(now.timestamp())
        today = now_ts - now_ts % _DAY
        self.history_start = today - 7 * _DAY
        sources = endpoints_of(budget) - ({"costs"} if source == "estimate" else set())
        if data.status(sources, self.history_start, today, 10**9) is not None:
            self.note = "too little history for a forecast (7 complete days needed)"
            return
        self.history = _collect(budget, data, source, self.history_start, today, now_ts)

    def of(self, group: tuple[str, ...], spent: Decimal) -> Decimal | None:
        if self.history is None or self.window.period_end is None:
            return None
        past, _ = _total(
            self.history,
            group,
            self.source,
            Window(datetime.fromtimestamp(self.history_start, self.now.tzinfo), self.now, "period"),
            int(self.now.timestamp()),
        )
        days_left = Decimal((self.window.period_end - self.now).total_seconds()) / _DAY
        return spent + past / 7 * days_left


class _Anomaly:
    """Spend in the anomaly window against the mean of same-size windows over the baseline,
    both summed once per budget."""

    def __init__(self, budget: Budget, data: SpendData, source: str, now: datetime) -> None:
        self.budget, self.source, self.now = budget, source, now
        if budget.anomaly is None:
            return
        self.w = parse_duration(budget.anomaly.window)
        self.b = parse_duration(budget.anomaly.baseline)
        self.end = int(now.timestamp())
        recent_start = self.end - int(self.w.total_seconds())
        base_start = recent_start - int(self.b.total_seconds())
        self.recent = _collect(budget, data, source, recent_start, self.end, self.end)
        self.base = _collect(budget, data, source, base_start, recent_start, self.end)

    def of(self, group: tuple[str, ...]) -> tuple[bool, Decimal | None]:
        anomaly = self.budget.anomaly
        if anomaly is None:
            return False, None
        now, w, b = self.now, self.w, self.b
        spent, _ = _total(
            self.recent, group, self.source, Window(now - w, now, "rolling"), self.end
        )
        history, _ = _total(
            self.base, group, self.source, Window(now - w - b, now - w, "rolling"), self.end
        )
        mean = history / (Decimal(b / w))
        return spent > anomaly.factor * mean and spent >= anomaly.min, mean
