"""Usage of one series as sparse prefix sums over its rows: any window of any budget is then
two lookups per group, not a scan of rows, and memory is that of the rows that exist.

A group is one combination of the dimensions budgets match, split and price by (project,
user, API key, model, batch, service tier, size). The rows are sorted by (group, bucket) into
one key ``g * T + t`` (``T`` buckets); ``cum[metric][i]`` is the metric's sum over the first
``i`` sorted rows. The usage of group ``g`` in buckets ``[h0, h1)`` is then ``cum[p1] -
cum[p0]`` with ``p = searchsorted(keys, g * T + h)``: no dense groups x buckets array, so a
wide organisation over a long window costs what its rows cost (no cliff). Prices are linear
in the metrics (``Rates``), so token sums are priced after they are added up: exact
``Decimal``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from budgetguard.evaluate.pricing import Pricer, Rates
from budgetguard.rules.model import Budget
from budgetguard.store.blocks import ROLLUP_DIMENSIONS

__all__ = ["DIMENSIONS", "UsageCube"]

#: Per-group dimensions, in the order of ``UsageCube``'s group tuples.
DIMENSIONS = ROLLUP_DIMENSIONS
_MATCHED = {"project": 0, "user": 1, "api_key": 2, "model": 3}
_NONE = "(none)"
_ZERO = Decimal(0)


#: Bounds whose per-group row positions a cube keeps (oldest dropped first).
_POSITIONS = 64

#: Integer prices times token sums stay below this: int64 arithmetic is then exact.
_INT_LIMIT = 2**62


def _integer_prices(
    rates: Sequence[Rates], metrics: Sequence[str]
) -> tuple[int, np.ndarray] | None:
    """Every price of ``rates`` (per metric) as an integer over one power of ten, so that a
    slot's amount is an exact int64 dot product; None when some price has too many digits."""
    prices = [p for r in rates if r.per_unit for m, p in r.per_unit.items() if m in metrics and p]
    scale = max([0, *(-int(p.as_tuple().exponent) for p in prices)])
    table = np.zeros((len(rates), len(metrics)), dtype=np.int64)
    for i, r in enumerate(rates):
        for j, metric in enumerate(metrics):
            price = (r.per_unit or {}).get(metric)
            if not price:
                continue
            scaled = price.scaleb(scale)
            if scaled != scaled.to_integral_value() or abs(scaled) >= _INT_LIMIT:
                return None
            table[i, j] = int(scaled)
    return scale, table


#: Rows gathered and widened at a time while the prefix sums are built (bounds the copies).
_CHUNK = 1 << 20


