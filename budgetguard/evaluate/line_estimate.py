"""Line items estimated from usage: ``auto``'s guard for a budget on line items over the
last two UTC days, whose costs are late.

The costs endpoint bills token usage as ``[tier | ]model, kind`` (``gpt-4o-2024-08-06,
input``, ``batch | gpt-4o-mini-2024-07-18, cached input``). Each kind of each model's token
usage is priced on its own (``Pricer.line_rates``), named as the costs data already names
that (model, kind, tier) where it does (else in that style), and counted where the budget's
globs match it. Other line items (images, search calls, speech, ...) have no such estimate
(``estimable``): a figure that counts them never reads as complete.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from budgetguard.evaluate.intervals import pieces
from budgetguard.evaluate.pricing import TOKEN_KINDS
from budgetguard.rules.model import Budget

if TYPE_CHECKING:
    from budgetguard.evaluate.data import CostRow, SpendData

__all__ = ["estimable", "line_item_estimates", "matches_line_items"]

_TOKEN_ENDPOINTS = ("completions", "embeddings")
#: Tiers the costs data names before a ``|`` (``default`` is written as no tier).
_TIERS = frozenset({"batch", "priority", "flex", "scale"})
_NONE = "(none)"


def matches_line_items(budget: Budget) -> bool:
    """A cost budget on line items (a ``line_item`` match or split)."""
    return budget.metric == "cost" and (
        budget.match.line_item is not None or "line_item" in budget.each
    )


def _tier(product: str | None) -> str | None:
    return product if product in _TIERS else None


def estimable(row: CostRow, data: SpendData) -> bool:
    """Whether usage prices ``row``'s line item: a token kind of a model with a price, on
    no product but a tier (an ``evals | ...`` line has no usage of its own)."""
    pricer = data.pricer
    return (
        pricer is not None
        and row.model is not None
        and row.kind in TOKEN_KINDS
        and (row.product is None or row.product in _TIERS or row.product == "default")
        and pricer.token_prices(row.model) is not None
    )


def _known_names(data: SpendData) -> dict[tuple[str, str, str | None], str]:
    """(model, kind, tier) -> the line item the costs data names it by (the latest)."""
    found = data.memo.get(("line-names",))
    if found is None:
        found = {}
        for row in data.costs(0, 2**62):
            if row.model and row.kind in TOKEN_KINDS and row.line_item and row.endpoint is None:
                found[(row.model, row.kind, _tier(row.product))] = row.line_item
        data.memo[("line-names",)] = found
    return found


def _name(model: str, kind: str, tier: str | None) -> str:
    """The costs data's style: fine-tuned models as ``ft-...``, the tier before a ``|``."""
    shown = "ft-" + model[3:] if model.startswith("ft:") else model
    return f"{tier} | {shown}, {kind}" if tier else f"{shown}, {kind}"


def _glob(patterns: tuple[str, ...] | None, value: str | None) -> bool:
    if patterns is None:
        return True
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def line_item_estimates(
    budget: Budget, data: SpendData, start: int, end: int
) -> Iterable[tuple[tuple[str, ...], int, Decimal]]:
    """(group, bucket start, estimated USD) of the token line items ``budget`` matches in
    ``[start, end)`` (one UTC day or less)."""
    names = _known_names(data)
    m = budget.match
    for endpoint in _TOKEN_ENDPOINTS:
        for piece in pieces(data, endpoint, start, end):
            series, cube = piece.series, piece.series.cube
            assert cube is not None  # every usage series is a cube
            h0, h1 = series.span(piece.lo, piece.hi)
            if not cube.groups or h0 >= h1:
                continue
            sums = cube.per_group(h0, h1)
            if not sums:
                continue
            used = np.flatnonzero(np.vstack(list(sums.values())).any(axis=0))
            for index in used.tolist():
                project, _, api_key, model, batch, tier, _ = cube.groups[index]
                if not (_glob(m.project, project) and _glob(m.api_key, api_key)):
                    continue
                if not _glob(m.model, model):
                    continue
                kinds = cube.pricer.line_rates(endpoint, model, bool(batch), tier)
                if kinds is None:
                    continue  # no price: the budget's pricing notes say so (unestimated)
                shown_tier = "batch" if batch else _tier(tier)
                for kind, rates in kinds.items():
                    amount = sum(
                        (Decimal(int(sums[k][index])) * p for k, p in rates.items() if k in sums),
                        Decimal(0),
                    )
                    if not amount:
                        continue
                    name = names.get((model, kind, shown_tier)) or _name(model, kind, shown_tier)
                    if not _glob(m.line_item, name):
                        continue
                    values = {
                        "project": project,
                        "api_key": api_key,
                        "model": model,
                        "line_item": name,
                    }
                    key = tuple(values.get(k) or _NONE for k in budget.each)
                    yield key, max(piece.lo, start), piece.scale(amount)
