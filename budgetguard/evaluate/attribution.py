"""Costs x usage: which model a line item that names none belongs to, and how much of a
costs day lies inside an interval.

The costs endpoint is daily and has no model field. A line item that names no model
("Image models", "web search tool calls") is attributed to models in proportion to the same
day's priced usage of the endpoint it bills, within its project. A costs day that straddles
an interval bound counts in proportion to the priced usage of the same scope (project, and
model or billed endpoint) on either side, by time only where no usage covers the day.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

from budgetguard.evaluate.intervals import pieces
from budgetguard.rules.model import Budget

if TYPE_CHECKING:
    from budgetguard.evaluate.data import CostRow, SpendData

__all__ = [
    "attribute",
    "billed_endpoint",
    "cost_extent",
    "cost_share",
    "scope_estimates",
    "split_by_time",
]

_DAY = 86400
#: A fetch this soon after the end asked is taken as ending there: a collection's own
#: minutes are no --now in the past (and a --now under an hour back over-counts at most
#: that hour's share, never under-counts).
_COLLECTING = 3600
_ZERO = Decimal(0)
_NONE = "(none)"
#: Usage estimates per (project, model): the scope of a costs line.
_SCOPE = Budget(name="scope", each=("project", "model"))
#: Words of a line item that names no model -> the usage endpoint it bills.
_BILLS = (
    ("image", "images"),
    ("web search", "web_search_calls"),
    ("file search", "file_search_calls"),
    ("code interpreter", "code_interpreter_sessions"),
    ("vector stor", "vector_stores"),
)
_BILLED = frozenset(endpoint for _, endpoint in _BILLS)
#: Endpoints with a model dimension: their line items can be attributed to models.
_BY_MODEL = frozenset({"images", "web_search_calls"})


def billed_endpoint(line_item: str | None) -> str | None:
    """The usage endpoint a line item that names no model bills, if it is one we know."""
    text = (line_item or "").lower()
    return next((endpoint for word, endpoint in _BILLS if word in text), None)


def scope_estimates(
    data: SpendData, endpoint: str, start: int, end: int
) -> dict[tuple[str, str], Decimal]:
    """Estimated USD of ``endpoint`` per (project, model) in ``[start, end)`` (memoised;
    ``split_by_time`` says whether a bucket in it was split by time)."""
    key = ("scope", endpoint, start, end)
    found = data.memo.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    out: dict[tuple[str, str], Decimal] = defaultdict(lambda: _ZERO)
    by_time = False
    for piece in pieces(data, endpoint, start, end):
        by_time |= piece.by_time
        series = piece.series
        assert series.cube is not None  # every usage series is a cube
        if not series.cube.groups:
            continue
        h0, h1 = series.span(piece.lo, piece.hi)
        if h0 < h1:
            amounts, _, _ = series.cube.amounts(_SCOPE, h0, h1)
            for (project, model), amount in amounts.items():
                out[(project, model)] += piece.scale(amount)
    data.memo[key] = dict(out)
    data.memo[("scope-by-time", endpoint, start, end)] = by_time
    return data.memo[key]  # type: ignore[no-any-return]


def split_by_time(data: SpendData, endpoint: str, start: int, end: int) -> bool:
    """Whether ``scope_estimates`` of ``[start, end)`` split a bucket by time."""
    scope_estimates(data, endpoint, start, end)
    return bool(data.memo[("scope-by-time", endpoint, start, end)])


def _endpoints(data: SpendData, row: CostRow) -> list[str]:
    # a line that names a model bills tokens, characters or seconds, never what the
    # model-less line items bill (images, search calls, sessions, storage)
    return [row.endpoint] if row.endpoint else [e for e in data.endpoints() if e not in _BILLED]


def _usage_of(data: SpendData, row: CostRow, start: int, end: int, by_model: bool) -> Decimal:
    project = row.project or _NONE
    total = _ZERO
    for endpoint in _endpoints(data, row):
        for (p, m), amount in scope_estimates(data, endpoint, start, end).items():
            if p == project and (not by_model or m == row.model):
                total += amount
    return total


def cost_extent(data: SpendData, day: int) -> int:
    """Where the stored data of the costs day ``day`` ends: the API fills the current day up
    to when it was fetched, which is past the end asked when collecting during the day at a
    ``--now`` earlier than the clock. A fetch after the day ended is not taken as its end
    (a simulator's clock need not be ours): then the data ends where it was asked to."""
    series = data.daily_costs()
    covered = None if series is None else series.covered
    if series is None or covered is None or covered[1] <= day:
        return day + _DAY
    fetched_at = series.mark.last_success_at if series.mark is not None else None
    if fetched_at is not None and covered[1] + _COLLECTING < fetched_at < day + _DAY:
        return fetched_at
    return min(day + _DAY, covered[1])


def cost_share(data: SpendData, row: CostRow, lo: int, hi: int) -> tuple[Decimal, bool]:
    """The share of costs line ``row`` (a UTC day) that lies in ``[lo, hi)``, and whether
    usage (True) or time (False) gave it. The share is of the day's whole stored extent:
    by usage where usage is stored, by time for any part of the extent after it."""
    day = row.start
    key = ("share", row.project, row.model, row.endpoint, day, lo, hi)
    found = data.memo.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    extent = cost_extent(data, day)
    span = Decimal(extent - day)
    used = min(extent, max((data.latest(e) for e in data.endpoints()), default=extent))
    after = Decimal(max(0, min(hi, extent) - max(lo, used, day))) / span
    result: tuple[Decimal, bool] | None = None
    for by_model in (True, False) if row.model else (False,):
        whole = _usage_of(data, row, day, used, by_model) if used > day else _ZERO
        if whole > 0:
            inside_lo, inside_hi = max(lo, day), min(hi, used)
            inside = _usage_of(data, row, inside_lo, inside_hi, by_model)
            ratio = min(Decimal(1), max(_ZERO, inside / whole))
            timed = any(split_by_time(data, e, inside_lo, inside_hi) for e in _endpoints(data, row))
            result = (ratio * Decimal(used - day) / span + after, used >= extent and not timed)
            break
    if result is None:
        part = max(0, min(hi, extent) - max(lo, day))
        result = (Decimal(part) / span, False)
    data.memo[key] = result
    return result


def attribute(data: SpendData, rows: list[CostRow]) -> list[CostRow]:
    """``rows`` with each line item that names no model given the endpoint it bills and,
    where that endpoint has models, split among the models by the day's priced usage."""
    from dataclasses import replace

    out: list[CostRow] = []
    for row in rows:
        endpoint = billed_endpoint(row.line_item) if row.model is None else None
        if endpoint is None:
            out.append(row)
            continue
        billed = replace(row, endpoint=endpoint)
        if endpoint not in _BY_MODEL:
            out.append(billed)
            continue
        usage = scope_estimates(data, endpoint, row.start, row.start + _DAY)
        weights = {
            m: a for (p, m), a in sorted(usage.items()) if p == (row.project or _NONE) and a > 0
        }
        total = sum(weights.values(), _ZERO)
        if not total:
            out.append(billed)
            continue
        left = row.amount
        for index, (model, weight) in enumerate(weights.items()):
            part = left if index == len(weights) - 1 else row.amount * weight / total
            left -= part
            out.append(replace(billed, model=None if model == _NONE else model, amount=part))
    return out
