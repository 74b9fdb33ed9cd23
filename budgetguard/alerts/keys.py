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
from dataclasses import dataclass
from datetime import datetime

from budgetguard.alerts.grouping import carried_keys, group_events
from budgetguard.alerts.lifecycle import (
    AlertEvent,
    AlertState,
    conditions,
    fire_key,
    transitions,
)
from budgetguard.alerts.silences import Held, Silence, SilenceOutcome, apply_silences
from budgetguard.evaluate.evaluator import Finding
from budgetguard.rules.model import alert_identity

__all__ = ["alert_keys", "report_keys"]

#: The alert states and silence holds an evaluation starts from.
Start = tuple[Mapping[str, AlertState], Mapping[str, Held]]


@dataclass(frozen=True)
class _Pass:
    """One evaluation's transitions through the silences, as ``check --notify`` would make
    them (nothing written)."""

    after: dict[str, AlertState]
    events: list[AlertEvent]
    outcome: SilenceOutcome


def _run(
    findings: Sequence[Finding],
    start: Start,
    silences: Sequence[Silence],
    now: datetime,
    installation: str,
    names: Mapping[str, str] | None,
) -> _Pass:
    states, held = start
    changed, events = transitions(findings, states, now, installation=installation)
    after = {**states, **changed}
    outcome = apply_silences(
        events, findings, after, silences, held, now, names, installation=installation
    )
    return _Pass(after, events, outcome)


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
    return _keys(
        findings, _run(findings, (states, held), silences, now, installation, names), installation
    )


def report_keys(
    findings: Sequence[Finding],
    current: Start,
    before: Start | None,
    silences: Sequence[Silence],
    now: datetime,
    installation: str,
    names: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[tuple[AlertEvent, str]]]:
    """The report's keys: identity -> key of every alert that holds now (against
    ``current``), and the resolutions this evaluation causes against ``before`` (the states
    before its notifications; None: ``current``, one pass for both), each with the key its
    notification carries: the lead's where a resolution is grouped with others, its own
    where it goes alone or a silence holds it."""
    ours = _run(findings, current, silences, now, installation, names)
    theirs = ours if before is None else _run(findings, before, silences, now, installation, names)
    return _keys(findings, ours, installation), _resolved(theirs)


def _keys(findings: Sequence[Finding], done: _Pass, installation: str) -> dict[str, str]:
    keys = carried_keys(group_events(done.outcome.send))
    for event in done.outcome.silenced:
        if event.event == "fire":
            keys.setdefault(event.identity, event.key)
    out: dict[str, str] = {}
    for finding in findings:
        for kind, threshold, holds, _ in conditions(finding):
            if not holds:
                continue
            tkey = threshold.key if threshold is not None else ""
            identity = alert_identity(finding.budget.name, finding.group, kind, tkey)
            state = done.after.get(identity) or AlertState(
                identity, finding.budget.name, tuple(sorted(finding.group.items())), kind, tkey
            )
            out[identity] = keys.get(identity) or fire_key(installation, state)
    return out


def _resolved(done: _Pass) -> list[tuple[AlertEvent, str]]:
    keys: dict[str, str] = {}
    for note in group_events(done.outcome.send):
        for event in note.events:
            if event.event == "resolve":
                keys.setdefault(event.identity, note.key)
    return [(e, keys.get(e.identity, e.key)) for e in done.events if e.event == "resolve"]
