"""Collect: usage and costs from the admin API into the store, and usage x prices."""

from budgetguard.collect.collector import Collector, CollectReport, QueryOutcome, fetch_ranges
from budgetguard.collect.line_items import LineItem, parse_line_item
from budgetguard.collect.plan import PlannedQuery, plan_queries
from budgetguard.collect.pricing import Estimate, Pricer, TokenPrices

__all__ = [
    "CollectReport",
    "Collector",
    "Estimate",
    "LineItem",
    "PlannedQuery",
    "Pricer",
    "QueryOutcome",
    "TokenPrices",
    "fetch_ranges",
    "parse_line_item",
    "plan_queries",
]
