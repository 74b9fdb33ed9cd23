"""The time span a budget looks at, at one instant: rolling windows and calendar periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from budgetguard.rules.model import Budget
from budgetguard.rules.periods import period_bounds
from budgetguard.rules.vocabulary import parse_duration

__all__ = ["Window", "budget_window"]


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
