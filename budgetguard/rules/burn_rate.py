"""The default burn-rate pairs of each period, and ``burn_rate:`` resolved for one budget.

The pairs are Google SRE's multi-window, multi-burn-rate alerts (as slok/sloth generates
them for error budgets), adapted to spend: a pair's factor is how many times faster than the
pace that spends the limit exactly over the period both its windows must burn. A month's
1h x 14.4 burns 2 % of the budget in that hour; its 6h x 6 burns 5 %; its 24h x 3 burns 10 %.
Week and day pairs keep similar shares of their shorter periods. Quarters and years take
the month's pairs (a share of a longer period is a slower burn); a rolling window takes the
pairs of the period closest to it, without a pair whose long window exceeds it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from budgetguard.rules.model import BurnRateInput, BurnRatePair
from budgetguard.rules.vocabulary import parse_duration

__all__ = ["DEFAULT_PAIRS", "MIN_SHORT", "default_pairs", "resolve_pairs"]

#: A short window is never under this: the API's minutes come late and bursty.
MIN_SHORT = timedelta(minutes=15)


def _pair(long: str, short: str, factor: str, severity: str) -> BurnRatePair:
    return BurnRatePair.model_validate(
        {"long": long, "short": short, "factor": Decimal(factor), "severity": severity}
    )


DEFAULT_PAIRS: dict[str, tuple[BurnRatePair, ...]] = {
    "month": (
        _pair("1h", "15m", "14.4", "critical"),
        _pair("6h", "30m", "6", "critical"),
        _pair("24h", "2h", "3", "warning"),
    ),
    "week": (
        _pair("1h", "15m", "13.4", "critical"),
        _pair("6h", "30m", "3.5", "critical"),
        _pair("24h", "2h", "1.4", "warning"),
    ),
    "day": (
        _pair("1h", "15m", "6", "critical"),
        _pair("4h", "30m", "3", "critical"),
    ),
}


def default_pairs(period: str | None, window: str | None) -> tuple[BurnRatePair, ...]:
    """The pairs ``burn_rate: default`` means for a budget of ``period`` or ``window``."""
    if period is not None:
        return DEFAULT_PAIRS.get(period, DEFAULT_PAIRS["month"])
    if window is None:
        return ()
    span = parse_duration(window)
    chosen = "day"
    if span >= timedelta(days=28):
        chosen = "month"
    elif span >= timedelta(days=7):
        chosen = "week"
    return tuple(p for p in DEFAULT_PAIRS[chosen] if p.long_delta <= span)


def resolve_pairs(
    given: BurnRateInput | None, period: str | None, window: str | None
) -> tuple[BurnRatePair, ...]:
    """``burn_rate:`` of a budget (or of the defaults) as pairs; absent or ``off``: none."""
    if given is None or given == "off":
        return ()
    if given == "default":
        return default_pairs(period, window)
    assert not isinstance(given, str)
    return tuple(given)
