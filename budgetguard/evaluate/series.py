"""A budget's spend over its span, step by step: what the status page's budget detail and the
digest's burn-up draw.

The span is the calendar period (start to end) or the rolling window ending now; steps are
local days in the rules' timezone (hours for a span under two days, weeks past 93 days), each
summed as the evaluation sums a window (``collect_spend``: straddling buckets apportioned,
costs for settled days, the larger of costs and the estimate after) and split by source. The
forecast band spans the lowest and highest of the 7 complete UTC days the forecast averages.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.spend import Spend, collect_spend, day_parts
from budgetguard.rules.model import Budget, Rules
from budgetguard.rules.periods import local_days

__all__ = ["SpendSeries", "Step", "spend_series"]

_DAY = 86400
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Step:
    """One step of a span: its spend by source (``usage`` for counts of a usage metric)."""

    start: datetime
    end: datetime
    costs: Decimal = _ZERO
    estimate: Decimal = _ZERO
    usage: Decimal = _ZERO

    @property
    def total(self) -> Decimal:
        return self.costs + self.estimate + self.usage


@dataclass(frozen=True)
class SpendSeries:
    """The steps of one finding's span, and what its chart marks: limit, thresholds, the
    forecast band (low, high) and when the limit runs out at the forecast's pace."""

    finding: Finding
    unit: str  # hour | day | week
    start: datetime
    end: datetime
    steps: tuple[Step, ...]
    band: tuple[Decimal, Decimal] | None = None
    runs_out: datetime | None = None


def _bounds(finding: Finding, unit: str, timezone: str) -> list[tuple[int, int]]:
    window = finding.window
    start, end = window.start, window.period_end or window.end
    if unit == "hour":
        first = int(start.timestamp())
        last = int(end.timestamp())
        edges = [*list(range(first, last, 3600)), last]
        return list(itertools.pairwise(edges))
    days = [(lo, hi) for _, lo, hi in local_days(start, end, timezone)]
    if days:  # a rolling window starts inside its first local day
        days[0] = (max(days[0][0], int(start.timestamp())), days[0][1])
        days[-1] = (days[-1][0], min(days[-1][1], int(end.timestamp())))
    if unit == "week":
        return [(days[i][0], days[min(i + 6, len(days) - 1)][1]) for i in range(0, len(days), 7)]
    return days


def _unit(finding: Finding) -> str:
    window = finding.window
    seconds = ((window.period_end or window.end) - window.start).total_seconds()
    return "hour" if seconds < 2 * _DAY else "week" if seconds > 93 * _DAY else "day"


def _split(spend: Spend, group: tuple[str, ...], budget: Budget, sub_day: bool, now: int) -> Step:
    """The group's spend by source, chosen as ``total_of`` chooses."""
    zero = datetime.fromtimestamp(0, UTC)
    if budget.metric != "cost":
        return Step(zero, zero, usage=spend.usage.get(group, _ZERO).to_integral_value())
    costs, estimate = spend.costs.get(group, {}), spend.estimate.get(group, {})
    c, e = sum(costs.values(), _ZERO), sum(estimate.values(), _ZERO)
    if budget.source == "costs":
        return Step(zero, zero, costs=c)
    if budget.source == "estimate":
        return Step(zero, zero, estimate=e)
    if sub_day:
        return Step(zero, zero, costs=c) if c >= e else Step(zero, zero, estimate=e)
    parts: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    for _, amount, kind in day_parts(costs, estimate, now):
        parts[kind] += amount
    return Step(zero, zero, costs=parts["costs"], estimate=parts["estimate"])


def _band(
    budget: Budget, finding: Finding, data: SpendData, group: tuple[str, ...], now: int
) -> tuple[tuple[Decimal, Decimal] | None, datetime | None]:
    """(low, high) of the forecast from the 7 complete UTC days it averages, and when the
    limit runs out at the forecast's own pace."""
    window, forecast, spent, limit = finding.window, finding.forecast, finding.spend, finding.limit
    if forecast is None or spent is None or window.period_end is None:
        return None, None
    today = now - now % _DAY
    history = collect_spend(budget, data, budget.source, today - 7 * _DAY, today, now)
    costs, estimate = history.costs.get(group, {}), history.estimate.get(group, {})
    if budget.source == "costs":
        daily = [costs.get(today - i * _DAY, _ZERO) for i in range(1, 8)]
    elif budget.source == "estimate":
        daily = [estimate.get(today - i * _DAY, _ZERO) for i in range(1, 8)]
    else:
        chosen = {day: amount for day, amount, _ in day_parts(costs, estimate, now)}
        daily = [chosen.get(today - i * _DAY, _ZERO) for i in range(1, 8)]
    left = Decimal((window.period_end - window.end).total_seconds()) / _DAY
    band = (spent + min(daily) * left, spent + max(daily) * left)
    runs_out = None
    if limit is not None and spent >= limit:
        runs_out = window.end
    elif limit is not None and forecast > limit and forecast > spent and left > 0:
        rate = (forecast - spent) / left  # per day
        runs_out = window.end + timedelta(days=float((limit - spent) / rate))
    return band, runs_out


def spend_series(
    rules: Rules, data: SpendData, findings: Sequence[Finding], now: datetime, *, top: int = 5
) -> list[SpendSeries]:
    """The series of each budget with a limit and figures, and of the ``top`` groups (by
    percent of limit) of an ``each`` budget."""
    chosen: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.limit is not None and f.spend is not None and f.budget.anomaly is None:
            chosen[f.budget.name].append(f)
    at = int(now.timestamp())
    out: list[SpendSeries] = []
    for group_findings in chosen.values():
        ranked = sorted(group_findings, key=lambda f: -(f.ratio or _ZERO))[:top]
        first = ranked[0]
        budget, unit = first.budget, _unit(first)
        steps: dict[tuple[str, ...], list[Step]] = defaultdict(list)
        keys = [tuple(f.group[k] for k in budget.each) for f in ranked]
        for lo, hi in _bounds(first, unit, rules.timezone):
            start, end = datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
            if lo >= at:  # still to come: drawn as the pace and the forecast
                for key in keys:
                    steps[key].append(Step(start, end))
                continue
            spend = collect_spend(budget, data, budget.source, lo, min(hi, at), at)
            for key in keys:
                step = _split(spend, key, budget, unit == "hour", at)
                steps[key].append(Step(start, end, step.costs, step.estimate, step.usage))
        for f, key in zip(ranked, keys, strict=True):
            band, runs_out = _band(budget, f, data, key, at)
            window = f.window
            out.append(
                SpendSeries(
                    f,
                    unit,
                    window.start,
                    window.period_end or window.end,
                    tuple(steps[key]),
                    band,
                    runs_out,
                )
            )
    return out
