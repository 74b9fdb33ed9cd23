"""Burn rates of a budget's pairs at one instant: how many times faster than the pace that
spends the limit exactly over the period (or rolling window) each window spends.

Burn rate of a window W = spend(W) / (limit x W / P). A pair holds when both its windows
burn faster than its factor and its long window spent at least ``min_spend``. A window whose
data is incomplete — a hole, data older than a third of the short window, or an hour it cuts
that the store holds no minutes of (a split by time would smooth the very burst a short
window is for) — makes the pair ``unknown``: it neither fires nor resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from budgetguard.evaluate.coverage import coverage_problem
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.spend import Spend, collect_spend, total_of
from budgetguard.evaluate.windows import Window
from budgetguard.rules.model import Budget, BurnRatePair
from budgetguard.rules.needs import endpoints_of

__all__ = ["DEFAULT_MIN_SPEND", "BurnRate", "BurnRates", "min_spend", "runs_out_at"]

#: ``min_spend`` when a pair does not say: a dollar for cost budgets (no page on cents),
#: nothing for usage metrics.
DEFAULT_MIN_SPEND = Decimal(1)
_ZERO = Decimal(0)


def min_spend(budget: Budget, pair: BurnRatePair) -> Decimal:
    if pair.min_spend is not None:
        return pair.min_spend
    return DEFAULT_MIN_SPEND if budget.metric == "cost" else _ZERO


@dataclass(frozen=True)
class BurnRate:
    """One pair of one group at one instant; ``note`` says why it is unknown."""

    pair: BurnRatePair
    long_spend: Decimal | None = None
    short_spend: Decimal | None = None
    long_rate: Decimal | None = None
    short_rate: Decimal | None = None
    holds: bool = False
    note: str | None = None
    #: share of the limit the long window spent
    long_share: Decimal | None = None
    #: when the limit is reached at the long window's pace (local time), if it is
    runs_out_at: datetime | None = None

    @property
    def known(self) -> bool:
        return self.note is None


def runs_out_at(
    spent: Decimal, limit: Decimal | None, per_second: Decimal, now: datetime
) -> datetime | None:
    """When ``spent`` reaches ``limit`` at ``per_second`` from ``now`` (now if it has);
    None when it never does at that pace (or beyond ten years)."""
    if limit is None:
        return None
    if spent >= limit:
        return now
    if per_second <= 0:
        return None
    seconds = (limit - spent) / per_second
    if seconds > 10 * 366 * 86400:
        return None
    return now + timedelta(seconds=float(seconds))


class BurnRates:
    """The pairs of one budget at ``now``: each window summed once, then read per group."""

    def __init__(
        self,
        budget: Budget,
        data: SpendData,
        source: str,
        window: Window,
        now: datetime,
        zone: tzinfo,
    ) -> None:
        self.budget, self.source, self.now, self.zone = budget, source, now, zone
        self.end = int(now.timestamp())
        pace_span = window.period_end - window.start if window.period_end else None
        self.pace_seconds = int(
            pace_span.total_seconds() if pace_span is not None else window.seconds
        )
        self.windows: dict[timedelta, tuple[Spend | None, str | None]] = {}
        sources = endpoints_of(budget, attribution=True)
        if source == "estimate":
            sources -= {"costs"}
        stale = int(budget.staleness_delta.total_seconds())
        for pair in budget.burn_rate:
            tolerance = min(stale, int(pair.short_delta.total_seconds()) // 3)
            for span in (pair.long_delta, pair.short_delta):
                if span not in self.windows:
                    self.windows[span] = self._window(data, sources, span, tolerance)

    def _window(
        self, data: SpendData, sources: set[str], span: timedelta, tolerance: int
    ) -> tuple[Spend | None, str | None]:
        start = self.end - int(span.total_seconds())
        problem = data.status(sources, start, self.end, tolerance) or coverage_problem(
            data, sources, start, self.end, tolerance
        )
        if problem is not None:
            return None, problem
        spend = collect_spend(self.budget, data, self.source, start, self.end, self.end)
        if spend.by_time:
            return None, (
                f"the minutes of an hour the last {_text(span)} cut are not in the store "
                "(a split by time would hide a burst)"
            )
        return spend, None

    def of(self, group: tuple[str, ...], spent: Decimal) -> tuple[BurnRate, ...]:
        """Every pair of ``group``, whose figure now is ``spent``."""
        budget, limit = self.budget, self.budget.limit
        out = []
        for pair in budget.burn_rate:
            amounts: list[Decimal] = []
            note = None
            for span in (pair.long_delta, pair.short_delta):
                spend, problem = self.windows[span]
                if spend is None:
                    note = f"burn rate {pair.key} unknown: {problem}"
                    break
                window = Window(self.now - span, self.now, "rolling")
                amounts.append(total_of(spend, group, self.source, window, self.end)[0])
            if note is not None or limit is None or not self.pace_seconds:
                out.append(BurnRate(pair, note=note or "no limit"))
                continue
            long_spend, short_spend = amounts
            rates = [
                amount / (limit * Decimal(int(span.total_seconds())) / self.pace_seconds)
                for amount, span in zip(amounts, (pair.long_delta, pair.short_delta), strict=True)
            ]
            holds = (
                rates[0] > pair.factor
                and rates[1] > pair.factor
                and long_spend >= min_spend(budget, pair)
            )
            per_second = long_spend / Decimal(int(pair.long_delta.total_seconds()))
            reach = runs_out_at(spent, limit, per_second, self.now)
            out.append(
                BurnRate(
                    pair,
                    long_spend,
                    short_spend,
                    rates[0],
                    rates[1],
                    holds,
                    None,
                    long_spend / limit,
                    None if reach is None else reach.astimezone(self.zone),
                )
            )
        return tuple(out)


def _text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"
