"""Incremental sync of usage and costs into the store.

For each planned query: fetch the holes in what the store covers (its coverage intervals, so a
gap between two collections is filled whatever ``--since`` said) and re-read the recent span
where the API may still change figures (2 days of costs, 2 hours of usage), then replace those
buckets atomically. Queries run concurrently; a failing one is recorded in its sync mark and
reported, the others are stored. Time is bounded: the client bounds each request and each
query's pages, and a collection has a deadline past which unfinished queries are failed. An
auth refusal fails every unfinished query at once. Nothing is covered past the real clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from budgetguard.providers.openai import (
    AdminAPIError,
    AdminClient,
    AuthError,
    PageCheck,
    Query,
    UnavailableError,
)
from budgetguard.providers.openai.line_items import parse_line_item
from budgetguard.providers.openai.models import Bucket, CostsResult
from budgetguard.providers.openai.rows import RowPage
from budgetguard.rules.needs import PlannedQuery
from budgetguard.store import USAGE_METRICS, Store
from budgetguard.store.coverage import Interval, holes
from budgetguard.store.coverage import merge as merge_intervals
from budgetguard.store.rollups import ROLLUP_DIMENSIONS, RollupBlock, encode_arrays, merge

__all__ = ["CollectReport", "Collector", "QueryOutcome", "fetch_ranges", "widen"]

_DAY = 86400
REREAD_COSTS = timedelta(days=2)
REREAD_USAGE = timedelta(hours=2)
#: Default deadline of one collection (the ``collect_deadline`` setting).
COLLECT_DEADLINE = 120.0

Progress = Callable[[str, int, int], None]  # (query key, pages done, pages expected)


@dataclass
class QueryOutcome:
    query: PlannedQuery
    ranges: list[tuple[int, int]] = field(default_factory=list)
    buckets: int = 0
    rows: int = 0
    error: AdminAPIError | None = None
    done: bool = False


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
    def auth_error(self) -> AuthError | None:
        """The refusal that failed the collection, if the API refused the key."""
        return next((o.error for o in self.outcomes if isinstance(o.error, AuthError)), None)

    @property
    def auth_failed(self) -> bool:
        return self.auth_error is not None

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
    query: PlannedQuery, covered: Sequence[Interval], end: int, reread: timedelta
) -> list[tuple[int, int]]:
    """The ranges to fetch so ``[query.start, end)`` (or each of the query's ``spans``) is
    covered with a fresh tail: every hole in ``covered`` (widened to whole buckets) and the
    re-read span before ``end``. A minute query's ranges of one UTC day are fetched as one
    (one request holds a day's 1440 buckets)."""
    width = query.width_seconds

    def whole(lo: int, hi: int) -> Interval:
        return lo - lo % width, min(end, -(-hi // width) * width)

    recent = None  # the API may still change what lies after this
    if covered:  # a span's hours are re-read only while they are recent
        recent = (end if query.spans else min(end, covered[-1][1])) - int(reread.total_seconds())
    wanted: list[Interval] = []
    for first, last in query.spans or ((int(query.start.timestamp()), end),):
        lo, hi = first - first % width, min(last, end)
        if lo >= hi:
            continue
        wanted += [whole(a, b) for a, b in holes(covered, lo, hi)]
        if recent is not None and covered[-1][1] > lo and max(lo, recent) < hi:
            wanted.append(whole(max(lo, recent), hi))
    ranges = merge_intervals(wanted)
    if not query.spans:
        return ranges
    days: dict[int, Interval] = {}
    for lo, hi in ranges:
        day = lo - lo % _DAY
        first, last = days.get(day, (lo, hi))
        days[day] = (min(first, lo), max(last, hi))
    return list(days.values())


def widen(queries: Sequence[PlannedQuery], needed: Sequence[PlannedQuery]) -> list[PlannedQuery]:
    """``queries`` (as ``--since`` planned them) reaching back at least as far as ``needed``
    (what the budgets need), so a hole there is filled whatever ``--since`` said."""
    earliest = {q.key: q for q in needed}
    out = [
        replace(q, start=min(q.start, earliest[q.key].start)) if q.key in earliest else q
        for q in queries
    ]
    keys = {q.key for q in queries}
    return out + [q for q in needed if q.key not in keys]


def _cost_rows(buckets: Sequence[Bucket]) -> list[dict[str, Any]]:
    rows = []
    for bucket in buckets:
        for result in bucket.results:
            if not isinstance(result, CostsResult):
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
    """Keeps the store in sync with the API for a list of planned queries.

    ``deadline`` bounds a whole collection (seconds); ``concurrency`` the queries in flight
    at once (the ``max_in_flight`` setting: a backfill's every query by default, each one
    page at a time); the client's clock is the real clock, which coverage never passes.
    ``best_effort``: a failed query leaves the store as it was (its sync mark too), and
    settled costs days are not read again (the collection proper does that).
    """

    def __init__(
        self,
        client: AdminClient,
        store: Store,
        *,
        reread_costs: timedelta = REREAD_COSTS,
        reread_usage: timedelta = REREAD_USAGE,
        concurrency: int = 24,
        deadline: float = COLLECT_DEADLINE,
        best_effort: bool = False,
    ) -> None:
        self.client = client
        self.store = store
        self.reread_costs = reread_costs
        self.reread_usage = reread_usage
        self.concurrency = concurrency
        self.deadline = deadline
        #: a failure is reported, never recorded in the sync marks (what is stored stands)
        self.best_effort = best_effort
        self._writes: set[asyncio.Future[None]] = set()

    async def _write(self, fn: Callable[..., None], *args: Any) -> None:
        """A store write in a thread, shielded: a query cancelled meanwhile (the deadline, a
        refused key) lets it finish, and ``collect`` waits for it before recording failures,
        so two writers never race on one query's mark."""
        future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)
        await asyncio.shield(future)

    def plan_ranges(self, queries: Sequence[PlannedQuery], end: int) -> list[QueryOutcome]:
        outcomes = []
        spans = self.store.coverage()
        hourly = {(q.endpoint, q.group_by): q.start for q in queries if q.width == "1h"}
        for query in queries:
            reread = self.reread_costs if query.endpoint == "costs" else self.reread_usage
            until = end
            if query.width == "1d" and (query.endpoint, query.group_by) in hourly:
                # evaluation reads daily usage only before its hourly data begins: those
                # days are settled, and a steady tick never re-reads them
                begins = int(hourly[query.endpoint, query.group_by].timestamp())
                until, reread = min(end, -(-begins // _DAY) * _DAY), timedelta(0)
            covered = spans.get(query.key, [])
            ranges = fetch_ranges(query, covered, until, reread)
            if query.endpoint == "costs" and not self.best_effort:
                # settled days read again, so a bad answer heals (by the collection proper)
                ranges = merge_intervals([*ranges, *self._settled_days_due(query, until)])
            outcomes.append(QueryOutcome(query, ranges))
        return outcomes

    def _settled_days_due(self, query: PlannedQuery, end: int) -> list[Interval]:
        """The settled costs days to read again (``store.cost_reads``): the last 7 once a
        UTC day, and any that changed when last read; they merge with the re-read tail."""
        tail = end - int(self.reread_costs.total_seconds())
        first = int(query.start.timestamp())
        due = self.store.cost_days_due(query.key, end, tail - tail % _DAY)
        return [(day, day + _DAY) for day in due if day >= first - first % _DAY]

    def _settle_idle(self, outcomes: Sequence[QueryOutcome], at: int) -> None:
        """A query with nothing to fetch is done before the run starts: its data is whole,
        so a run that fails elsewhere (a refused key, the deadline) does not fail it, and a
        failure an earlier run recorded for it is over (else it stayed ``unknown`` until
        the next UTC midnight gave it a range to fetch)."""
        failed = {m.query_key for m in self.store.sync_marks() if m.last_error}
        for outcome in outcomes:
            if outcome.ranges:
                continue
            outcome.done = True
            if outcome.query.key in failed:
                self.store.clear_failure(outcome.query.key, at)

    async def collect(
        self,
        queries: Sequence[PlannedQuery],
        now: datetime,
        *,
        progress: Progress | None = None,
        through: datetime | None = None,
    ) -> CollectReport:
        """Fetch ``queries`` up to ``now``, or on to ``through`` (a ``now`` in the past: the
        rest of the UTC day it cuts, whose costs are split by its usage; whole buckets, so
        none is stored cut at ``now`` as if whole); never past the client's clock."""
        started = time.monotonic()
        requests_before = self.client.stats.requests
        upto = now if through is None else max(now, through)
        end = min(int(upto.timestamp()), int(self.client.clock()))  # never past the clock
        outcomes = self.plan_ranges(queries, end)
        self._settle_idle(outcomes, int(self.client.clock()))
        gate = asyncio.Semaphore(self.concurrency)
        refused: list[AuthError] = []
        tasks: list[asyncio.Future[None]] = []

        async def run(outcome: QueryOutcome) -> None:
            async with gate:
                await self._sync(outcome, progress)
                if isinstance(outcome.error, AuthError) and not refused:
                    refused.append(outcome.error)  # the key cannot read usage: stop asking
                    for task in tasks:
                        task.cancel()

        tasks.extend(asyncio.ensure_future(run(o)) for o in outcomes)
        try:
            async with asyncio.timeout(self.deadline):
                results = await asyncio.gather(*tasks, return_exceptions=True)
            # a store that cannot be written is the caller's to report, not a failed query
            for result in results:
                if isinstance(result, Exception):
                    raise result
        except TimeoutError:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*self._writes, return_exceptions=True)
        self._fail_unfinished(outcomes, refused[0] if refused else None)
        return CollectReport(
            outcomes, self.client.stats.requests - requests_before, time.monotonic() - started
        )

    def _fail_unfinished(self, outcomes: Sequence[QueryOutcome], refused: AuthError | None) -> None:
        """Record every query that did not finish (a refused key, the deadline) as failed."""
        for outcome in outcomes:
            if outcome.done and outcome.error is None:
                continue
            query = outcome.query
            if outcome.error is None:
                last = self.client.last_failure.get(query.endpoint)
                outcome.error = refused or UnavailableError(
                    f"{query.endpoint}: not finished within the collection deadline "
                    f"({self.deadline:g}s)" + (f"; last failure: {last}" if last else ""),
                    endpoint=query.endpoint,
                )
            if not outcome.done and not self.best_effort:
                self.store.mark_failure(
                    query.key,
                    query.endpoint,
                    query.width_seconds,
                    str(outcome.error),
                    int(self.client.clock()),
                )
                outcome.done = True

    async def _sync(self, outcome: QueryOutcome, progress: Progress | None) -> None:
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
            check = PageCheck(api_query, self.client.clock)
            held = _Held()
            try:
                if query.endpoint == "costs":
                    async for page in self.client.pages(api_query, check):
                        held.add_costs(page.data)
                        done += 1
                        if progress is not None:
                            progress(query.key, done, max(expected, done))
                else:
                    pages = self.client.row_pages(
                        api_query, check, ROLLUP_DIMENSIONS, USAGE_METRICS, _PageBlocks
                    )
                    async for blocks in pages:
                        held.add_page(blocks)
                        done += 1
                        if progress is not None:
                            progress(query.key, done, max(expected, done))
            except AdminAPIError as exc:
                outcome.error = exc
                if self.best_effort:
                    outcome.done = True
                    return
                await self._write(
                    self.store.mark_failure,
                    query.key,
                    query.endpoint,
                    query.width_seconds,
                    str(exc),
                    int(self.client.clock()),
                )
                outcome.done = True
                return
            assert check.covered is not None
            await self._store(outcome, held, check.covered)
        outcome.done = True
        if progress is not None:
            progress(query.key, expected, expected)

    async def _store(self, outcome: QueryOutcome, held: _Held, covered: Interval) -> None:
        """Replace the covered range's buckets and add it to coverage, in one transaction."""
        query, (lo, hi) = outcome.query, covered
        fetched_at = int(self.client.clock())
        outcome.buckets += held.buckets
        outcome.rows += held.rows
        if query.endpoint == "costs":
            await self._write(
                self.store.replace_costs, query.key, lo, hi, held.cost_rows, fetched_at
            )
        else:
            await self._write(
                self.store.replace_usage_blocks,
                query.key,
                query.endpoint,
                query.width_seconds,
                lo,
                hi,
                held.blocks,
                fetched_at,
            )


class _Held:
    """What one range's pages hold until the range is whole: cost rows, or usage as per-day
    blocks encoded from each page's rows as it arrives (a page's rows are dropped once
    encoded, so memory is a page plus compressed blocks, never the range's rows)."""

    def __init__(self) -> None:
        self.buckets = 0
        self.rows = 0
        self.cost_rows: list[dict[str, Any]] = []
        #: per day, its block's record (groups as JSON: a day's 12,000 group tuples would
        #: be MBs each, held for every day of the range)
        self.blocks: dict[int, dict[str, Any]] = {}

    def add_costs(self, buckets: Sequence[Bucket]) -> None:
        self.buckets += len(buckets)
        rows = _cost_rows(buckets)
        self.rows += len(rows)
        self.cost_rows.extend(rows)

    def add_page(self, page: _PageBlocks) -> None:
        """A whole, checked page's blocks (a day it shares with the page before merges)."""
        page.finish()
        self.buckets += page.buckets
        self.rows += page.rows
        for day, record in page.blocks.items():
            held = self.blocks.get(day)
            self.blocks[day] = record if held is None else _merged(day, held, record)


#: A day's rows are encoded into a block at most this many at a time.
FLUSH_ROWS = 262_144


class _PageBlocks:
    """One page's rows as per-day blocks, built while the page streams in (``row_pages``'
    sink): each batch of rows is added to its day's columns, which are encoded when the day
    ends or reaches ``FLUSH_ROWS`` rows; so what a page holds uncompressed is bounded by a
    constant number of rows, whatever the number of groups."""

    def __init__(self) -> None:
        self.buckets = 0
        self.rows = 0
        self.blocks: dict[int, dict[str, Any]] = {}
        self._day: int | None = None
        self._parts: list[tuple[list[tuple[Any, ...]], Any, Any, dict[str, Any]]] = []
        self._pending = 0

    def add(self, rows: RowPage) -> None:
        self.buckets += len(rows.bounds)
        self.rows += rows.size
        days = groupby(range(len(rows.bounds)), key=lambda b: rows.bounds[b][0] // _DAY)
        for day, buckets in days:
            first = next(buckets)
            last = max(buckets, default=first)
            lo, hi = rows.offsets[first], rows.offsets[last + 1]
            if lo == hi:
                continue
            if self._day is not None and self._day != day * _DAY:
                self._flush()
            self._day = day * _DAY
            metrics = {name: values[lo:hi] for name, values in rows.metrics.items()}
            self._parts.append((rows.groups, rows.gid[lo:hi], rows.starts[lo:hi], metrics))
            self._pending += hi - lo
            if self._pending >= FLUSH_ROWS:
                self._flush()

    def _flush(self) -> None:
        import numpy as np

        if not self._parts or self._day is None:
            return
        day, parts = self._day, self._parts
        self._parts, self._pending = [], 0
        index: dict[tuple[Any, ...], int] = {}
        gids = []
        for groups, gid, _, _ in parts:
            remap = np.array([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)
            gids.append(remap[gid])
        names = {m for part in parts for m in part[3]}
        metrics = {
            m: np.concatenate(
                [p[3][m] if m in p[3] else np.zeros(len(p[1]), np.int64) for p in parts]
            )
            for m in names
        }
        starts = np.concatenate([p[2] for p in parts])
        record = encode_arrays(day, list(index), np.concatenate(gids), starts, metrics)
        held = self.blocks.get(day)  # the day passed FLUSH_ROWS
        self.blocks[day] = record if held is None else _merged(day, held, record)

    def finish(self) -> None:
        self._flush()


def _merged(day: int, first: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """The record of a day's rows ``first``, then ``then``'s (later buckets)."""
    merged = merge(day, RollupBlock.of(first), 0, 0, RollupBlock.of(then))
    assert merged is not None
    return merged


def _pages(query: PlannedQuery, lo: int, hi: int) -> int:
    from budgetguard.providers.openai import endpoint

    width = query.width_seconds
    buckets = -(-(hi - (lo - lo % width)) // width)
    return max(1, -(-buckets // endpoint(query.endpoint).max_limit(query.width)))
