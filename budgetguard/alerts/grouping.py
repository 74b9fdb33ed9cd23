"""Alert events -> notifications: one per (budget, group) and notifier per evaluation.

Pure, after Alertmanager's dispatcher: crossing 75, 90 and 100 % at once is one page, not
three. A notification goes out at the highest severity among its events and carries the key of
its lead event: the highest threshold that fired (or was reminded of), else the highest that
resolved. Each ``notify`` entry gets only the transitions it subscribes to (``on:``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from budgetguard.alerts.lifecycle import AlertEvent
from budgetguard.evaluate.evaluator import SEVERITY_ORDER
from budgetguard.rules.model import route_name, route_wants

__all__ = ["Notification", "carried_keys", "group_events"]

_EVENT_RANK = {"resolve": 0, "remind": 1, "fire": 2}


@dataclass(frozen=True)
class Notification:
    """What one notifier is told about one (budget, group) in one evaluation."""

    notifier: str
    events: tuple[AlertEvent, ...]  # the lead event first, then the others by rank

    @property
    def lead(self) -> AlertEvent:
        return self.events[0]

    @property
    def key(self) -> str:
        return self.lead.key

    @property
    def severity(self) -> str:
        return self.lead.severity


def _rank(event: AlertEvent) -> tuple[bool, int, Decimal, int, str]:
    """Firing before resolved; then severity, threshold height, fire before remind."""
    ratio = event.threshold.ratio if event.threshold is not None else Decimal(0)
    return (
        event.event != "resolve",
        SEVERITY_ORDER.get(event.severity, 0),
        ratio,
        _EVENT_RANK[event.event],
        event.kind,
    )


def group_events(events: Iterable[AlertEvent]) -> list[Notification]:
    """The notifications ``events`` cause, in the order their (budget, group) first appears."""
    buckets: dict[tuple[str, tuple[tuple[str, str], ...], str], list[AlertEvent]] = {}
    for event in events:
        finding = event.finding
        scope = (finding.budget.name, tuple(sorted(finding.group.items())))
        for route in event.notify:
            found = buckets.setdefault((*scope, route_name(route)), [])
            if route_wants(route, event.event) and event not in found:
                found.append(event)
    return [
        Notification(name, tuple(sorted(found, key=_rank, reverse=True)))
        for (_, _, name), found in buckets.items()
        if found
    ]


def carried_keys(notifications: Iterable[Notification]) -> dict[str, str]:
    """Alert identity -> the key of the first notification that carries its fire (the
    lead's, when thresholds are grouped)."""
    keys: dict[str, str] = {}
    for note in notifications:
        for event in note.events:
            if event.event == "fire":
                keys.setdefault(event.identity, note.key)
    return keys
