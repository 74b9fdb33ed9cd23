"""Spend of one budget over ``[start, end)``, per group and UTC day, by source.

Sums are exact ``Decimal``. ``costs`` reads the costs endpoint; ``estimate`` prices usage;
``auto`` takes costs for settled days and, for the last two UTC days and windows under a
day, the larger of costs and the estimate, so late costs never hide spend; usage metrics
sum the usage columns.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from budgetguard.evaluate.attribution import cost_extent, cost_share
from budgetguard.evaluate.cube import UsageCube
from budgetguard.evaluate.data import CostRow, SpendData
from budgetguard.evaluate.intervals import Piece, pieces
from budgetguard.evaluate.line_estimate import (
    estimable,
    line_item_estimates,
    matches_line_items,
)
from budgetguard.evaluate.windows import Window
from budgetguard.rules.model import Budget
from budgetguard.rules.needs import endpoints_of

__all__ = [
    "NONE_VALUE",
    "Spend",
    "collect_spend",
    "cost_parts",
    "day_parts",
    "settled_before",
    "total_of",
]

_DAY = 86400
_ZERO = Decimal(0)
NONE_VALUE = "(none)"

#: The usage metric each budget metric sums.
_METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "input_tokens": ("input_tokens",),
    "output_tokens": ("output_tokens",),
    "cached_tokens": ("input_cached_tokens",),
    "tokens": ("input_tokens", "output_tokens"),
    "images": ("images",),
    "characters": ("characters",),
    "seconds": ("seconds",),
    "usage_bytes": ("usage_bytes",),
    "sessions": ("num_sessions",),
}
_GROUP_FIELDS = {
    "project": "project",
    "model": "model",
    "user": "user",
    "api_key": "api_key",
    "line_item": "line_item",
}


@lru_cache(maxsize=65536)
def _glob(patterns: tuple[str, ...], value: str | None) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _matches(budget: Budget, row: CostRow, *, with_model: bool = True) -> bool:
    m = budget.match
    if m.user is not None or m.endpoint is not None:
        return False
    checks: list[tuple[tuple[str, ...] | None, str | None]] = [
        (m.project, row.project),
        (m.api_key, row.api_key),
        (m.model if with_model else None, row.model),
        (m.line_item, row.line_item),
    ]
    return all(patterns is None or _glob(patterns, value) for patterns, value in checks)


def _group(budget: Budget, row: CostRow) -> tuple[str, ...]:
    return tuple(getattr(row, _GROUP_FIELDS[k], None) or NONE_VALUE for k in budget.each)


class Spend:
    """Sums per group, per UTC day, by source."""

    def __init__(self) -> None:
        self.costs: dict[tuple[str, ...], dict[int, Decimal]] = defaultdict(dict)
        self.estimate: dict[tuple[str, ...], dict[int, Decimal]] = defaultdict(dict)
        self.usage: dict[tuple[str, ...], Decimal] = defaultdict(lambda: _ZERO)
        self.notes: set[str] = set()
        #: A bucket straddled a bound and counted its share (by time where ``by_time``).
        self.apportioned = False
        self.by_time = False
        #: Some usage had no price (or costs were left out): the figure is a lower bound.
        self.unpriced = False
        #: Costs that matched but for naming no model (a budget by model leaves them out).
        self.unattributed = _ZERO
        #: Notes and lower bounds of one group of an ``each`` budget only.
        self.group_notes: dict[tuple[str, ...], set[str]] = defaultdict(set)
        self.group_unpriced: set[tuple[str, ...]] = set()
        #: Costs of line items that name no model, in the no-model group of an ``each: model``.
        self.unattributed_in: dict[tuple[str, ...], Decimal] = defaultdict(lambda: _ZERO)
        #: Currencies other than USD the matching costs are in (``None``: the whole budget):
        #: such a figure is unknown, never a silent drop.
        self.currencies: dict[tuple[str, ...] | None, set[str]] = defaultdict(set)
        #: Credits (negative amounts) per group: named in the note, never subtracted.
        self.credits: dict[tuple[str, ...], Decimal] = defaultdict(lambda: _ZERO)
        #: Why the figure (or one group's) is not known at all: data that nothing can
        #: stand in for.
        self.missing: str | None = None
        self.missing_in: dict[tuple[str, ...], str] = {}

    def foreign(self, group: tuple[str, ...] = ()) -> list[str]:
        """The currencies other than USD that make ``group``'s figure unknown."""
        return sorted(self.currencies.get(None, set()) | self.currencies.get(group, set()))

    def complete(self, group: tuple[str, ...] = ()) -> bool:
        """No usage of ``group`` (or of the whole budget) lacked a price."""
        return not self.unpriced and group not in self.group_unpriced

    def flag(self, group: tuple[str, ...] | None, note: str | None, unpriced: bool) -> None:
        """A note (and lower bound) of ``group``, or of the whole budget where None."""
        if group is None:
            self.notes |= {note} if note else set()
            self.unpriced |= unpriced
            return
        if note:
            self.group_notes[group].add(note)
        if unpriced:
            self.group_unpriced.add(group)

    def summary(self, group: tuple[str, ...] = ()) -> set[str]:
        """The notes (of ``group`` too), with what apportioning and attribution did."""
        notes = self.notes | self.group_notes.get(group, set())
        if self.apportioned:
            how = "by time where no usage covers them" if self.by_time else "by usage"
            notes.add(f"buckets across the interval's bounds apportioned {how}")
        credit = self.credits.get(group, _ZERO)
        if credit:
            notes.add(f"${credit:,.2f} of credits (negative amounts) not subtracted")
        left = self.unattributed + self.unattributed_in.get(group, _ZERO)
        if left:
            where = f" (counted under {NONE_VALUE})" if group in self.unattributed_in else ""
            notes.add(f"${left:.2f} of line items that name no model left unattributed{where}")
        return notes

    def add(
        self,
        table: dict[tuple[str, ...], dict[int, Decimal]],
        group: tuple[str, ...],
        start: int,
        amount: Decimal,
    ) -> None:
        day = start - start % _DAY
        days = table[group]
        days[day] = days.get(day, _ZERO) + amount

    def groups(self) -> set[tuple[str, ...]]:
        foreign = {g for g in self.currencies if g is not None}
        return (
            set(self.costs)
            | set(self.estimate)
            | set(self.usage)
            | self.group_unpriced
            | set(self.credits)
            | foreign
            | set(self.missing_in)
        )


