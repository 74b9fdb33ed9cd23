"""Spend data in memory for evaluation: rows of the store, priced once, indexed by time.

Loaded once per check (or once per backtest), then asked for many windows. Each endpoint's
rows come from its finest query that covers a window: minutes, else hours, else days for the
part before the hourly data begins (``intervals`` splits the buckets that straddle a bound,
by the minutes of an hour where the store holds them). What a series covers is its coverage
intervals: the minute series holds scattered hours (those bounds cut), not a span.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from budgetguard.evaluate.cube import UsageCube
from budgetguard.evaluate.pricing import Pricer
from budgetguard.rules.needs import PlannedQuery
from budgetguard.store.columns import USAGE_METRICS, SyncMark
from budgetguard.store.spans import holes

if TYPE_CHECKING:
    from budgetguard.store.reads import Reads

__all__ = ["CostRow", "SpendData"]

_DAY = 86400
_METRICS = USAGE_METRICS


@dataclass(frozen=True, slots=True)
class CostRow:
    start: int
    project: str | None
    api_key: str | None
    model: str | None
    line_item: str | None
    amount: Decimal
    currency: str
    #: The usage endpoint a line item that names no model bills (``images``, ...), if known.
    endpoint: str | None = None
    #: What the line item bills (``input``, ``cached input``, ...) and its product or tier
    #: (``batch``, ``evals``, ...), as the collector read them from its text.
    kind: str | None = None
    product: str | None = None


@dataclass
class _Series:
    """One query's rows sorted by start, and what its sync mark says it covers."""

    query: PlannedQuery
    mark: SyncMark | None
    starts: list[int] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)
    cube: UsageCube | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        assert self.cube is not None
        return self.cube.span(start, end)

    def between(self, start: int, end: int) -> Sequence[Any]:
        """Rows whose bucket starts in ``[start, end)``."""
        return self.rows[bisect_left(self.starts, start) : bisect_left(self.starts, end)]

    @property
    def covered(self) -> tuple[int, int] | None:
        if self.mark is None or self.mark.covered_start is None or self.mark.covered_end is None:
            return None
        return self.mark.covered_start, self.mark.covered_end


def _load_usage(
    series: _Series, store: Reads, pricer: Pricer, start: int | None, end: int | None
) -> None:
    """One usage series from its per-day blocks into a cube (sparse: one path for every
    size), each metric kept in the narrowest type its blocks use."""
    query = series.query
    blocks = store.usage_blocks(query.key, query.width_seconds, start, end)
    kinds: dict[str, list[np.dtype[Any]]] = defaultdict(list)
    for b in blocks:
        for name, dtype in b.dtypes().items():
            kinds[name].append(dtype)
    used = sorted(kinds, key=_METRICS.index)
    n = sum(b.row_count for b in blocks)
    gid = np.empty(n, dtype=np.int32)
    starts = np.empty(n, dtype=np.int64)
    metrics = {m: np.zeros(n, dtype=np.result_type(*kinds[m])) for m in used}
    index: dict[tuple[Any, ...], int] = {}
    at = 0
    local, last = np.empty(0, dtype=np.int32), None
    for block in blocks:  # by day, rows by bucket start: ``starts`` comes out sorted
        if block.groups is not last:  # days with the same groups share one list
            last = block.groups
            local = np.fromiter(
                (index.setdefault(g, len(index)) for g in block.groups),
                dtype=np.int32,
                count=len(block.groups),
            )
        block_gid, block_starts, block_metrics = block.arrays()
        rows = slice(at, at + block.row_count)
        gid[rows] = local[block_gid]
        starts[rows] = block_starts
        for name, values in block_metrics.items():
            metrics[name][rows] = values
        at += block.row_count
    del blocks
    if n > 1 and not bool((starts[1:] >= starts[:-1]).all()):  # blocks keep rows by start;
        order = np.argsort(starts, kind="stable")  # but never rely on it for the cuts below
        gid, starts = gid[order], starts[order]
        metrics = {m: v[order] for m, v in metrics.items()}
    if n and (start is not None or end is not None):
        lo = np.searchsorted(starts, start) if start is not None else 0
        hi = np.searchsorted(starts, end) if end is not None else n
        gid, starts = gid[lo:hi], starts[lo:hi]
        metrics = {m: v[lo:hi] for m, v in metrics.items()}
    if query.spans and len(starts):  # only the hours the plan cuts (older ones may be kept)
        keep = np.zeros(len(starts), dtype=bool)
        for span_lo, span_hi in query.spans:
            keep[np.searchsorted(starts, span_lo) : np.searchsorted(starts, span_hi)] = True
        if not keep.all():
            gid, starts = gid[keep], starts[keep]
            metrics = {m: v[keep] for m, v in metrics.items()}
    columns: dict[str, np.ndarray] = {"starts": starts, "gid": gid}
    del starts, gid
    series.cube = UsageCube.from_columns(
        query.endpoint, query.width_seconds, columns, list(index), metrics, pricer
    )


