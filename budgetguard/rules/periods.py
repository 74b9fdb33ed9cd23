"""Calendar periods in the rules' time zone, as UTC instants.

A period starts at local midnight of its first day (ISO weeks on Monday), so across a DST
change a day is 23 or 25 hours long; all arithmetic is on local dates, then converted to UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["local_days", "period_bounds", "period_start"]


def _first_day(period: str, day: date) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown period {period!r}")


def _next_first_day(period: str, first: date) -> date:
    if period == "day":
        return first + timedelta(days=1)
    if period == "week":
        return first + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_bounds(period: str, now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the calendar ``period`` that contains ``now``."""
    zone = ZoneInfo(timezone)
    first = _first_day(period, now.astimezone(zone).date())
    return _utc(first, zone), _utc(_next_first_day(period, first), zone)


def period_start(period: str, now: datetime, timezone: str) -> datetime:
    return period_bounds(period, now, timezone)[0]


def last_complete_period(
    period: str, now: datetime, timezone: str
) -> tuple[datetime, datetime, datetime]:
    """(start of the period before it, start, end) of the last complete ``period`` before
    ``now``, in UTC: what a digest reports, and what it compares with."""
    from datetime import timedelta

    start, _ = period_bounds(period, now, timezone)
    last_start, _ = period_bounds(period, start - timedelta(seconds=1), timezone)
    before, _ = period_bounds(period, last_start - timedelta(seconds=1), timezone)
    return before, last_start, start


def local_days(start: datetime, end: datetime, timezone: str) -> list[tuple[date, int, int]]:
    """The local days of ``[start, end)`` (local midnights): (date, UTC start, UTC end), the
    last one cut at ``end``'s day's end (digests and the status page's daily bars)."""
    zone = ZoneInfo(timezone)
    day = start.astimezone(zone).date()
    out: list[tuple[date, int, int]] = []
    while True:
        lo = _utc(day, zone)
        if lo >= end:
            return out
        day += timedelta(days=1)
        out.append((day - timedelta(days=1), int(lo.timestamp()), int(_utc(day, zone).timestamp())))
