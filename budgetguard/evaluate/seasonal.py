"""Seasonal anomalies: a window against the same slots (hour of week) of previous weeks.

Traffic has a daily and a weekly shape (the simulator's peak hour burns 2.8x the mean pace):
a flat mean over the baseline is either blind to a doubled quiet hour or noisy on every busy
Monday morning. ``anomaly: {seasonal: true}`` compares the window ``[now - W, now)`` with
``[now - W - k weeks, now - k weeks)`` for each of the baseline's k = 1..n weeks (4 when
no baseline is given), and fires when it spends more than ``factor`` x their mean.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.spend import Spend, collect_spend, total_of
from budgetguard.evaluate.windows import Window
from budgetguard.rules.model import Budget

__all__ = ["WEEK", "SeasonalAnomaly", "seasonal_slots"]

WEEK = timedelta(days=7)


def seasonal_slots(budget: Budget, now: datetime) -> list[tuple[datetime, datetime]]:
    """The same window in each previous week of the baseline, newest first."""
    window, baseline = budget.anomaly_window_delta, budget.baseline_delta
    assert window is not None and baseline is not None
    weeks = max(1, baseline // WEEK)
    return [(now - k * WEEK - window, now - k * WEEK) for k in range(1, weeks + 1)]


class SeasonalAnomaly:
    """The window and its previous weeks' slots, summed once per budget, read per group."""

    def __init__(self, budget: Budget, data: SpendData, source: str, now: datetime) -> None:
        assert budget.anomaly is not None and budget.anomaly_window_delta is not None
        self.anomaly, self.source = budget.anomaly, source
        self.end = int(now.timestamp())
        window = budget.anomaly_window_delta
        self.recent = self._sum(budget, data, now - window, now)
        self.recent_window = Window(now - window, now, "rolling")
        self.slots = [(self._sum(budget, data, a, b), a, b) for a, b in seasonal_slots(budget, now)]

    def _sum(self, budget: Budget, data: SpendData, start: datetime, end: datetime) -> Spend:
        return collect_spend(
            budget, data, self.source, int(start.timestamp()), int(end.timestamp()), self.end
        )

    def of(self, group: tuple[str, ...]) -> tuple[bool, Decimal | None]:
        spent, _ = total_of(self.recent, group, self.source, self.recent_window, self.end)
        past = [
            total_of(spend, group, self.source, Window(a, b, "rolling"), self.end)[0]
            for spend, a, b in self.slots
        ]
        mean = sum(past, Decimal(0)) / len(past)
        fires = spent > self.anomaly.factor * mean and spent >= self.anomaly.min
        return fires, mean
