"""Alerts: the lifecycle of each (budget, group, kind, threshold) and the outbox."""

from budgetguard.alerts.lifecycle import AlertEvent, AlertState, active_alerts, transitions
from budgetguard.alerts.outbox import DeliveryReport, deliver, load_states, queue, render

__all__ = [
    "AlertEvent",
    "AlertState",
    "DeliveryReport",
    "active_alerts",
    "deliver",
    "load_states",
    "queue",
    "render",
    "transitions",
]
