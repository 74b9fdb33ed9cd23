"""What ``backtest --stats`` measures: how often each rule fires, and how fast the burn-rate
pairs page a runaway.

Noise is counted on the replay itself (``pipeline.replay``: the evaluator and the alert
lifecycle at every step): fire episodes per rule (threshold, forecast, anomaly, burn-rate
pair), per 30 days. Detection cannot be replayed from the store (it holds no runaway), so
``--inject`` overlays synthetic ones on the budget's own spend series: the spend of every
step-long bucket of the range, summed once by the evaluator's ``collect_spend`` (minutes
where the store holds them; a bucket split by time or with a hole is unknown, as a pair's
window would be). An ``Nx`` runaway adds (N - 1) x the budgeted pace (the limit over the
period) from its start on, so that a budget set at its expected spend burns at N x its pace;
starts are spread evenly over the range (at least 40, so over every hour of the week). From
each start, the pairs are evaluated step by step as the evaluator does (both windows over
their factor, the long one over ``min_spend``) until a critical pair (a page) holds, at most
7 days later (half the range when shorter; the starts leave that room before its end): the
detection time, and the share of the limit spent from the start to the page.

The figures are statistics, not money: they are computed in floats.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from budgetguard.alerts.lifecycle import AlertEvent
from budgetguard.evaluate.burn_rate import min_spend
from budgetguard.evaluate.coverage import coverage_problem
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.spend import collect_spend, total_of
from budgetguard.evaluate.windows import Window, budget_window
from budgetguard.rules.model import Budget, BurnRatePair, Rules
from budgetguard.rules.needs import endpoints_of

__all__ = [
    "DETECTION_CAP",
    "MIN_STARTS",
    "Detection",
    "FireCounts",
    "detections",
    "parse_injections",
    "spend_series",
]

MIN_STARTS = 40
DETECTION_CAP = timedelta(days=7)


@dataclass
class FireCounts:
    """Fire episodes per (budget, rule, severity) over a replay of ``days`` days."""

    days: float
    fires: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @classmethod
    def of_rules(cls, rules: Rules, days: float) -> FireCounts:
        """Every rule of every enabled budget, at zero (so that a quiet rule shows)."""
        counts = cls(days)
        for budget in rules.budgets:
            if not budget.enabled:
                continue
            for t in budget.thresholds:
                counts.fires[(budget.name, f"threshold {t.key}", t.severity)] = 0
                if budget.forecast or t.forecast:
                    counts.fires[(budget.name, f"forecast {t.key}", "warning")] = 0
            for pair in budget.burn_rate:
                counts.fires[(budget.name, f"burn_rate {pair.at}", pair.severity)] = 0
            if budget.anomaly is not None:
                counts.fires[(budget.name, "anomaly", "warning")] = 0
        return counts

    def add(self, events: Iterable[AlertEvent]) -> None:
        for event in events:
            if event.event != "fire":
                continue
            t = event.threshold
            rule = event.kind + (
                "" if t is None else f" {t.at if event.kind == 'burn_rate' else t.key}"
            )
            key = (event.finding.budget.name, rule, event.severity)
            self.fires[key] = self.fires.get(key, 0) + 1

    def rows(self) -> list[tuple[str, str, str, int, float]]:
        """(budget, rule, severity, fires, fires per 30 days)."""
        per = 30 / self.days if self.days > 0 else 0.0
        return [(b, r, s, n, n * per) for (b, r, s), n in self.fires.items()]


def parse_injections(text: str) -> list[float]:
    """``2x,5x,10x`` -> [2, 5, 10]; ValueError with the reason otherwise."""
    out = []
    for part in text.split(","):
        raw = part.strip().lower().removesuffix("x")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a multiplier like 10x") from None
        if not math.isfinite(value) or not 1 < value <= 10_000:
            raise ValueError(f"{part.strip()!r}: a runaway is more than 1x and at most 10000x")
        out.append(value)
    if not out:
        raise ValueError("give multipliers like 2x,5x,10x")
    return out


@dataclass(frozen=True)
class Series:
    """A budget's spend per ``width``-second bucket from ``start``; None where unknown."""

    start: int
    width: int
    amounts: list[float | None]

    def prefix(self) -> tuple[list[float], list[int]]:
        """Running sums of the amounts and of the unknown buckets."""
        sums, unknown = [0.0], [0]
        for amount in self.amounts:
            sums.append(sums[-1] + (amount or 0.0))
            unknown.append(unknown[-1] + (amount is None))
        return sums, unknown


def bucket_width(budget: Budget, step: int) -> int:
    """The widest bucket every pair window and the step are whole multiples of."""
    width = step
    for pair in budget.burn_rate:
        for span in (pair.long_delta, pair.short_delta):
            width = math.gcd(width, int(span.total_seconds()))
    return width


def spend_series(budget: Budget, data: SpendData, first: int, last: int, width: int) -> Series:
    """The spend of each ``width`` bucket from ``first`` (before it: the longest pair's long
    window) up to ``last``, as the evaluator sums it."""
    lead = max((int(p.long_delta.total_seconds()) for p in budget.burn_rate), default=0)
    start = first - lead
    start -= start % width
    source = budget.source
    sources = endpoints_of(budget, attribution=True) - (
        {"costs"} if source == "estimate" else set()
    )
    amounts: list[float | None] = []
    for lo in range(start, last, width):
        hi = lo + width
        if coverage_problem(data, sources, lo, hi, 0) is not None:
            amounts.append(None)
            continue
        spend = collect_spend(budget, data, source, lo, hi, hi)
        if spend.by_time:
            amounts.append(None)
            continue
        window = Window(_utc(lo), _utc(hi), "rolling")
        amounts.append(float(total_of(spend, (), source, window, hi)[0]))
    return Series(start, width, amounts)


