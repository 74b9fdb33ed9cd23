"""How the JSON report writes a figure: money (metric ``cost``) as a float rounded to the
micro-dollar, token and count metrics as integers. One rule for the report's budgets and its
alerts (which the alert stages build), so one figure reads the same in both; it imports
nothing of budgetguard."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["json_number", "json_number_text"]


def json_number(value: Decimal | None, metric: str = "cost") -> float | int | None:
    """``value`` of a budget of ``metric`` as the report's JSON number (None: null)."""
    if value is None:
        return None
    if metric != "cost":
        return int(value)
    return float(round(value, 6))


def json_number_text(value: Decimal | None, metric: str) -> str:
    """``json.dumps(json_number(value, metric))``, made faster."""
    if value is None:
        return "null"
    if metric != "cost":
        return str(int(value))
    return repr(float(round(value, 6)))
