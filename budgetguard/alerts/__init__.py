"""Alerts: the lifecycle of each (budget, group, kind, threshold), the outbox, delivery."""

from budgetguard.alerts.delivery import (
    DEFAULT_POLICY,
    DeliveryPolicy,
    DeliveryReport,
    deliver,
    deliver_within,
    problem_lines,
)
from budgetguard.alerts.lifecycle import (
    AlertEvent,
    AlertState,
    Decision,
    active_alerts,
    decide,
    transitions,
)
from budgetguard.alerts.outbox import load_states, queue, render

__all__ = [
    "DEFAULT_POLICY",
    "AlertEvent",
    "AlertState",
    "Decision",
    "DeliveryPolicy",
    "DeliveryReport",
    "active_alerts",
    "decide",
    "deliver",
    "deliver_within",
    "load_states",
    "problem_lines",
    "queue",
    "render",
    "transitions",
]
