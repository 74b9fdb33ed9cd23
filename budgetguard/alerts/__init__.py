"""Alerts: the lifecycle of each (budget, group, kind, threshold), silences, grouping and the
outbox — decide -> silence -> group -> queue -> deliver."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


#: where each name lives: a module is imported when one of its names is first used, so a
#: read-only check never imports the outbox (and through it, SQLAlchemy)
_HOME = {
    "AlertEvent": "lifecycle",
    "AlertState": "lifecycle",
    "DeliveryReport": "outbox",
    "Held": "silences",
    "Notification": "grouping",
    "Silence": "silences",
    "SilenceOutcome": "silences",
    "active_alerts": "lifecycle",
    "alert_labels": "silences",
    "apply_silences": "silences",
    "deliver": "outbox",
    "group_events": "grouping",
    "load_states": "outbox",
    "mark_silenced": "silences",
    "parse_matcher": "silences",
    "queue": "outbox",
    "render": "outbox",
    "silence_json": "silences",
    "transitions": "lifecycle",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