def _utc(stamp: int) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(stamp, UTC)


@dataclass(frozen=True)
class Detection:
    """The runaways of one multiplier on one budget."""

    budget: str
    multiplier: float
    starts: int
    #: (hours to the first page, share of the limit spent from the start to it) per page
    pages: list[tuple[float, float]]
    #: pair key -> hours each page by that pair took (the pair that paged first)
    by_pair: dict[str, list[float]]
    skipped: int = 0  # starts whose windows had unknown data

    def summary(self) -> dict[str, Any]:
        hours = sorted(h for h, _ in self.pages)
        shares = sorted(s for _, s in self.pages)
        return {
            "budget": self.budget,
            "runaway": f"{self.multiplier:g}x",
            "starts": self.starts,
            "paged": len(self.pages),
            "skipped": self.skipped,
            "median_hours": statistics.median(hours) if hours else None,
            "max_hours": hours[-1] if hours else None,
            "median_share": statistics.median(shares) if shares else None,
            "max_share": shares[-1] if shares else None,
            "first_pair": {k: statistics.median(v) for k, v in sorted(self.by_pair.items())},
        }


def detections(
    rules: Rules,
    data: SpendData,
    first: datetime,
    last: datetime,
    step: timedelta,
    multipliers: Sequence[float],
    starts: int = MIN_STARTS,
) -> tuple[list[Detection], list[str]]:
    """Runaways injected on every enabled budget with a limit and burn-rate pairs (not
    split with ``each``: a runaway is one job, in one group), and notes on those left out."""
    out: list[Detection] = []
    notes: list[str] = []
    every = int(step.total_seconds())
    a, b = int(first.timestamp()), int(last.timestamp())
    for budget in rules.budgets:
        if not budget.enabled or not budget.burn_rate or budget.limit is None:
            continue
        if budget.each:
            notes.append(f"{budget.name}: split with each; runaways are injected on whole budgets")
            continue
        if not any(p.severity == "critical" for p in budget.burn_rate):
            notes.append(f"{budget.name}: no critical pair, nothing pages")
            continue
        width = bucket_width(budget, every)
        series = spend_series(budget, data, a, b, width)
        for m in multipliers:
            out.append(_inject(rules, budget, series, a, b, every, m, starts))
    return out, notes


def _inject(
    rules: Rules,
    budget: Budget,
    series: Series,
    first: int,
    last: int,
    every: int,
    multiplier: float,
    count: int,
) -> Detection:
    assert budget.limit is not None
    limit = float(budget.limit)
    sums, unknown = series.prefix()
    # each runaway is followed up to 7 days, inside the range: the starts leave room
    horizon = min(int(DETECTION_CAP.total_seconds()), (last - first) // 2)
    spacing = max(every, (last - horizon - first) // count)
    spacing -= spacing % every
    pages: list[tuple[float, float]] = []
    by_pair: dict[str, list[float]] = {}
    skipped = 0
    starts = [first + i * spacing for i in range(count)]
    for start in starts:
        found = _first_page(
            rules,
            budget,
            (series, sums, unknown),
            start,
            min(last, start + horizon),
            every,
            multiplier,
            limit,
        )
        if found is None:
            continue
        if isinstance(found, str):  # "unknown"
            skipped += 1
            continue
        at, pair, spent = found
        hours = (at - start) / 3600
        pages.append((hours, spent / limit))
        by_pair.setdefault(pair.key, []).append(hours)
    return Detection(budget.name, multiplier, len(starts), pages, by_pair, skipped)


def _first_page(
    rules: Rules,
    budget: Budget,
    spend: tuple[Series, list[float], list[int]],
    start: int,
    stop: int,
    every: int,
    multiplier: float,
    limit: float,
) -> tuple[int, BurnRatePair, float] | str | None:
    """The first step after ``start`` at which a critical pair holds with the runaway on
    (its instant, the pair, the spend from the start to it), "unknown" when a window
    had unknown data first, or None within ``stop``."""

    series, sums, unknown = spend

    def base(lo: int, hi: int) -> tuple[float, bool]:
        i = (lo - series.start) // series.width
        j = (hi - series.start) // series.width
        if i < 0 or j > len(series.amounts):
            return 0.0, False
        return sums[j] - sums[i], unknown[j] == unknown[i]

    critical = [p for p in budget.burn_rate if p.severity == "critical"]
    at = start + every
    while at <= stop:
        window = budget_window(budget, _utc(at), rules.timezone)
        pace_span = (
            (window.period_end - window.start).total_seconds()
            if window.period_end is not None
            else window.seconds
        )
        extra_rate = (multiplier - 1) * limit / pace_span  # per second
        for pair in critical:
            rates = []
            for span in (pair.long_delta, pair.short_delta):
                seconds = int(span.total_seconds())
                amount, known = base(at - seconds, at)
                if not known:
                    return "unknown"
                amount += extra_rate * max(0, min(seconds, at - start))
                rates.append((amount, amount / (limit * seconds / pace_span)))
            (long_amount, long_rate), (_, short_rate) = rates
            factor = float(pair.factor)
            floor = float(min_spend(budget, pair))
            if long_rate > factor and short_rate > factor and long_amount >= floor:
                spent, _ = base(start, at)
                return at, pair, spent + extra_rate * (at - start)
        at += every
    return None
