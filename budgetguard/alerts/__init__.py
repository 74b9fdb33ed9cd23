"""Alerts: the lifecycle of each (budget, group, kind, threshold), silences, grouping, the
outbox and delivery — decide -> silence -> group -> queue -> deliver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from budgetguard.lazy import lazy_exports

if TYPE_CHECKING:
    from budgetguard.alerts.delivery import (
        DEFAULT_POLICY,
        DeliveryPolicy,
        DeliveryReport,
        deliver,
        deliver_within,
        problem_lines,
    )
    from budgetguard.alerts.grouping import Notification, group_events
    from budgetguard.alerts.keys import alert_keys
    from budgetguard.alerts.lifecycle import (
        AlertEvent,
        AlertState,
        Decision,
        active_alerts,
        decide,
        transitions,
    )
    from budgetguard.alerts.outbox import carried, load_states, queue, render
    from budgetguard.alerts.silences import (
        Held,
        Silence,
        SilenceOutcome,
        alert_labels,
        apply_silences,
        mark_silenced,
        matches_everything,
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
    "alert_keys",
    "alert_labels",
    "apply_silences",
    "carried",
    "decide",
    "deliver",
    "deliver_within",
    "group_events",
    "load_states",
    "mark_silenced",
    "matches_everything",
    "parse_matcher",
    "problem_lines",
    "queue",
    "render",
    "silence_json",
    "transitions",
]


#: where each name lives: a module is imported when one of its names is first used, so a
#: read-only check never imports the outbox or delivery (and through them, SQLAlchemy)
_HOME = {
    "AlertEvent": "lifecycle",
    "AlertState": "lifecycle",
    "DEFAULT_POLICY": "delivery",
    "Decision": "lifecycle",
    "DeliveryPolicy": "delivery",
    "DeliveryReport": "delivery",
    "Held": "silences",
    "Notification": "grouping",
    "Silence": "silences",
    "SilenceOutcome": "silences",
    "active_alerts": "lifecycle",
    "alert_keys": "keys",
    "alert_labels": "silences",
    "apply_silences": "silences",
    "carried": "outbox",
    "decide": "lifecycle",
    "deliver": "delivery",
    "deliver_within": "delivery",
    "group_events": "grouping",
    "load_states": "outbox",
    "mark_silenced": "silences",
    "matches_everything": "silences",
    "parse_matcher": "silences",
    "problem_lines": "delivery",
    "queue": "outbox",
    "render": "outbox",
    "silence_json": "silences",
    "transitions": "lifecycle",
}

__getattr__ = lazy_exports(__name__, _HOME)
