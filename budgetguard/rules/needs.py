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
- ``1m`` buckets of every hour a bound cuts (a window that starts at :37, a local midnight
  at a half- or quarter-hour offset, a replayed instant): an hour is split by its minutes,
  never evenly, because real traffic is bursty inside the hour. Those hours are few and
  scattered, so the minute query names them (``PlannedQuery.spans``): one span per UTC day,
  from its first cut hour to its last, which one request of up to 1440 buckets fetches.
- A ``now`` in the past (a ``--now``: CI, backtests) is a bound like a window's start: the
  hour it cuts is split by its minutes and the UTC costs day it cuts by its usage (the
  collector fetches on to that day's end). At the real clock the API itself cuts the current
  bucket at the request: nothing more is fetched.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from budgetguard.rules.model import Budget, Rules
from budgetguard.rules.periods import last_complete_period, period_start
from budgetguard.rules.vocabulary import ENDPOINTS, METRIC_ENDPOINTS

__all__ = [
    "ATTRIBUTED",
    "GAUGES",
    "HOURLY_DAYS",
    "PlannedQuery",
    "bounds",
    "cut_hours",
    "endpoints_of",
    "local_midnights",
    "look_back",
    "minute_spans",
    "needed_from",
    "plan_queries",
]

HOURLY_DAYS = 35
FORECAST_HISTORY = timedelta(days=8)
_WEEK = timedelta(days=7)
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
    """One query to keep in sync: ``[start, now)`` at ``width`` grouped by ``group_by``, or
    only the ``spans`` (Unix ``[start, end)`` pairs, sorted and disjoint) when it names any:
    the minute query fetches the hours that bounds cut, not every minute since ``start``."""

    endpoint: str
    width: str
    group_by: tuple[str, ...]
    start: datetime
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def key(self) -> str:
        """Names the stored data of this query; a new grouping starts a new series."""
        return f"{self.endpoint}:{self.width}:{','.join(self.group_by)}"

    @property
    def width_seconds(self) -> int:
        return _WIDTH_SECONDS[self.width]


#: Usage endpoints whose figure is a level (bytes stored), not a flow: their minutes add
#: nothing to a split.
GAUGES = frozenset({"vector_stores"})
#: The usage endpoints whose line items name no model but bill models (images, web
#: search calls): a budget by model on costs attributes them by this usage.
ATTRIBUTED = frozenset({"images", "web_search_calls"})


def endpoints_of(budget: Budget, *, attribution: bool = False) -> set[str]:
    """The data sources a budget reads: usage endpoint names and/or ``costs``; with
    ``attribution``, also the usage that attributes its model-less costs to models (what
    its figure needs whole: a hole there is a hole in the figure, never $0)."""
    found = set(_sources(budget.match.endpoint or ("*",), budget.metric, budget.cost_source))
    if attribution and "costs" in found and (budget.match.model or "model" in budget.each):
        found |= ATTRIBUTED
    return found


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
    7 complete UTC days a forecast averages, an anomaly window and its baseline (and, when
    seasonal, each previous week's slot), each burn-rate pair's windows."""
    starts = []
    if budget.window_delta is not None:
        starts.append(now - budget.window_delta)
    if budget.period is not None:
        starts.append(period_start(budget.period, now, timezone))
        if budget.forecasts:
            starts.append(_floor(now, 86400) - FORECAST_HISTORY)
    if budget.anomaly_window_delta is not None and budget.baseline_delta is not None:
        window = budget.anomaly_window_delta
        starts.append(now - window)
        starts.append(now - window - budget.baseline_delta)
        if budget.anomaly is not None and budget.anomaly.seasonal:  # each week's slot
            weeks = max(1, budget.baseline_delta // _WEEK)
            for k in range(1, weeks + 1):
                starts += [now - k * _WEEK - window, now - k * _WEEK]
    for pair in budget.burn_rate:  # both windows of every pair, whose minutes they cut
        starts += [now - pair.long_delta, now - pair.short_delta]
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


def cut_hours(moments: Iterable[datetime]) -> set[int]:
    """The starts of the hours (Unix seconds) that ``moments`` fall inside of, not on."""
    stamps = (int(m.timestamp()) for m in moments)
    return {s - s % 3600 for s in stamps if s % 3600}


def local_midnights(first: datetime, last: datetime, timezone: str) -> list[datetime]:
    """Every local midnight in ``[first, last]``, in UTC: the bounds of the digest's days."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    day = first.astimezone(zone).date()
    out: list[datetime] = []
    while True:
        moment = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
        if moment > last:
            return out
        if moment >= first:
            out.append(moment)
        day += timedelta(days=1)


def minute_spans(
    hours: Iterable[int], tail: tuple[int, int] | None, now: datetime
) -> tuple[tuple[int, int], ...]:
    """The minute query's spans: the cut ``hours`` of each UTC day as one span (from the
    day's first to its last: one request), and ``tail`` (the recent minutes a window under an
    hour reads); none that starts after ``now``. A span is whole hours: what the store holds
    of them may reach past ``now`` (a replay of an earlier instant), and the collector
    never fetches past the clock."""
    end = int(now.timestamp())
    spans: list[tuple[int, int]] = []
    by_day: dict[int, list[int]] = {}
    for hour in hours:
        if hour < end:
            by_day.setdefault(hour - hour % 86400, []).append(hour)
    spans = [(min(h), max(h) + 3600) for _, h in sorted(by_day.items())]
    if tail is not None and tail[0] < end:
        spans.append(tail)
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


@dataclass
class _Needs:
    """What the budgets need of each source, gathered budget by budget, then turned into
    queries."""

    now: datetime
    instants: list[datetime]
    #: each source's earliest instant read
    earliest: dict[str, datetime] = field(default_factory=dict)
    #: hourly usage from here: each UTC day a bound cuts, to split its costs by usage
    hourly_from: dict[str, datetime] = field(default_factory=dict)
    #: the longest window under an hour: its minutes are read
    minute_span: dict[str, timedelta] = field(default_factory=dict)
    #: the hours a bound cuts: split by their minutes
    minute_hours: dict[str, set[int]] = field(default_factory=dict)
    by_user: set[str] = field(default_factory=set)
    by_key: set[str] = field(default_factory=set)

    def cut(self, sources: Iterable[str], moments: Sequence[datetime]) -> None:
        """``moments`` bound what ``sources`` are summed over: the days and hours they cut
        are split by their hours and minutes."""
        day = _straddled(moments)
        hours = cut_hours(moments)
        for source in sources:
            if day is not None:
                self.hourly_from[source] = min(self.hourly_from.get(source, day), day)
            if hours and source not in GAUGES:  # a gauge has no shape inside its hour
                self.minute_hours.setdefault(source, set()).update(hours)

    def budget(self, budget: Budget, timezone: str) -> None:
        # a backtest's first instants look further back than its last one
        start = min(look_back(budget, t, timezone) for t in (self.now, min(self.instants)))
        shortest = budget.shortest_window
        used = endpoints_of(budget, attribution=True)
        cuts = [m for t in self.instants for m in bounds(budget, t, timezone)]
        cuts += self.instants[1:]  # a replayed instant cuts its hour
        # a costs day a bound cuts is split by every endpoint's usage
        self.cut(ENDPOINTS if "costs" in used else used - {"costs"}, cuts)
        for source in used:
            self.earliest[source] = min(self.earliest.get(source, start), start)
            if budget.match.user is not None or "user" in budget.each:
                self.by_user.add(source)
            if budget.match.api_key is not None or "api_key" in budget.each:
                self.by_key.add(source)
            if shortest is not None and shortest < timedelta(hours=1):
                self.minute_span[source] = max(self.minute_span.get(source, shortest), shortest)

    def digest(self, period: str, timezone: str) -> None:
        """The digest compares the last complete period with the one before, from costs,
        by local days: each one that is not a UTC day is split by usage."""
        before, _, end = last_complete_period(period, self.now, timezone)
        self.earliest["costs"] = min(self.earliest.get("costs", before), before)
        self.cut(ENDPOINTS, local_midnights(before, end, timezone))

    def queries(self, source: str, since: datetime | None) -> list[PlannedQuery]:
        group_by = _group_by(source, self.by_user, self.by_key)
        start = since if since is not None else self.earliest.get(source)
        out: list[PlannedQuery] = []
        if start is None:  # only to split costs days: hours, from the first cut
            hourly = self.hourly_from[source]
            out.append(PlannedQuery(source, "1h", group_by, min(hourly, since or hourly)))
        elif source == "costs":
            return [PlannedQuery(source, "1d", group_by, _floor(start, 86400))]
        else:
            floor = _floor(self.now, 86400) - timedelta(days=HOURLY_DAYS)
            hourly = max(_floor(start, 86400), floor)
            hourly = min(hourly, self.hourly_from.get(source, hourly))
            out.append(PlannedQuery(source, "1h", group_by, hourly))
            if start < hourly:
                out.append(PlannedQuery(source, "1d", group_by, _floor(start, 86400)))
        tail = None
        if source in self.minute_span:  # a window under an hour reads minutes: the last ones
            begin = _floor(self.now - self.minute_span[source] - timedelta(hours=1), 3600)
            tail = (int(begin.timestamp()), int(self.now.timestamp()))
        spans = minute_spans(self.minute_hours.get(source, ()), tail, max(self.instants))
        if spans:
            first = datetime.fromtimestamp(spans[0][0], UTC)
            out.append(PlannedQuery(source, "1m", group_by, first, spans))
        return out


def plan_queries(
    rules: Rules,
    now: datetime,
    *,
    since: datetime | None = None,
    budgets: Iterable[Budget] | None = None,
    replayed: Iterable[datetime] = (),
    past: bool = False,
) -> list[PlannedQuery]:
    """The queries that keep the store ready to evaluate ``rules`` at ``now`` (and at each
    ``replayed`` instant of a backtest, whose minutes the hours they cut need too). A
    ``past`` ``now`` (earlier than the clock: a ``--now``) cuts its hour and day the same."""
    needs = _Needs(now, [now, *replayed, *([now] if past else [])])
    for budget in rules.budgets if budgets is None else budgets:
        if budget.enabled:
            needs.budget(budget, rules.timezone)
    if rules.digest is not None and budgets is None:
        needs.digest(rules.digest.period, rules.timezone)
    sources = sorted(set(needs.earliest) | set(needs.hourly_from))
    return [q for source in sources for q in needs.queries(source, since)]


def _group_by(source: str, by_user: set[str], by_key: set[str]) -> tuple[str, ...]:
    groups = ["project_id", *_BASE_GROUPS[source]]
    if source in by_user and source in _HAS_USER:
        groups.append("user_id")
    if source in by_key and source in _HAS_KEY:
        groups.append("api_key_id")
    return tuple(groups)
