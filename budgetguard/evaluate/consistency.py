"""Costs that do not add up: settled costs against the usage estimate of the same days.

``auto`` takes the costs endpoint's figures for settled days (the invoice's), so a bad answer
there (a scale error, a day that lost a project) would pass silently. Over the settled days of
a budget's window, the estimate (usage x prices) is a second opinion: costs lower than the
estimate by more than the budget's ``mismatch_factor`` (3x by default), or costs of model line
items higher by as much while every token has a price, are said in the note and make the
budget a warning, never ``ok``. Small sums (under $1) are not compared: noise, not evidence.
"""

from __future__ import annotations

from decimal import Decimal

from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.spend import Spend, collect_spend, settled_before
from budgetguard.rules.model import Budget

__all__ = ["MIN_COMPARED", "mismatches"]

#: Sums under this many USD are not compared.
MIN_COMPARED = Decimal(1)
_ZERO = Decimal(0)


def mismatches(
    budget: Budget, data: SpendData, spend: Spend, start: int, end: int
) -> dict[tuple[str, ...], str]:
    """Per group, what does not add up between the settled costs in ``spend`` (of
    ``[start, end)``) and the usage estimate of the same days; empty when all agree or
    nothing can be compared (not an ``auto`` cost budget, no settled day in the window)."""
    if budget.metric != "cost" or budget.source != "auto" or budget.match.line_item is not None:
        return {}
    settled = settled_before(end)
    if start >= settled:
        return {}
    estimate = collect_spend(budget, data, "estimate", start, settled, end)
    factor = budget.mismatch_factor
    found: dict[tuple[str, ...], str] = {}
    by_model: Spend | None = None
    for group in spend.groups() | estimate.groups():
        costs = _settled(spend, group, settled)
        usage = sum(estimate.estimate.get(group, {}).values(), _ZERO)
        if usage >= MIN_COMPARED and usage > factor * costs:
            found[group] = (
                f"costs do not add up: the settled days cost ${costs:,.2f} while their usage "
                f"is worth ${usage:,.2f} (more than {factor:g}x): the costs endpoint's "
                "answer may be wrong"
            )
            continue
        if not estimate.complete(group) or usage <= 0 or costs <= factor * usage:
            continue
        if by_model is None:  # line items of models only: the estimate prices nothing else
            only = budget.match.model_copy(update={"model": budget.match.model or ("*",)})
            one = budget.model_copy(update={"match": only})
            by_model = collect_spend(one, data, "costs", start, settled, end)
        costs = _settled(by_model, group, settled)
        if costs >= MIN_COMPARED and costs > factor * usage:
            found[group] = (
                f"costs do not add up: the settled days' model line items cost ${costs:,.2f} "
                f"while their usage is worth ${usage:,.2f} (more than {factor:g}x)"
            )
    return found


def _settled(spend: Spend, group: tuple[str, ...], before: int) -> Decimal:
    return sum((a for d, a in spend.costs.get(group, {}).items() if d < before), _ZERO)
