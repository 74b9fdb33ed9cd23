"""The "when" of an alert: at this pace the budget runs out at <local time>, and the share
of the limit burnt in the long window — facts of the alert's JSON body, from its finding.

A burn-rate alert's pace is its pair's long window (and ``burn_rate`` gives the pair's
figures); a threshold's or a forecast's is the forecast's (the mean daily spend of the last
7 complete days) where the budget forecasts, else the window's own mean, and its long window
is the longest of the budget's burn-rate pairs, when it has any.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from budgetguard.evaluate.burn_rate import BurnRate
from budgetguard.evaluate.evaluator import Finding
from budgetguard.rules.model import BurnRatePair, Threshold

__all__ = ["local_time", "pace_facts"]


def local_time(moment: datetime) -> str:
    """``2026-12-19 14:00 CET``: a local instant as people read it."""
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def pace_facts(finding: Finding, pair: Threshold | BurnRatePair | None) -> dict[str, object]:
    """``runs_out_at`` (local, readable), ``long_window`` and ``long_share``, and for a
    burn-rate ``pair`` its figures under ``burn_rate``."""
    facts: dict[str, object] = {}
    rate: BurnRate | None = None
    if isinstance(pair, BurnRatePair):
        rate = next((r for r in finding.burn if r.pair == pair), None)
        reach = rate.runs_out_at if rate is not None else None
    else:
        reach = finding.extra.get("runs_out_at")
        known = [r for r in finding.burn if r.known]
        rate = max(known, key=lambda r: r.pair.long_delta, default=None)
    facts["runs_out_at"] = None if reach is None else local_time(reach)
    if rate is not None and rate.known:
        facts["long_window"] = rate.pair.long
        facts["long_share"] = _num(rate.long_share)
        if isinstance(pair, BurnRatePair):
            facts["burn_rate"] = {
                "pair": pair.key,
                "long": pair.long,
                "short": pair.short,
                "factor": float(pair.factor),
                "long_rate": _num(rate.long_rate),
                "short_rate": _num(rate.short_rate),
                "long_spend": _num(rate.long_spend),
                "short_spend": _num(rate.short_spend),
            }
    return facts
