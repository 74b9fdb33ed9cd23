"""Budgets x stored data -> findings: windows, spend per group, forecasts, anomalies."""

from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import SEVERITY_ORDER, Finding, evaluate, group_label
from budgetguard.evaluate.windows import Window, budget_window
from budgetguard.rules.needs import needed_from

__all__ = [
    "SEVERITY_ORDER",
    "Finding",
    "SpendData",
    "Window",
    "budget_window",
    "evaluate",
    "group_label",
    "needed_from",
]
