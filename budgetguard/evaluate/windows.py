"""The time span a budget looks at, at one instant: rolling windows and calendar periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from budgetguard.rules.model import Budget
from budgetguard.rules.periods import period_bounds

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
    if budget.window_delta is not None:
        return Window(now - budget.window_delta, now, "rolling")
    if budget.period is not None:
        start, end = period_bounds(budget.period, now, timezone)
        return Window(start, now, "period", end)
    assert budget.anomaly_window_delta is not None
    return Window(now - budget.anomaly_window_delta, now, "rolling")
