"""What to fetch for a set of rules: endpoints, groupings, bucket widths and ranges.

- Costs (daily, the only width) when a cost budget uses ``costs`` or ``auto``.
- Usage endpoints a budget can count: those its metric is measured by, within its
  ``match.endpoint``; cost budgets on ``estimate``/``auto`` price usage of every endpoint.
- Grouped by what matching and pricing need: project and model always, batch and service
  tier (prices), image size, and user / API key only when a budget matches or splits by them.
- ``1h`` buckets for the recent span (rolling windows, current periods, forecast history,
  anomaly baselines, at most ``HOURLY_DAYS`` back), ``1d`` buckets for whatever lies further
  back (quarters, years), and ``1m`` buckets for the last hours when a window is under an hour.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from budgetguard.rules.model import Budget, Rules
from budgetguard.rules.periods import last_complete_period, period_start
from budgetguard.rules.vocabulary import ENDPOINTS, METRIC_ENDPOINTS, parse_duration

__all__ = ["HOURLY_DAYS", "PlannedQuery", "endpoints_of", "plan_queries"]

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


def _earliest(budget: Budget, now: datetime, timezone: str) -> datetime:
    starts = []
    if budget.window is not None:
        starts.append(now - parse_duration(budget.window))
    if budget.period is not None:
        starts.append(period_start(budget.period, now, timezone))
        if budget.forecast:
            starts.append(_floor(now, 86400) - FORECAST_HISTORY)
    if budget.anomaly is not None:
        starts.append(
            now - parse_duration(budget.anomaly.baseline) - parse_duration(budget.anomaly.window)
        )
    return min(starts) if starts else now


def _shortest_window(budget: Budget) -> timedelta | None:
    windows = [
        parse_duration(w)
        for w in (budget.window, budget.anomaly.window if budget.anomaly else None)
        if w is not None
    ]
    return min(windows) if windows else None


def _floor(moment: datetime, seconds: int) -> datetime:
    stamp = int(moment.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


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
    minute_span: dict[str, timedelta] = {}
    by_user: set[str] = set()
    by_key: set[str] = set()
    for budget in chosen:
        start = _earliest(budget, now, rules.timezone)
        shortest = _shortest_window(budget)
        for source in endpoints_of(budget):
            earliest[source] = min(earliest.get(source, start), start)
            if budget.match.user is not None or "user" in budget.each:
                by_user.add(source)
            if budget.match.api_key is not None or "api_key" in budget.each:
                by_key.add(source)
            if shortest is not None and shortest < timedelta(hours=1):
                minute_span[source] = max(minute_span.get(source, shortest), shortest)
    if rules.digest is not None and budgets is None:
        # the digest compares the last complete period with the one before, from costs
        start = last_complete_period(rules.digest.period, now, rules.timezone)[0]
        earliest["costs"] = min(earliest.get("costs", start), start)
    hourly_floor = _floor(now, 86400) - timedelta(days=HOURLY_DAYS)
    queries = []
    for source in sorted(earliest):
        start = since if since is not None else earliest[source]
        groups = ["project_id", *_BASE_GROUPS[source]]
        if source in by_user and source in _HAS_USER:
            groups.append("user_id")
        if source in by_key and source in _HAS_KEY:
            groups.append("api_key_id")
        group_by = tuple(groups)
        if source == "costs":
            queries.append(PlannedQuery(source, "1d", group_by, _floor(start, 86400)))
            continue
        queries.append(PlannedQuery(source, "1h", group_by, max(_floor(start, 3600), hourly_floor)))
        if start < hourly_floor:
            queries.append(PlannedQuery(source, "1d", group_by, _floor(start, 86400)))
        if source in minute_span:
            span = minute_span[source] + timedelta(hours=1)
            queries.append(PlannedQuery(source, "1m", group_by, _floor(now - span, 60)))
    return queries