def _within(
    spans: Sequence[tuple[int, int]], limits: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The parts of ``spans`` inside ``limits`` (both sorted and disjoint)."""
    return [
        (max(a, lo), min(b, hi)) for a, b in spans for lo, hi in limits if max(a, lo) < min(b, hi)
    ]


def _width(series: _Series) -> int:
    return series.query.width_seconds


class SpendData:
    """The rows the plan's queries hold, priced with ``pricer``."""

    def __init__(self, series: dict[str, _Series]) -> None:
        self._series = series
        #: the prices the usage was loaded with (None: built by hand, without any)
        self.pricer: Pricer | None = None
        #: Figures derived from the data once and asked for by many budgets (shares, ...).
        self.memo: dict[tuple[Any, ...], Any] = {}
        #: the store's coverage intervals by query key (``evaluate.coverage`` reads them)
        self.coverage: dict[str, list[tuple[int, int]]] = {}
        self._by_endpoint: dict[str, dict[str, _Series]] = defaultdict(dict)
        for s in series.values():
            self._by_endpoint[s.query.endpoint][s.query.width] = s

    @classmethod
    def load(
        cls,
        store: Reads,
        queries: Iterable[PlannedQuery],
        pricer: Pricer,
        *,
        start: int | None = None,
        end: int | None = None,
    ) -> SpendData:
        marks = {m.query_key: m for m in store.sync_marks()}
        series: dict[str, _Series] = {}
        queries_ = list(queries)
        for query in queries_:
            s = _Series(query, marks.get(query.key))
            if query.endpoint == "costs":
                for raw in store.cost_rows(query_keys=[query.key], start=start, end=end):
                    s.rows.append(
                        CostRow(
                            raw["day_start"],
                            raw["project_id"],
                            raw["api_key_id"],
                            raw["model"],
                            raw["line_item"],
                            Decimal(raw["amount"]),
                            raw["currency"],
                            kind=raw.get("kind"),
                            product=raw.get("product"),
                        )
                    )
            else:
                _load_usage(s, store, pricer, start, end)
            if s.cube is None:
                s.starts = [r.start for r in s.rows]
            series[query.key] = s
        data = cls(series)
        data.pricer = pricer
        data.coverage = store.coverage()
        for query in queries_:
            if query.spans:  # the rows loaded are the spans' only: so is what they cover
                held = data.coverage.get(query.key, [])
                data.coverage[query.key] = _within(held, query.spans)
        from budgetguard.evaluate.attribution import attribute

        for s in series.values():  # usage is loaded: model-less line items get their models
            if s.query.endpoint == "costs":
                s.rows = attribute(data, s.rows)
                s.starts = [r.start for r in s.rows]
        return data

    # -- what the data covers -------------------------------------------------------------------

    def status(self, sources: Iterable[str], start: int, now: int, stale_after: int) -> str | None:
        """None when every source covers ``[start, now)`` and is fresh; else the reason. The
        minute series is no source of its own: it refines hours (where it holds them)."""
        for source in sorted(sources):
            widths = {w: s for w, s in self._by_endpoint.get(source, {}).items() if w != "1m"}
            if not widths:
                return f"{source}: never collected"
            for s in widths.values():
                if s.mark is not None and s.mark.last_error:
                    return f"{source}: the last collection failed ({s.mark.last_error[:120]})"
            covered = [s.covered for s in widths.values() if s.covered is not None]
            if not covered:
                return f"{source}: never collected"
            if min(c[0] for c in covered) > start:
                return f"{source}: no data from the window's start (run collect --since)"
            latest = max(c[1] for c in covered)
            if now - latest > stale_after:
                hours = (now - latest) / 3600
                return f"{source}: data is {hours:.1f}h old"
        return None

    def covered(self, endpoint: str) -> tuple[int, int] | None:
        """``[start, end)`` the stored data of ``endpoint`` covers (its widest series)."""
        spans = [s.covered for s in self._by_endpoint.get(endpoint, {}).values() if s.covered]
        return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None

    # -- rows of a window -----------------------------------------------------------------------

    def holds(self, series: _Series, start: int, end: int) -> bool:
        """``series`` covers ``[start, end)`` from its bucket's start, up to where its
        endpoint's data ends (the current bucket holds data up to its fetch)."""
        spans = self.coverage.get(series.query.key, [])
        lo = start - start % _width(series)
        hi = min(end, self.latest(series.query.endpoint))
        return bool(spans) and lo < hi and not holes(spans, lo, hi)

    def minutes_hold(self, endpoint: str, start: int, end: int) -> bool:
        """The minute series of ``endpoint`` covers ``[start, end)``."""
        minutes = self._by_endpoint.get(endpoint, {}).get("1m")
        return minutes is not None and self.holds(minutes, start, end)

    def usage_parts(self, endpoint: str, start: int, end: int) -> list[tuple[_Series, int, int]]:
        """The series and sub-ranges that hold ``endpoint``'s buckets starting in
        ``[start, end)``: the finest that covers it, else days then hours."""
        widths = self._by_endpoint.get(endpoint, {})
        minutes = widths.get("1m")
        if minutes is not None and self.holds(minutes, start, end):
            return [(minutes, start, end)]
        s = widths.get("1h")
        if s is not None and s.covered is not None and s.covered[0] <= start:
            return [(s, start, end)]
        hourly, daily = widths.get("1h"), widths.get("1d")
        if hourly is None or hourly.covered is None:
            return [(daily, start, end)] if daily is not None else []
        boundary = -(-hourly.covered[0] // _DAY) * _DAY
        parts = [(daily, start, boundary)] if daily is not None and start < boundary else []
        return [*parts, (hourly, max(start, boundary), end)]

    def finer(
        self, endpoint: str, coarse: _Series, bucket: int, start: int, end: int
    ) -> _Series | None:
        """A series of ``endpoint`` finer than ``coarse`` that covers the whole of
        ``coarse``'s ``bucket`` (both sides of any cut are split by the same data, so parts
        add up) and agrees with it: the finer buckets add up to it where both hold it whole
        (an API that keeps no minutes that old answers with empty ones, which must not read
        as a bucket with nothing in it)."""
        width = _width(coarse)
        for s in sorted(self._by_endpoint.get(endpoint, {}).values(), key=_width):
            if _width(s) >= width or not self.holds(s, bucket, bucket + width):
                continue
            key = ("agrees", s.query.key, coarse.query.key, bucket)
            agrees = self.memo.get(key)
            if agrees is None:
                agrees = self._agrees(s, coarse, bucket)
                self.memo[key] = agrees
            if agrees:
                return s
        return None

    def _agrees(self, fine: _Series, coarse: _Series, bucket: int) -> bool:
        """Every metric of ``fine`` over ``coarse``'s ``bucket`` equals ``coarse``'s, where
        both hold the bucket whole; True where either holds only part of it."""
        end = bucket + _width(coarse)
        if not (self.holds(fine, bucket, end) and self.holds(coarse, bucket, end)):
            return True
        if min(self.latest_of(fine), self.latest_of(coarse)) < end:
            return True  # the current bucket: still filling in
        assert fine.cube is not None and coarse.cube is not None
        return fine.cube.totals(*fine.span(bucket, end)) == coarse.cube.totals(
            *coarse.span(bucket, end)
        )

    def latest_of(self, series: _Series) -> int:
        """Up to when ``series``' data was fetched (0 if never)."""
        spans = self.coverage.get(series.query.key, [])
        return spans[-1][1] if spans else 0

    def latest(self, endpoint: str) -> int:
        """Up to when ``endpoint``'s data was fetched (0 if never)."""
        spans = [s.covered[1] for s in self._by_endpoint.get(endpoint, {}).values() if s.covered]
        return max(spans, default=0)

    def daily_costs(self) -> _Series | None:
        """The costs query's series (its coverage and sync mark), if the plan has one."""
        return self._by_endpoint.get("costs", {}).get("1d")

    def endpoints(self) -> list[str]:
        """The usage endpoints the data holds."""
        return sorted(e for e in self._by_endpoint if e != "costs")

    def costs(self, start: int, end: int) -> list[CostRow]:
        s = self._by_endpoint.get("costs", {}).get("1d")
        return [] if s is None else list(s.between(start, end))
