"""Usage of one series as cumulative sums per group over time: any window of any budget is
then two lookups per group, not a scan of rows.

A group is one combination of the dimensions budgets match, split and price by (project,
user, API key, model, batch, service tier, size). ``cum[metric][g, t]`` is the sum of the
metric over the series' first ``t`` buckets, so the usage of groups ``G`` in buckets
``[h0, h1)`` is ``cum[:, h1] - cum[:, h0]`` for the rows of ``G``. Prices are linear in the
metrics (``Rates``), so token sums are priced after they are added up: exact ``Decimal``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from budgetguard.collect.pricing import Pricer, Rates
from budgetguard.rules.model import Budget

__all__ = ["DIMENSIONS", "UsageCube"]

#: Per-group dimensions, in the order of the rows handed to ``UsageCube``.
DIMENSIONS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "size")
_MATCHED = {"project": 0, "user": 1, "api_key": 2, "model": 3}
_NONE = "(none)"
_ZERO = Decimal(0)


class UsageCube:
    def __init__(
        self,
        endpoint: str,
        width: int,
        starts: Sequence[int],
        groups: Sequence[tuple[Any, ...]],
        metrics: dict[str, Sequence[int]],
        pricer: Pricer,
    ) -> None:
        """``starts[i]``, ``groups[i]`` and ``metrics[m][i]`` describe row ``i``."""
        self.endpoint = endpoint
        self.width = width
        self.times = np.unique(np.asarray(starts, dtype=np.int64))
        index: dict[tuple[Any, ...], int] = {}
        gid = np.fromiter(
            (index.setdefault(g, len(index)) for g in groups), dtype=np.int64, count=len(groups)
        )
        self.groups = list(index)
        tid = np.searchsorted(self.times, np.asarray(starts, dtype=np.int64))
        shape = (len(self.groups), len(self.times))
        self.cum: dict[str, np.ndarray] = {}
        for metric, values in metrics.items():
            column = np.asarray(values, dtype=np.int64)
            if not column.any():
                continue
            cells = np.zeros(shape, dtype=np.int64)
            np.add.at(cells, (gid, tid), column)
            cum = np.zeros((shape[0], shape[1] + 1), dtype=np.int64)
            np.cumsum(cells, axis=1, out=cum[:, 1:])
            self.cum[metric] = cum
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
        self._masks: dict[Any, np.ndarray] = {}
        self._splits: dict[tuple[str, ...], tuple[np.ndarray, list[tuple[str, ...]]]] = {}

    @staticmethod
    def cells(groups: int, times: int, metrics: int) -> int:
        """How many integers a cube of this shape holds (to stay within memory)."""
        return groups * (times + 1) * metrics

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
                position = _MATCHED[name]
                found &= np.fromiter(
                    (
                        g[position] is not None
                        and any(fnmatch.fnmatchcase(g[position], p) for p in patterns)
                        for g in self.groups
                    ),
                    dtype=bool,
                    count=len(self.groups),
                )
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
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[tuple[str, ...]]]:
        selected = np.nonzero(self._mask(budget))[0]
        split, labels = self._split(budget.each)
        slots = split[selected] * (len(self.rates) if by_price else 1)
        if by_price:
            slots = slots + self.price_ids[selected]
        size = len(labels) * (len(self.rates) if by_price else 1)
        sums = {}
        for metric in metrics:
            cum = self.cum.get(metric)
            if cum is None or not len(selected):
                continue
            diff = cum[selected, h1] - cum[selected, h0]
            sums[metric] = np.bincount(slots, weights=diff, minlength=size)
        return sums, slots, labels

    def amounts(
        self, budget: Budget, h0: int, h1: int
    ) -> tuple[dict[tuple[str, ...], Decimal], set[str]]:
        """Estimated USD per ``each`` group in buckets ``[h0, h1)``, and pricing notes."""
        metrics = {m for r in self.rates if r.per_unit for m in r.per_unit}
        sums, _, labels = self._sums(budget, metrics, h0, h1, by_price=True)
        out: dict[tuple[str, ...], Decimal] = {}
        notes: set[str] = set()
        prices = len(self.rates)
        for slot in range(len(labels) * prices):
            usage = {m: round(float(s[slot])) for m, s in sums.items() if s[slot]}
            if not usage:
                continue
            rates = self.rates[slot % prices]
            label = labels[slot // prices]
            note = rates.note_for(usage)
            if note:
                notes.add(note)
            if rates.per_unit is None:
                continue
            out[label] = out.get(label, _ZERO) + rates.apply(usage)
        return out, notes

    def values(
        self, budget: Budget, columns: Sequence[str], h0: int, h1: int
    ) -> dict[tuple[str, ...], Decimal]:
        """A usage metric (the sum of ``columns``) per ``each`` group in ``[h0, h1)``."""
        sums, _, labels = self._sums(budget, columns, h0, h1, by_price=False)
        out: dict[tuple[str, ...], Decimal] = {}
        for index, label in enumerate(labels):
            total = sum(round(float(s[index])) for s in sums.values())
            if total:
                out[label] = Decimal(total)
        return out
