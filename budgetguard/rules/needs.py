"""What to fetch for a set of rules: endpoints, groupings, bucket widths and ranges.

- Costs (daily, the only width) when a cost budget uses ``costs`` or ``auto``.
- Usage endpoints a budget can count: those its metric is measured by, within its
  ``match.endpoint``; cost budgets on ``estimate``/``auto`` price usage of every endpoint.
- Grouped by what matching and pricing need: project and model always, batch and service
  tier (prices), image size, and user / API key only when a budget matches or splits by them.
- ``1h`` buckets for the recent span (rolling windows, current periods, forecast history,
  anomaly baselines, at most ``HOURLY_DAYS`` back, from a UTC midnight), ``1d`` buckets for
  whatever lies further back (quarters, years), and ``1m`` buckets for the last hours when a
  window is under an hour.
- Hourly usage, however old, from the first UTC day a bound cuts (a local period start, a
  rolling window's start, the digest's local days): a costs day is split by its usage.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from budgetguard.rules.model import Budget, Rules
from budgetguard.rules.periods import last_complete_period, period_start
from budgetguard.rules.vocabulary import ENDPOINTS, METRIC_ENDPOINTS

__all__ = [
    "HOURLY_DAYS",
    "PlannedQuery",
    "bounds",
    "endpoints_of",
    "look_back",
    "needed_from",
    "plan_queries",
]

HOURLY_DAYS = 35
FORECAST_HISTORY = timedelta(days=8)
_WIDTH_SECONDS = {"1m": 60, "1h": 3600, "1d": 86400}
#: Dimensions each endpoint is grouped by for pricing and matching, beyond project.
_BASE_GROUPS: dict[str, tuple[str, ...]] = {
    "costs": ("line_item",),
    "completions": ("model", "batch", "service_tier"),
    "embeddings": ("model",),
    "moderations": ("model",),
    "images": ("model", "size"),
    "audio_speeches": ("model",),
    "audio_transcriptions": ("model",),
    "vector_stores": (),
    "code_interpreter_sessions": (),
    "file_search_calls": (),
    "web_search_calls": ("model",),
}
_HAS_USER = frozenset(
    {
        "completions",
        "embeddings",
        "moderations",
        "images",
        "audio_speeches",
        "audio_transcriptions",
        "file_search_calls",
        "web_search_calls",
    }
)
_HAS_KEY = _HAS_USER | {"costs"}


@dataclass(frozen=True)
class PlannedQuery:
    """One query to keep in sync: ``[start, now)`` at ``width`` grouped by ``group_by``."""

    endpoint: str
    width: str
    group_by: tuple[str, ...]
    start: datetime

    @property
    def key(self) -> str:
        """Names the stored data of this query; a new grouping starts a new series."""
        return f"{self.endpoint}:{self.width}:{','.join(self.group_by)}"

    @property
    def width_seconds(self) -> int:
        return _WIDTH_SECONDS[self.width]


def endpoints_of(budget: Budget) -> set[str]:
    """The data sources a budget reads: usage endpoint names and/or ``costs``."""
    return set(_sources(budget.match.endpoint or ("*",), budget.metric, budget.cost_source))


@lru_cache(maxsize=1024)
def _sources(patterns: tuple[str, ...], metric: str, cost_source: str) -> frozenset[str]:
    matched = {e for e in ENDPOINTS if any(fnmatch.fnmatchcase(e, p) for p in patterns)}
    if metric != "cost":
        return frozenset(matched & set(METRIC_ENDPOINTS[metric]))
    sources = set()
    if cost_source in ("costs", "auto"):
        sources.add("costs")
    if cost_source in ("estimate", "auto"):
        sources |= matched
    return frozenset(sources)


def bounds(budget: Budget, now: datetime, timezone: str) -> list[datetime]:
    """The starts of every interval ``budget`` sums at ``now``: its window or period, the
    7 complete UTC days a forecast averages, an anomaly window and its baseline."""
    starts = []
    if budget.window_delta is not None:
        starts.append(now - budget.window_delta)
    if budget.period is not None:
        starts.append(period_start(budget.period, now, timezone))
        if budget.forecast:
            starts.append(_floor(now, 86400) - FORECAST_HISTORY)
    if budget.anomaly_window_delta is not None and budget.baseline_delta is not None:
        starts.append(now - budget.anomaly_window_delta)
        starts.append(now - budget.anomaly_window_delta - budget.baseline_delta)
    return starts


def look_back(budget: Budget, now: datetime, timezone: str) -> datetime:
    """The earliest instant ``budget`` looks at from ``now`` (planner and evaluator alike)."""
    return min(bounds(budget, now, timezone), default=now)


def needed_from(rules: Rules, now: datetime) -> datetime:
    """The UTC midnight on or before every instant the enabled budgets look at from
    ``now``: data before it need not be loaded."""
    earliest = min(
        (look_back(b, now, rules.timezone) for b in rules.budgets if b.enabled), default=now
    )
    return _floor(min(earliest, now), 86400)


def _floor(moment: datetime, seconds: int) -> datetime:
    stamp = int(moment.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


def _straddled(moments: Iterable[datetime]) -> datetime | None:
    """The first UTC midnight of the days whose costs (daily) a bound cuts, if any."""
    cut = [_floor(m, 86400) for m in moments if int(m.timestamp()) % 86400]
    return min(cut) if cut else None


def plan_queries(
    rules: Rules,
    now: datetime,
    *,
    since: datetime | None = None,
    budgets: Iterable[Budget] | None = None,
) -> list[PlannedQuery]:
    """The queries that keep the store ready to evaluate ``rules`` at ``now``."""
    chosen = [b for b in (rules.budgets if budgets is None else budgets) if b.enabled]
    earliest: dict[str, datetime] = {}
    # hourly usage from here: each UTC day a bound cuts, to split its costs by usage
    hourly_from: dict[str, datetime] = {}
    minute_span: dict[str, timedelta] = {}
    by_user: set[str] = set()
    by_key: set[str] = set()

    def split_days(sources: Iterable[str], moment: datetime | None) -> None:
        for source in sources:
            if moment is not None:
                hourly_from[source] = min(hourly_from.get(source, moment), moment)

    for budget in chosen:
        starts = bounds(budget, now, rules.timezone)
        start = look_back(budget, now, rules.timezone)
        shortest = budget.shortest_window
        used = endpoints_of(budget)
        if "costs" in used:  # a costs day a bound cuts is split by every endpoint's usage
            split_days(ENDPOINTS, _straddled(starts))
            if budget.match.model is not None or "model" in budget.each:
                # model-less line items are attributed by the day's usage of what they bill
                used = used | {"images", "web_search_calls"}
        split_days(used - {"costs"}, _straddled(starts))
        for source in used:
            earliest[source] = min(earliest.get(source, start), start)
            if budget.match.user is not None or "user" in budget.each:
                by_user.add(source)
            if budget.match.api_key is not None or "api_key" in budget.each:
                by_key.add(source)
            if shortest is not None and shortest < timedelta(hours=1):
                minute_span[source] = max(minute_span.get(source, shortest), shortest)
    if rules.digest is not None and budgets is None:
        # the digest compares the last complete period with the one before, from costs,
        # by local days: each one that is not a UTC day is split by hourly usage
        before, first, end = last_complete_period(rules.digest.period, now, rules.timezone)
        earliest["costs"] = min(earliest.get("costs", before), before)
        split_days(ENDPOINTS, _straddled((before, first, end)) and _floor(before, 86400))
    hourly_floor = _floor(now, 86400) - timedelta(days=HOURLY_DAYS)
    queries = []
    for source in sorted(set(earliest) | set(hourly_from)):
        if source not in earliest:  # only to split costs days: hours, from the first cut
            hourly = hourly_from[source] if since is None else min(hourly_from[source], since)
            queries.append(PlannedQuery(source, "1h", _group_by(source, by_user, by_key), hourly))
            continue
        start = since if since is not None else earliest[source]
        group_by = _group_by(source, by_user, by_key)
        if source == "costs":
            queries.append(PlannedQuery(source, "1d", group_by, _floor(start, 86400)))
            continue
        hourly = max(_floor(start, 86400), hourly_floor)
        hourly = min(hourly, hourly_from.get(source, hourly))
        queries.append(PlannedQuery(source, "1h", group_by, hourly))
        if start < hourly:
            queries.append(PlannedQuery(source, "1d", group_by, _floor(start, 86400)))
        if source in minute_span:
            span = minute_span[source] + timedelta(hours=1)
            queries.append(PlannedQuery(source, "1m", group_by, _floor(now - span, 60)))
    return queries


def _group_by(source: str, by_user: set[str], by_key: set[str]) -> tuple[str, ...]:
    groups = ["project_id", *_BASE_GROUPS[source]]
    if source in by_user and source in _HAS_USER:
        groups.append("user_id")
    if source in by_key and source in _HAS_KEY:
        groups.append("api_key_id")
    return tuple(groups)