def _within_groups(
    values: dict[str, np.ndarray],
    order: np.ndarray,
    keys: np.ndarray,
    buckets: int,
    bounds: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per metric: each sorted row's sum of its group's values before it, and each group's
    total. Row ``i`` is ``values[m][order[i]]`` of group ``keys[i] // buckets``, whose rows
    are ``[bounds[g], bounds[g + 1])``. Sums within a group are int32 wherever they fit:
    half the memory of whole-column int64 sums. Every addition is in int64 (exact), a chunk
    of rows at a time with one gather of each column: no widened copy of a whole column.
    ``values`` is consumed."""
    n = len(order)
    within = {m: np.empty(n, dtype=np.int32) for m in values}
    # the whole column's running sum before each bound's row
    at = {m: np.zeros(len(bounds), dtype=np.int64) for m in values}
    carry = dict.fromkeys(values, 0)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        group = keys[lo:hi] // buckets
        here = slice(*np.searchsorted(bounds, [lo, hi]))
        first = bounds[here] - lo
        for m in values:
            part = values[m][order[lo:hi]].astype(np.int64)
            running = np.cumsum(part)
            running += carry[m]
            carry[m] = int(running[-1])
            running -= part  # before each row
            at[m][here] = running[first]
            running -= at[m][group]
            if within[m].dtype != np.int64 and int(running.max()) >= 2**31:
                within[m] = within[m].astype(np.int64)  # a group past int32
            within[m][lo:hi] = running
    for m in values:
        at[m][np.searchsorted(bounds, n) :] = carry[m]
    values.clear()
    return within, {m: np.diff(a) for m, a in at.items()}


class UsageCube:
    @classmethod
    def from_columns(
        cls,
        endpoint: str,
        width: int,
        columns: dict[str, np.ndarray],
        groups: list[tuple[Any, ...]],
        metrics: dict[str, np.ndarray],
        pricer: Pricer,
    ) -> UsageCube:
        """The cube of ``columns``' ``starts`` and ``gid``, taken out of it (and out of
        ``metrics``) so each column is freed as soon as the cube has used it."""
        return cls(
            endpoint, width, columns.pop("starts"), columns.pop("gid"), groups, metrics, pricer
        )

    def __init__(
        self,
        endpoint: str,
        width: int,
        starts: np.ndarray,
        gid: np.ndarray,
        groups: list[tuple[Any, ...]],
        metrics: dict[str, np.ndarray],
        pricer: Pricer,
    ) -> None:
        """Row ``i`` is group ``groups[gid[i]]`` in the bucket starting at ``starts[i]`` with
        ``metrics[m][i]``; ``starts`` is sorted (``SpendData`` sees to it), and rows of the
        same group and bucket add up. ``metrics`` is consumed (each column dropped once
        summed) and so are ``starts`` and ``gid`` when ``from_columns`` hands them over:
        at 26M rows every column held past its use is hundreds of MB at the peak."""
        self.endpoint = endpoint
        self.width = width
        self.pricer = pricer
        starts = np.asarray(starts, dtype=np.int64)
        new = np.ones(len(starts), dtype=bool)  # where a new bucket starts
        np.not_equal(starts[1:], starts[:-1], out=new[1:])
        self.times = starts[new]
        del starts
        self.groups = groups
        keys = np.cumsum(new, dtype=np.int64)
        del new
        keys -= 1
        buckets = len(self.times)
        used = {m: v for m, v in metrics.items() if v.any()}
        metrics.clear()
        keys += np.asarray(gid, dtype=np.int64) * buckets
        del gid
        order = np.argsort(keys, kind="stable")
        #: the rows' (group, bucket) keys, sorted (int32 where they fit: half the memory)
        narrow = np.int32 if (len(groups) + 1) * max(buckets, 1) < 2**31 else np.int64
        self.keys = keys[order].astype(narrow)
        del keys
        bounds = np.searchsorted(
            self.keys, np.arange(len(groups) + 1, dtype=np.int64).astype(narrow) * buckets
        )
        #: the sorted rows' index where each group's rows end
        self._ends = bounds[1:]
        #: per metric: each sorted row's group sum before it; each group's total
        self._within, self._totals = _within_groups(used, order, self.keys, buckets, bounds)
        del order
        self.rates: list[Rates] = []
        known: dict[int, int] = {}  # Pricer.rates is cached: the same prices, the same object
        ids = []
        for group in self.groups:
            rates = pricer.rates(endpoint, group[3], bool(group[4]), group[5], group[6], width)
            if id(rates) not in known:
                known[id(rates)] = len(self.rates)
                self.rates.append(rates)
            ids.append(known[id(rates)])
        self.price_ids = np.asarray(ids, dtype=np.int64)
        self.metrics = sorted(self._totals)  # the metrics with usage
        self._int_prices = _integer_prices(self.rates, self.metrics)
        # per matched dimension: each group's code into that dimension's distinct values
        self._codes: dict[int, tuple[np.ndarray, list[Any]]] = {}
        for position in _MATCHED.values():
            distinct: dict[Any, int] = {}
            codes = [distinct.setdefault(g[position], len(distinct)) for g in self.groups]
            self._codes[position] = (np.asarray(codes, dtype=np.int64), list(distinct))
        self._masks: dict[Any, np.ndarray] = {}
        self._pos: dict[int, np.ndarray] = {}
        self._before: dict[tuple[str, int], np.ndarray] = {}
        self._splits: dict[tuple[str, ...], tuple[np.ndarray, list[tuple[str, ...]]]] = {}

    def _positions(self, h: int) -> np.ndarray:
        """Per group, how many sorted rows come before its bucket ``h``: budgets share their
        bounds (the same now, the same windows), so each bound is searched once."""
        found = self._pos.get(h)
        if found is None:
            if len(self._pos) >= _POSITIONS:
                self._pos.pop(next(iter(self._pos)))
            bases = np.arange(len(self.groups), dtype=np.int64) * len(self.times) + h
            found = np.searchsorted(self.keys, bases.astype(self.keys.dtype))
            self._pos[h] = found
        return found

    def _sum_before(self, metric: str, h: int) -> np.ndarray:
        """Per group, its sum of ``metric`` over its buckets before ``h`` (int64); cached
        with the bound's positions."""
        found = self._before.get((metric, h))
        if found is None:
            if len(self._before) >= _POSITIONS * max(1, len(self._totals)):
                self._before.pop(next(iter(self._before)))
            p = self._positions(h)
            within, totals = self._within[metric], self._totals[metric]
            # a position at its group's end (the next group's first row, or n): the total
            inside = within[np.minimum(p, max(len(within) - 1, 0))] if len(within) else 0
            found = np.where(p >= self._ends, totals, inside).astype(np.int64)
            self._before[metric, h] = found
        return found

    def _window(self, metric: str, groups: np.ndarray, h0: int, h1: int) -> np.ndarray:
        """Each of ``groups``' sum of ``metric`` over buckets ``[h0, h1)`` (int64)."""
        sums: np.ndarray = (
            self._sum_before(metric, h1)[groups] - self._sum_before(metric, h0)[groups]
        )
        return sums

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Bucket indexes ``[h0, h1)`` of the buckets starting in ``[start, end)``."""
        return (int(np.searchsorted(self.times, start)), int(np.searchsorted(self.times, end)))

    def _mask(self, budget: Budget) -> np.ndarray:
        key = budget.match
        found = self._masks.get(key)
        if found is None:
            found = np.ones(len(self.groups), dtype=bool)
            for name, patterns in budget.match.items():
                if name == "endpoint":
                    continue
                if name == "line_item":  # usage has no line items
                    found[:] = False
                    break
                codes, values = self._codes[_MATCHED[name]]
                hits = np.fromiter(
                    (
                        v is not None and any(fnmatch.fnmatchcase(v, p) for p in patterns)
                        for v in values
                    ),
                    dtype=bool,
                    count=len(values),
                )
                found &= hits[codes]
            self._masks[key] = found
        return found

    def _split(self, each: tuple[str, ...]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        found = self._splits.get(each)
        if found is None:
            labels: dict[tuple[str, ...], int] = {}
            ids = [
                labels.setdefault(
                    tuple((g[_MATCHED[k]] if k in _MATCHED else None) or _NONE for k in each),
                    len(labels),
                )
                for g in self.groups
            ]
            found = (np.asarray(ids, dtype=np.int64), list(labels))
            self._splits[each] = found
        return found

    def _sums(
        self, budget: Budget, metrics: Iterable[str], h0: int, h1: int, by_price: bool
    ) -> tuple[dict[str, np.ndarray], list[tuple[str, ...]]]:
        selected = np.nonzero(self._mask(budget))[0]
        split, labels = self._split(budget.each)
        slots = split[selected] * (len(self.rates) if by_price else 1)
        if by_price:
            slots = slots + self.price_ids[selected]
        size = len(labels) * (len(self.rates) if by_price else 1)
        sums: dict[str, np.ndarray] = {}
        if not len(selected):
            return sums, labels
        for metric in metrics:
            if metric not in self._totals:
                continue
            # integers, summed as integers: a float64 bincount loses units past 2**53
            found = np.zeros(size, dtype=np.int64)
            np.add.at(found, slots, self._window(metric, selected, h0, h1))
            sums[metric] = found
        return sums, labels

    def amounts(
        self, budget: Budget, h0: int, h1: int
    ) -> tuple[dict[tuple[str, ...], Decimal], set[str], bool]:
        """Estimated USD per ``each`` group in buckets ``[h0, h1)``, pricing notes, and
        whether some usage had no price (the amounts are then lower bounds).

        Every metric is summed, not only priced ones: usage of a model without a price must
        say so in a note rather than count as nothing."""
        sums, labels = self._sums(budget, self.metrics, h0, h1, True)
        out: dict[tuple[str, ...], Decimal] = {}
        notes: set[str] = set()
        if not sums:
            return out, notes, False
        prices = len(self.rates)
        zero = np.zeros(len(labels) * prices, dtype=np.int64)
        table: Any = np.vstack([sums.get(m, zero) for m in self.metrics])
        used = table.any(axis=0)
        slot_rates = np.arange(table.shape[1]) % prices
        priced = np.fromiter((r.per_unit is not None for r in self.rates), bool, prices)
        counted = used & priced[slot_rates]
        unpriced = bool((used & ~priced[slot_rates]).any())
        for index, rates in enumerate(self.rates):
            if not (rates.note or rates.as_text or rates.info):
                continue
            mine = used & (slot_rates == index)
            if not mine.any():
                continue
            if rates.info:
                notes.add(rates.info)
            if rates.note:
                notes.add(rates.note)
            elif rates.as_text:
                present = table[:, mine].any(axis=1)
                note = rates.as_text_note(m for i, m in enumerate(self.metrics) if present[i])
                if note:
                    notes.add(note)  # priced as text: a lower bound
                    unpriced = True
        label_of = np.arange(table.shape[1]) // prices
        exact = self._int_prices
        if exact is not None:
            scale, integers = exact
            bound = float(np.abs(table).sum(dtype=np.float64)) * float(np.abs(integers).max())
            if bound < _INT_LIMIT:
                per_slot = (table * integers[slot_rates].T).sum(axis=0)
                per_label = np.zeros(len(labels), dtype=np.int64)
                np.add.at(per_label, label_of[counted], per_slot[counted])
                used = np.flatnonzero(np.bincount(label_of[counted]))  # np.unique: numpy.ma
                for index in used.tolist():
                    out[labels[index]] = Decimal(int(per_label[index])).scaleb(-scale)
                return out, notes, unpriced
        # prices with too many digits for int64: Decimal, one slot (group x price) at a time
        for slot in np.flatnonzero(counted).tolist():
            usage = dict(zip(self.metrics, table[:, slot].tolist(), strict=True))
            label = labels[slot // prices]
            out[label] = out.get(label, _ZERO) + self.rates[slot % prices].apply(usage)
        return out, notes, unpriced

    def per_group(self, h0: int, h1: int) -> dict[str, np.ndarray]:
        """Each metric's sum per group (``groups``' order) in buckets ``[h0, h1)``."""
        return {m: self._sum_before(m, h1) - self._sum_before(m, h0) for m in self._totals}

    def totals(self, h0: int, h1: int) -> dict[str, int]:
        """Each metric's sum over every group in buckets ``[h0, h1)``."""
        sums = {
            m: int((self._sum_before(m, h1) - self._sum_before(m, h0)).sum()) for m in self._totals
        }
        return {m: v for m, v in sums.items() if v}

    def values(
        self, budget: Budget, columns: Sequence[str], h0: int, h1: int
    ) -> dict[tuple[str, ...], Decimal]:
        """A usage metric (the sum of ``columns``) per ``each`` group in ``[h0, h1)``."""
        sums, labels = self._sums(budget, columns, h0, h1, by_price=False)
        if not sums:
            return {}
        totals = [sum(column) for column in zip(*(v.tolist() for v in sums.values()), strict=True)]
        return {label: Decimal(t) for label, t in zip(labels, totals, strict=True) if t}
