"""Alerts: the lifecycle of each (budget, group, kind, threshold), silences, grouping and the
outbox — decide -> silence -> group -> queue -> deliver."""

from budgetguard.alerts.grouping import Notification, group_events
from budgetguard.alerts.lifecycle import AlertEvent, AlertState, active_alerts, transitions
from budgetguard.alerts.outbox import DeliveryReport, deliver, load_states, queue, render
from budgetguard.alerts.silences import (
    Held,
    Silence,
    SilenceOutcome,
    alert_labels,
    apply_silences,
    mark_silenced,
    parse_matcher,
    silence_json,
)

__all__ = [
    "AlertEvent",
    "AlertState",
    "DeliveryReport",
    "Held",
    "Notification",
    "Silence",
    "SilenceOutcome",
    "active_alerts",
    "alert_labels",
    "apply_silences",
    "deliver",
    "group_events",
    "load_states",
    "mark_silenced",
    "parse_matcher",
    "queue",
    "render",
    "silence_json",
    "transitions",
]
