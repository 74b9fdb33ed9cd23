"""Findings -> alert transitions: fire once per period or crossing, resolve, remind, no_data.

Pure: it takes the current states and returns the new ones with the events they cause, so the
service, ``check --notify`` and ``backtest`` (with a state kept in memory) share one logic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from budgetguard.evaluate.evaluator import Finding
from budgetguard.rules.model import NotifyEntry, Threshold, alert_identity

__all__ = ["AlertEvent", "AlertState", "active_alerts", "conditions", "routes", "transitions"]

Kind = Literal["threshold", "forecast", "anomaly", "no_data"]


@dataclass(frozen=True)
class AlertState:
    identity: str
    budget: str
    group: tuple[tuple[str, str], ...]
    kind: str
    threshold: str
    state: str = "ok"  # ok | firing
    period_key: str | None = None  # the period it last fired in (calendar budgets)
    since: int | None = None
    last_sent_at: int | None = None
    episode: int = 0


@dataclass(frozen=True)
class AlertEvent:
    """Something to tell people: an alert fired, was reminded of, or resolved."""

    event: Literal["fire", "remind", "resolve"]
    kind: str  # threshold | forecast | anomaly | no_data
    severity: str
    finding: Finding
    threshold: Threshold | None
    key: str  # idempotency key: the same on every retry and replica
    at: datetime
    notify: tuple[str | NotifyEntry, ...]
    since: int | None = None  # when the episode began firing (Unix seconds)
    fire_key: str = ""  # the key of the episode's fire, to find its figures at firing

    @property
    def contract_kind(self) -> str:
        return "resolved" if self.event == "resolve" else self.kind


def _key(identity: str, episode: int, event: str, sequence: int = 0) -> str:
    raw = json.dumps([identity, episode, event, sequence])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def conditions(finding: Finding) -> Iterable[tuple[Kind, Threshold | None, bool, str]]:
    """(kind, threshold, holds, severity) for every alert a finding's budget can raise."""
    budget = finding.budget
    known = finding.severity != "unknown"
    yield "no_data", None, not known, "unknown"
    if not known:
        return
    for t in budget.thresholds:
        yield "threshold", t, t in finding.crossed, t.severity
        if budget.forecast:
            yield "forecast", t, t in finding.forecast_crossed, "warning"
    if budget.anomaly is not None:
        yield "anomaly", None, finding.anomaly, "warning"


def routes(finding: Finding, threshold: Threshold | None) -> tuple[str | NotifyEntry, ...]:
    """Where an alert goes: its threshold's ``notify`` if set, else its budget's."""
    if threshold is not None and threshold.notify:
        return tuple(threshold.notify)
    return tuple(finding.budget.notify)


def transitions(
    findings: Iterable[Finding], states: Mapping[str, AlertState], now: datetime
) -> tuple[dict[str, AlertState], list[AlertEvent]]:
    """New states (only those that changed) and the events to deliver."""
    at = int(now.timestamp())
    changed: dict[str, AlertState] = {}
    events: list[AlertEvent] = []
    for finding in findings:
        budget = finding.budget
        group = tuple(sorted(finding.group.items()))
        period = finding.window.start.isoformat() if finding.window.kind == "period" else None
        for kind, threshold, holds, severity in conditions(finding):
            tkey = threshold.key if threshold is not None else ""
            identity = alert_identity(budget.name, dict(group), kind, tkey)
            state = states.get(identity) or AlertState(identity, budget.name, group, kind, tkey)
            notify = routes(finding, threshold)

            def event(
                name: Literal["fire", "remind", "resolve"],
                st: AlertState,
                seq: int = 0,
                *,
                kind: str = kind,
                severity: str = severity,
                finding: Finding = finding,
                threshold: Threshold | None = threshold,
                identity: str = identity,
                notify: tuple[str | NotifyEntry, ...] = notify,
                prior: AlertState = state,
            ) -> AlertEvent:
                return AlertEvent(
                    name,
                    kind,
                    severity if name != "resolve" else "ok",
                    finding,
                    threshold,
                    _key(identity, st.episode, name, seq),
                    now,
                    notify,
                    prior.since if name != "fire" else at,
                    _key(identity, st.episode, "fire"),
                )

            new_period = period is not None and kind != "no_data" and state.period_key != period
            if holds and (state.state != "firing" or new_period):
                if period is not None and kind != "no_data" and state.period_key == period:
                    continue  # once per period: it already fired in this one
                new = replace(
                    state,
                    state="firing",
                    period_key=period,
                    since=at,
                    last_sent_at=at,
                    episode=state.episode + 1,
                )
                changed[identity] = new
                events.append(event("fire", new))
            elif holds and budget.repeat_delta is not None and state.last_sent_at is not None:
                every = int(budget.repeat_delta.total_seconds())
                if at - state.last_sent_at >= every:
                    sequence = (at - (state.since or at)) // every
                    new = replace(state, last_sent_at=at)
                    changed[identity] = new
                    events.append(event("remind", new, sequence))
            elif not holds and state.state == "firing":
                new = replace(state, state="ok", since=at)
                changed[identity] = new
                events.append(event("resolve", new))
    return changed, events


def active_alerts(findings: Iterable[Finding]) -> list[dict[str, object]]:
    """The alerts that hold now, in the JSON report's shape (no state needed)."""
    out: list[dict[str, object]] = []
    for finding in findings:
        period = finding.window.start.isoformat() if finding.window.kind == "period" else ""
        for kind, threshold, holds, severity in conditions(finding):
            if not holds:
                continue
            tkey = threshold.key if threshold is not None else ""
            identity = alert_identity(finding.budget.name, finding.group, kind, tkey)
            out.append(
                {
                    "budget": finding.budget.name,
                    "group": dict(finding.group),
                    "kind": kind,
                    "severity": severity,
                    "threshold": None if threshold is None else float(threshold.ratio),
                    "spend": _number(finding.spend),
                    "limit": _number(finding.limit),
                    "key": _key(identity, 0, period),
                }
            )
    return out


def _number(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)
