"""The key each active alert's notification carries, for the JSON report.

An alert's key in the report is the idempotency key of the notification that fired it —
what a webhook gets as ``X-BudgetGuard-Key`` (or ``webhook-id``), PagerDuty as ``dedup_key``
— so CI and automation can correlate a report with a delivery. For an alert that already
fired, the store knows it (``fire_key``). For one that would fire now, it is worked out the
way ``check --notify`` would queue it — transitions, silences, grouping — without writing
anything: the lead threshold's key when it is grouped, its own when it goes alone or is held
by a silence (held notifications keep their own key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from budgetguard.alerts.grouping import carried_keys, group_events
from budgetguard.alerts.lifecycle import (
    AlertEvent,
    AlertState,
    conditions,
    fire_key,
    transitions,
)
from budgetguard.alerts.silences import Held, Silence, apply_silences
from budgetguard.evaluate.evaluator import Finding
from budgetguard.rules.model import alert_identity

__all__ = ["alert_keys", "resolutions"]


def alert_keys(
    findings: Sequence[Finding],
    states: Mapping[str, AlertState],
    held: Mapping[str, Held],
    silences: Sequence[Silence],
    now: datetime,
    installation: str,
    names: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """identity -> key, for every alert that holds now."""
    changed, events = transitions(findings, states, now, installation=installation)
    after = {**states, **changed}
    outcome = apply_silences(
        events, findings, after, silences, held, now, names, installation=installation
    )
    keys = carried_keys(group_events(outcome.send))
    for event in outcome.silenced:
        if event.event == "fire":
            keys.setdefault(event.identity, event.key)
    out: dict[str, str] = {}
    for finding in findings:
        for kind, threshold, holds, _ in conditions(finding):
            if not holds:
                continue
            tkey = threshold.key if threshold is not None else ""
            identity = alert_identity(finding.budget.name, finding.group, kind, tkey)
            state = after.get(identity) or AlertState(
                identity, finding.budget.name, tuple(sorted(finding.group.items())), kind, tkey
            )
            out[identity] = keys.get(identity) or fire_key(installation, state)
    return out


def resolutions(
    findings: Sequence[Finding],
    states: Mapping[str, AlertState],
    held: Mapping[str, Held],
    silences: Sequence[Silence],
    now: datetime,
    installation: str,
    names: Mapping[str, str] | None = None,
) -> list[tuple[AlertEvent, str]]:
    """The resolutions this evaluation causes against ``states`` (the alert states before
    it), each with the key its notification carries: the lead's where a resolution is
    grouped with others, its own where it goes alone or a silence holds it."""
    changed, events = transitions(findings, states, now, installation=installation)
    outcome = apply_silences(
        events,
        findings,
        {**states, **changed},
        silences,
        held,
        now,
        names,
        installation=installation,
    )
    keys: dict[str, str] = {}
    for note in group_events(outcome.send):
        for event in note.events:
            if event.event == "resolve":
                keys.setdefault(event.identity, note.key)
    return [(e, keys.get(e.identity, e.key)) for e in events if e.event == "resolve"]