def settled_before(now: int) -> int:
    """Costs of UTC days before this are settled; the last two days are not."""
    return now - now % _DAY - _DAY


def collect_spend(
    budget: Budget, data: SpendData, source: str, start: int, end: int, now: int
) -> Spend:
    """Spend of ``[start, end)`` seen at ``now``, per group and UTC day, by source; buckets
    that straddle ``start`` or ``end`` count the part inside (see ``intervals``)."""
    spend = Spend()
    if budget.metric == "cost":
        if source in ("costs", "auto"):
            _costs(budget, data, start, end, spend)
        if source in ("estimate", "auto"):
            # auto compares costs and estimate day by day, and only where costs are not yet
            # settled (settled days are the costs'); estimate alone needs no split
            if source == "auto":
                spans = _days(max(start, settled_before(now)), end)
            else:
                spans = [(start, end)]
            if source == "auto" and matches_line_items(budget):  # usage has no line items:
                _line_items(budget, data, spans, spend)  # its tokens priced kind by kind
                return spend
            for endpoint in sorted(endpoints_of(budget) - {"costs"}):
                for lo, hi in spans:
                    _estimate(budget, data, endpoint, lo, hi, spend)
        return spend
    for endpoint in sorted(endpoints_of(budget)):
        found = pieces(data, endpoint, start, end)
        if budget.metric == "usage_bytes":  # a gauge: the figure of its latest bucket, whole
            found = [
                Piece(p.series, max(p.lo, p.hi - p.series.query.width_seconds), p.hi)
                for p in found[-1:]
            ]
        columns = _columns(budget.metric, endpoint)
        for piece in found:
            spend.apportioned |= piece.share is not None
            spend.by_time |= piece.by_time
            series = piece.series
            assert series.cube is not None  # every usage series is a cube
            h0, h1 = series.span(piece.lo, piece.hi)
            for key, value in series.cube.values(budget, columns, h0, h1).items():
                spend.usage[key] += piece.scale(value)
    return spend


