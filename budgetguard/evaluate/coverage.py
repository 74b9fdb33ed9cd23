"""The coverage gate: a window whose data has a hole is ``unknown``, never a smaller sum.

Each series the evaluation reads (``SpendData.usage_parts``, the costs days) must be covered
by the store's coverage intervals over ``[start, end)``, up to the staleness the budget
allows; costs may also lack the current UTC day, which the API still fills in (the lag the
contract documents). The note names the first missing range, so a user sees what to collect.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from budgetguard.evaluate.data import SpendData
from budgetguard.rules.needs import GAUGES
from budgetguard.store.spans import holes

__all__ = ["coverage_problem", "end_cut_problem"]

_DAY = 86400


def _iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


def _parts(data: SpendData, source: str, start: int, end: int) -> list[tuple[Any, int, int]]:
    if source == "costs":
        costs = data.daily_costs()
        return [(costs, start, end)]
    return list(data.usage_parts(source, start, end))


def coverage_problem(
    data: SpendData,
    sources: Iterable[str],
    start: int,
    end: int,
    stale_after: int,
    clock: int | None = None,
) -> str | None:
    """None when every series read for ``[start, end)`` is covered; else a note that names
    the first missing range of the first source that has one. Nothing is covered past the
    ``clock`` (the wall clock at run time), whatever ``--now`` says: staleness never
    excuses that part."""
    if clock is not None and end > clock:
        return (
            f"no data for {_iso(max(start, clock))} to {_iso(end)}: it is after the clock "
            "(--now is later than the time of the run)"
        )
    for source in sorted(sources):
        due = end - stale_after
        if source == "costs":
            due = min(due, end - end % _DAY)  # today's costs may still be missing
        parts = _parts(data, source, start, end)
        if not parts:
            return f"{source}: never collected"
        for series, lo, hi in parts:
            if series is None:
                return f"{source}: never collected"
            upto = min(hi, due)
            if lo >= upto:
                continue
            missing = holes(data.coverage.get(series.query.key, []), lo, upto)
            if missing:
                a, b = missing[0]
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                return (
                    f"{source}: no data for {_iso(a)} to {_iso(b)}{more}; the next collect fills it"
                )
    return None


def end_cut_problem(data: SpendData, sources: Iterable[str], end: int) -> str | None:
    """None unless ``end`` (a ``--now`` in the past) cuts an hour whose stored usage runs
    past it and whose minutes are not stored: that hour would be split by time, and traffic
    is bursty inside the hour, so the figure is unknown (a collection at that ``--now``
    fetches the minutes). Costs are split by every endpoint's usage (their days straddle
    ``end``); a gauge accrues by time, exactly."""
    if not end % 3600:
        return None
    wanted = set(sources)
    endpoints = data.endpoints() if "costs" in wanted else sorted(wanted - {"costs"})
    hour = end - end % 3600
    for endpoint in endpoints:
        if endpoint in GAUGES or data.latest(endpoint) <= end:
            continue  # its data ends at ``end``: the API cut the bucket there
        if not data.minutes_hold(endpoint, hour, min(hour + 3600, data.latest(endpoint))):
            return (
                f"{endpoint}: no minutes stored for {_iso(hour)} to {_iso(hour + 3600)}, "
                "the hour --now cuts (its usage runs past --now); collect at this --now "
                "fetches them"
            )
    return None
