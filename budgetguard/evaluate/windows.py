"""The time span a budget looks at, at one instant: rolling windows and calendar periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from budgetguard.rules.model import Budget, Rules
from budgetguard.rules.periods import period_bounds
from budgetguard.rules.vocabulary import parse_duration

__all__ = ["Window", "budget_window", "needed_from"]


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in UTC; a period window also knows when its period ends."""

    start: datetime
    end: datetime
    kind: Literal["rolling", "period"]
    period_end: datetime | None = None

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def sub_day(self) -> bool:
        return self.kind == "rolling" and self.end - self.start < timedelta(days=1)


def budget_window(budget: Budget, now: datetime, timezone: str) -> Window:
    """Rolling: buckets starting in ``[now - window, now)``; period: from its start to now."""
    if budget.window is not None:
        return Window(now - parse_duration(budget.window), now, "rolling")
    if budget.period is not None:
        start, end = period_bounds(budget.period, now, timezone)
        return Window(start, now, "period", end)
    assert budget.anomaly is not None
    return Window(now - parse_duration(budget.anomaly.window), now, "rolling")


def needed_from(rules: Rules, now: datetime) -> datetime:
    """The earliest instant the enabled budgets look at from ``now`` (their windows, anomaly
    baselines and the 7 complete UTC days a forecast averages), floored to a UTC midnight:
    data before it need not be loaded."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    earliest = today
    for budget in rules.budgets:
        if not budget.enabled:
            continue
        window = budget_window(budget, now, rules.timezone)
        earliest = min(earliest, window.start)
        if budget.anomaly is not None:
            looked = parse_duration(budget.anomaly.window) + parse_duration(budget.anomaly.baseline)
            earliest = min(earliest, now - looked)
        if budget.forecast and window.period_end is not None:
            earliest = min(earliest, today - timedelta(days=7))
    return earliest.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