def cost_parts(data: SpendData, start: int, end: int) -> Iterator[tuple[CostRow, Decimal, str]]:
    """Each costs line of ``[start, end)`` with the amount that lies inside, and how it was
    split: ``""`` (whole), ``"usage"`` or ``"time"`` (a day that straddles a bound)."""
    for cost in data.costs(start - start % _DAY, end):
        lo, hi = max(cost.start, start), min(cost.start + _DAY, end)
        if lo <= cost.start and hi >= cost_extent(data, cost.start):
            yield cost, cost.amount, ""
            continue
        share, by_usage = cost_share(data, cost, lo, hi)
        yield cost, cost.amount * share, "usage" if by_usage else "time"


def _costs(budget: Budget, data: SpendData, start: int, end: int, spend: Spend) -> None:
    """The costs lines of ``[start, end)``; a day that straddles a bound counts its share."""
    by_model = budget.match.model is not None or "model" in budget.each
    for cost, amount, split in cost_parts(data, start, end):
        if not _matches(budget, cost):
            if by_model and cost.model is None and _matches(budget, cost, with_model=False):
                spend.unattributed += amount
            continue
        if cost.currency.lower() != "usd":  # unknown, never a silent drop
            spend.currencies[_group(budget, cost) if budget.each else None].add(cost.currency)
            continue
        group = _group(budget, cost)
        if amount < 0:  # a credit: a budget guards what is spent; the note names it
            spend.credits[group] -= amount
            continue
        spend.apportioned |= bool(split)
        spend.by_time |= split == "time"
        if cost.model is None and "model" in budget.each:
            spend.unattributed_in[group] += amount
        spend.add(spend.costs, group, cost.start, amount)


def _line_items(
    budget: Budget, data: SpendData, spans: list[tuple[int, int]], spend: Spend
) -> None:
    """``auto``'s estimate of a budget on line items over its unsettled days: the token
    line items usage prices. What it cannot price is never complete: a note (and a lower
    bound) names those line items, and where a day's costs have not arrived at all, a
    figure (or group) that nothing estimates is unknown."""
    if not spans:
        return
    known = [row for row in data.costs(0, 2**62) if _matches(budget, row)]
    missing: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for row in known:
        if not estimable(row, data):
            missing[_group(budget, row)].add(row.line_item or "")
    for lo, hi in spans:
        estimated: set[tuple[str, ...]] = set()
        for key, day, amount in line_item_estimates(budget, data, lo, hi):
            spend.add(spend.estimate, key, day, amount)
            estimated.add(key)
        day = lo - lo % _DAY
        if data.costs(day, day + _DAY):
            continue
        when = datetime.fromtimestamp(day, UTC).date().isoformat()
        why = (
            f"the costs of {when} have not arrived and no usage estimates the line items "
            "this {what} matches: its spend is not known yet"
        )
        if not (known or estimated) or (not budget.each and missing and not estimated):
            spend.missing = why.format(what="budget")
        elif budget.each:
            for group in set(missing) - estimated:
                spend.missing_in[group] = why.format(what="group")
    for group, names in missing.items():
        shown = ", ".join(sorted(names)[:3])
        shown += f" and {len(names) - 3} more" if len(names) > 3 else ""
        note = (
            f"no usage estimate for {shown}: the last two UTC days count their costs "
            "alone, which come late"
        )
        spend.flag(group if budget.each else None, note, True)


