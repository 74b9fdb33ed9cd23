"""Collect: usage and costs from the admin API into the store.

The collector (and with it the HTTP client) is imported on first use, so evaluating stored
data (``check --offline``) does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from budgetguard.collect.collector import (
        Collector,
        CollectReport,
        QueryOutcome,
        fetch_ranges,
        widen,
    )

__all__ = [
    "CollectReport",
    "Collector",
    "QueryOutcome",
    "fetch_ranges",
    "widen",
]

_LAZY = {"CollectReport", "Collector", "QueryOutcome", "fetch_ranges", "widen"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from budgetguard.collect import collector

        return getattr(collector, name)
    raise AttributeError(f"module 'budgetguard.collect' has no attribute {name!r}")
