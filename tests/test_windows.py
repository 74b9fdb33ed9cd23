"""Window arithmetic: boundaries, DST, month and quarter ends, leap years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budgetguard.evaluate.windows import budget_window
from budgetguard.rules import load_rules_text
from budgetguard.rules.periods import period_bounds


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "tz", "start", "end"),
    [
        ("day", utc(2026, 11, 22, 10), "UTC", utc(2026, 11, 22), utc(2026, 11, 23)),
        ("week", utc(2026, 11, 22, 10), "UTC", utc(2026, 11, 16), utc(2026, 11, 23)),  # Sunday
        ("week", utc(2026, 11, 23, 0), "UTC", utc(2026, 11, 23), utc(2026, 11, 30)),  # Monday
        ("month", utc(2026, 12, 31, 23, 59), "UTC", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("quarter", utc(2026, 11, 22), "UTC", utc(2026, 10, 1), utc(2027, 1, 1)),
        ("quarter", utc(2026, 3, 31, 23), "UTC", utc(2026, 1, 1), utc(2026, 4, 1)),
        ("year", utc(2026, 6, 1), "UTC", utc(2026, 1, 1), utc(2027, 1, 1)),
        ("month", utc(2028, 2, 29, 12), "UTC", utc(2028, 2, 1), utc(2028, 3, 1)),  # leap year
        ("day", utc(2028, 2, 29, 12), "UTC", utc(2028, 2, 29), utc(2028, 3, 1)),
        # Europe/Paris: +1 in winter, +2 in summer; the 2026 switch to summer is March 29.
        ("day", utc(2026, 3, 29, 12), "Europe/Paris", utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)),
        (
            "day",
            utc(2026, 10, 25, 12),
            "Europe/Paris",
            utc(2026, 10, 24, 22),
            utc(2026, 10, 25, 23),
        ),
        (
            "month",
            utc(2026, 10, 31, 23, 30),
            "Europe/Paris",
            utc(2026, 10, 31, 23),
            utc(2026, 11, 30, 23),
        ),  # already November in Paris
        ("week", utc(2026, 3, 30, 12), "America/New_York", utc(2026, 3, 30, 4), utc(2026, 4, 6, 4)),
    ],
)
def test_period_bounds(period: str, now: datetime, tz: str, start: datetime, end: datetime) -> None:
    assert period_bounds(period, now, tz) == (start, end)


def test_dst_days_are_23_and_25_hours() -> None:
    spring = period_bounds("day", utc(2026, 3, 29, 12), "Europe/Paris")
    autumn = period_bounds("day", utc(2026, 10, 25, 12), "Europe/Paris")
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_budget_windows() -> None:
    rules = load_rules_text("""
version: 1
timezone: Asia/Kolkata
budgets:
  - {name: rolling, limit: 1, window: 90m}
  - {name: monthly, limit: 1, period: month}
  - {name: spike, anomaly: {window: 1h, baseline: 1d, factor: 2}}
""")
    now = utc(2026, 11, 22, 10, 17, 31)
    rolling, monthly, spike = (budget_window(b, now, rules.timezone) for b in rules.budgets)
    assert (rolling.start, rolling.end, rolling.kind) == (
        now - timedelta(minutes=90),
        now,
        "rolling",
    )
    assert rolling.sub_day
    assert monthly.start == utc(2026, 10, 31, 18, 30)  # midnight in India, +5:30
    assert monthly.period_end == utc(2026, 11, 30, 18, 30)
    assert monthly.end == now and monthly.kind == "period"
    assert spike.start == now - timedelta(hours=1)