def _days(start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut at UTC midnights."""
    spans = []
    lo = start
    while lo < end:
        hi = min(end, lo - lo % _DAY + _DAY)
        spans.append((lo, hi))
        lo = hi
    return spans


def _estimate(
    budget: Budget, data: SpendData, endpoint: str, start: int, end: int, spend: Spend
) -> None:
    for piece in pieces(data, endpoint, start, end):
        series = piece.series
        spend.apportioned |= piece.share is not None
        spend.by_time |= piece.by_time
        day = max(piece.lo, start)
        assert series.cube is not None  # every usage series is a cube
        if not series.cube.groups:  # nothing collected in this series
            continue
        h0, h1 = series.span(piece.lo, piece.hi)
        if h0 >= h1:
            continue
        amounts, notes, unpriced = series.cube.amounts(budget, h0, h1)
        if budget.each and (notes or unpriced):
            _group_flags(budget, series.cube, h0, h1, spend)
        else:
            spend.notes |= notes
            spend.unpriced |= unpriced
        for key, amount in amounts.items():
            spend.add(spend.estimate, key, day, piece.scale(amount))


def _group_flags(budget: Budget, cube: UsageCube, h0: int, h1: int, spend: Spend) -> None:
    """The pricing notes and lower bounds of each group of an ``each`` budget, each from its
    own usage (only asked where the budget as a whole has some)."""
    for key in cube.values(budget, cube.metrics, h0, h1):
        if NONE_VALUE in key:  # no value to narrow by: the budget's notes hold for it
            _, notes, unpriced = cube.amounts(budget, h0, h1)
        else:
            narrowed = {k: (_literal(v),) for k, v in zip(budget.each, key, strict=True)}
            one = budget.model_copy(update={"match": budget.match.model_copy(update=narrowed)})
            _, notes, unpriced = cube.amounts(one, h0, h1)
        for note in notes:
            spend.flag(key, note, False)
        spend.flag(key, None, unpriced)


def _literal(value: str) -> str:
    """A glob that matches ``value`` only."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in value)


def _columns(metric: str, endpoint: str) -> tuple[str, ...]:
    columns = _METRIC_COLUMNS.get(metric)
    if columns is None:  # requests: model requests, or search calls
        return ("num_requests",) if endpoint.endswith("search_calls") else ("num_model_requests",)
    return columns


def total_of(
    spend: Spend, group: tuple[str, ...], source: str, window: Window, now: int
) -> tuple[Decimal, str]:
    """The group's spend and the source that gave it (costs | estimate | mixed | usage)."""
    if source == "usage":  # a straddling bucket's share may be fractional: whole units
        return spend.usage.get(group, _ZERO).to_integral_value(), "usage"
    costs, estimate = spend.costs.get(group, {}), spend.estimate.get(group, {})
    if source == "costs":
        return sum(costs.values(), _ZERO), "costs"
    if source == "estimate":
        return sum(estimate.values(), _ZERO), "estimate"
    if window.sub_day:
        c, e = sum(costs.values(), _ZERO), sum(estimate.values(), _ZERO)
        return (c, "costs") if c >= e else (e, "estimate")
    total, used = _ZERO, set()
    for _, amount, kind in day_parts(costs, estimate, now):
        total += amount
        used.add(kind)
    return total, (used.pop() if len(used) == 1 else "mixed" if used else "costs")


def day_parts(
    costs: dict[int, Decimal], estimate: dict[int, Decimal], now: int
) -> Iterator[tuple[int, Decimal, str]]:
    """``auto``'s choice for each UTC day: (day, amount, "costs" or "estimate") — the costs
    of a settled day, else the larger of the two (late costs never hide spend)."""
    settled = settled_before(now)
    for day in sorted(set(costs) | set(estimate)):
        c, e = costs.get(day, _ZERO), estimate.get(day, _ZERO)
        if day >= settled and e > c:
            yield day, e, "estimate"
        else:
            yield day, c, "costs"
