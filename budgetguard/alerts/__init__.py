"""Alerts: the lifecycle of each (budget, group, kind, threshold), silences, grouping, the
outbox and delivery — decide -> silence -> group -> queue -> deliver."""

from budgetguard.alerts.delivery import (
    DEFAULT_POLICY,
    DeliveryPolicy,
    DeliveryReport,
    deliver,
    deliver_within,
    problem_lines,
)
from budgetguard.alerts.grouping import Notification, group_events
from budgetguard.alerts.lifecycle import (
    AlertEvent,
    AlertState,
    Decision,
    active_alerts,
    decide,
    transitions,
)
from budgetguard.alerts.outbox import load_states, queue, render
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
    "DEFAULT_POLICY",
    "AlertEvent",
    "AlertState",
    "Decision",
    "DeliveryPolicy",
    "DeliveryReport",
    "Held",
    "Notification",
    "Silence",
    "SilenceOutcome",
    "active_alerts",
    "alert_labels",
    "apply_silences",
    "decide",
    "deliver",
    "deliver_within",
    "group_events",
    "load_states",
    "mark_silenced",
    "parse_matcher",
    "problem_lines",
    "queue",
    "render",
    "silence_json",
    "transitions",
]
