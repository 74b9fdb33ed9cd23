"""Incremental sync of usage and costs into the store.

For each planned query: fetch what the store lacks (a backfill before what it covers) and
re-read the recent span where the API may still change figures (2 days of costs, 2 hours of
usage), then replace those buckets atomically. Queries run concurrently; a failing one is
recorded in its sync mark and reported, the others are stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from budgetguard.collect.line_items import parse_line_item
from budgetguard.openai_admin import AdminAPIError, AdminClient, AuthError, Query
from budgetguard.openai_admin.models import Bucket, CostsResult, UnknownResult
from budgetguard.rules.needs import PlannedQuery
from budgetguard.store import USAGE_DIMENSIONS, USAGE_METRICS, Store

__all__ = ["CollectReport", "Collector", "QueryOutcome", "fetch_ranges"]

REREAD_COSTS = timedelta(days=2)
REREAD_USAGE = timedelta(hours=2)

Progress = Callable[[str, int, int], None]  # (query key, pages done, pages expected)


@dataclass
class QueryOutcome:
    query: PlannedQuery
    ranges: list[tuple[int, int]] = field(default_factory=list)
    buckets: int = 0
    rows: int = 0
    error: AdminAPIError | None = None


@dataclass
class CollectReport:
    outcomes: list[QueryOutcome]
    requests: int
    seconds: float

    @property
    def failed(self) -> list[QueryOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def all_failed(self) -> bool:
        """Every query failed: there is no new data at all."""
        return bool(self.outcomes) and len(self.failed) == len(self.outcomes)

    @property
    def auth_failed(self) -> bool:
        return any(isinstance(o.error, AuthError) for o in self.outcomes)

    def summary(self) -> str:
        buckets = sum(o.buckets for o in self.outcomes)
        text = (
            f"collected {len(self.outcomes)} queries: {buckets:,} buckets in "
            f"{self.requests:,} requests, {self.seconds:.1f}s"
        )
        if self.failed:
            names = ", ".join(o.query.key for o in self.failed)
            text += f"; {len(self.failed)} failed: {names}"
        return text


def fetch_ranges(
    query: PlannedQuery, covered: tuple[int | None, int | None], end: int, reread: timedelta
) -> list[tuple[int, int]]:
    """The ranges to fetch so coverage becomes ``[query.start, end)`` with a fresh tail."""
    width = query.width_seconds
    start = int(query.start.timestamp())
    start -= start % width
    first, last = covered
    if first is None or last is None or last <= start or first >= end:
        return [(start, end)] if start < end else []
    ranges = []
    if start < first:
        ranges.append((start, first))
    tail = max(start, last - int(reread.total_seconds()))
    tail -= tail % width
    if tail < end:
        ranges.append((tail, end))
    return ranges


def _usage_rows(buckets: Sequence[Bucket]) -> list[dict[str, Any]]:
    rows = []
    for bucket in buckets:
        for result in bucket.results:
            if isinstance(result, UnknownResult | CostsResult):
                continue
            row: dict[str, Any] = {"bucket_start": bucket.start_time}
            for name in (*USAGE_DIMENSIONS, *USAGE_METRICS):
                value = getattr(result, name, None)
                if value is not None:
                    row[name] = value
            rows.append(row)
    return rows


def _cost_rows(buckets: Sequence[Bucket]) -> list[dict[str, Any]]:
    rows = []
    for bucket in buckets:
        for result in bucket.results:
            if not isinstance(result, CostsResult) or result.amount is None:
                continue
            item = parse_line_item(result.line_item)
            rows.append(
                {
                    "day_start": bucket.start_time,
                    "project_id": result.project_id,
                    "line_item": result.line_item,
                    "api_key_id": result.api_key_id,
                    "amount": result.amount.value,
                    "currency": result.amount.currency,
                    "quantity": result.quantity,
                    "quantity_unit": result.quantity_unit,
                    "model": item.model,
                    "kind": item.kind,
                    "product": item.product or item.tier,
                }
            )
    return rows


class Collector:
    """Keeps the store in sync with the API for a list of planned queries."""

    def __init__(
        self,
        client: AdminClient,
        store: Store,
        *,
        reread_costs: timedelta = REREAD_COSTS,
        reread_usage: timedelta = REREAD_USAGE,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.store = store
        self.reread_costs = reread_costs
        self.reread_usage = reread_usage
        self.concurrency = concurrency

    def plan_ranges(self, queries: Sequence[PlannedQuery], end: int) -> list[QueryOutcome]:
        outcomes = []
        for query in queries:
            mark = self.store.sync_mark(query.key)
            covered = (None, None) if mark is None else (mark.covered_start, mark.covered_end)
            reread = self.reread_costs if query.endpoint == "costs" else self.reread_usage
            outcomes.append(QueryOutcome(query, fetch_ranges(query, covered, end, reread)))
        return outcomes

    async def collect(
        self, queries: Sequence[PlannedQuery], now: datetime, *, progress: Progress | None = None
    ) -> CollectReport:
        started = time.monotonic()
        requests_before = self.client.stats.requests
        end = int(now.timestamp())
        outcomes = self.plan_ranges(queries, end)
        gate = asyncio.Semaphore(self.concurrency)
        refused: list[AuthError] = []

        async def run(outcome: QueryOutcome) -> None:
            async with gate:
                if refused:  # the key cannot read usage: no point asking again
                    outcome.error = refused[0]
                    return
                await self._sync(outcome, end, progress)
                if isinstance(outcome.error, AuthError):
                    refused.append(outcome.error)

        await asyncio.gather(*(run(o) for o in outcomes))
        return CollectReport(
            outcomes, self.client.stats.requests - requests_before, time.monotonic() - started
        )

    async def _sync(self, outcome: QueryOutcome, end: int, progress: Progress | None) -> None:
        query = outcome.query
        expected = sum(_pages(query, lo, hi) for lo, hi in outcome.ranges)
        done = 0
        if progress is not None:
            progress(query.key, done, expected)
        for lo, hi in outcome.ranges:
            api_query = Query.build(
                query.endpoint,
                start_time=lo,
                end_time=hi,
                bucket_width=query.width,
                group_by=query.group_by,
            )
            buckets: list[Bucket] = []
            try:
                async for page in self.client.pages(api_query):
                    buckets.extend(page.data)
                    done += 1
                    if progress is not None:
                        progress(query.key, done, max(expected, done))
            except AdminAPIError as exc:
                outcome.error = exc
                await asyncio.to_thread(
                    self.store.mark_failure,
                    query.key,
                    query.endpoint,
                    query.width_seconds,
                    str(exc),
                    int(time.time()),
                )
                return
            outcome.buckets += len(buckets)
            if query.endpoint == "costs":
                rows = _cost_rows(buckets)
                await asyncio.to_thread(
                    self.store.replace_costs, query.key, lo, hi, rows, int(time.time())
                )
            else:
                rows = _usage_rows(buckets)
                await asyncio.to_thread(
                    self.store.replace_usage,
                    query.key,
                    query.endpoint,
                    query.width_seconds,
                    lo,
                    hi,
                    rows,
                    int(time.time()),
                )
            outcome.rows += len(rows)
        if progress is not None:
            progress(query.key, expected, expected)


def _pages(query: PlannedQuery, lo: int, hi: int) -> int:
    from budgetguard.openai_admin import endpoint

    width = query.width_seconds
    buckets = -(-(hi - (lo - lo % width)) // width)
    return max(1, -(-buckets // endpoint(query.endpoint).max_limit(query.width)))
