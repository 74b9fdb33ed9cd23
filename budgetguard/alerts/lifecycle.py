"""Findings -> alert transitions: fire once per period or crossing, resolve, remind, no_data.

Pure: it takes the current states and returns the new ones with the events they cause, so the
service, ``check --notify`` and ``backtest`` (with a state kept in memory) share one logic.
Every idempotency key is a hash of the store's installation id, the alert's identity, its
episode and the transition: the same on every retry and replica of one store, different in
every other store (staging and production never merge each other's incidents).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from budgetguard.evaluate.evaluator import Finding
from budgetguard.json_numbers import json_number
from budgetguard.rules.model import BurnRatePair, NotifyEntry, Threshold, alert_identity
from budgetguard.store.columns import StoredAlert

__all__ = [
    "AlertEvent",
    "AlertState",
    "Decision",
    "Trigger",
    "active_alerts",
    "conditions",
    "decide",
    "fire_key",
    "resolved_alerts",
    "routes",
    "state_of",
    "stored_of",
    "transitions",
]

Kind = Literal["threshold", "forecast", "burn_rate", "anomaly", "no_data", "data", "drift"]
#: What an alert is about beyond its kind: a threshold, a burn-rate pair, or nothing.
Trigger = Threshold | BurnRatePair
#: the contract's alert kind of each internal one: costs that do not add up (``data``) are a
#: ``no_data`` alert at warning severity (the data cannot be trusted)
CONTRACT_KIND = {"data": "no_data"}
Action = Literal["fire", "remind", "resolve", "none"]


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
    fire_key: str | None = None  # the key of the notification that carried this episode's fire


def state_of(stored: StoredAlert) -> AlertState:
    """An alert state as the stages use it, from the store's row."""
    group = tuple((str(k), str(v)) for k, v in json.loads(stored.group_json))
    return AlertState(
        stored.identity,
        stored.budget,
        group,
        stored.kind,
        stored.threshold,
        stored.state,
        stored.period_key,
        stored.since,
        stored.last_sent_at,
        stored.episode,
        stored.fire_key,
    )


def stored_of(state: AlertState) -> StoredAlert:
    """The store's row of an alert state."""
    group = json.dumps([list(pair) for pair in state.group])
    return StoredAlert(
        state.identity,
        state.budget,
        group,
        state.kind,
        state.threshold,
        state.state,
        state.period_key,
        state.since,
        state.last_sent_at,
        state.episode,
        state.fire_key,
    )


@dataclass(frozen=True)
class AlertEvent:
    """Something to tell people: an alert fired, was reminded of, or resolved."""

    event: Literal["fire", "remind", "resolve"]
    kind: str  # threshold | forecast | burn_rate | anomaly | no_data
    severity: str
    finding: Finding
    threshold: Trigger | None
    key: str  # idempotency key: the same on every retry and replica
    at: datetime
    notify: tuple[str | NotifyEntry, ...]
    since: int | None = None  # when the episode began firing (Unix seconds)
    fire_key: str = ""  # the key of the episode's fire, to find its figures at firing
    identity: str = ""  # the alert's (``alert_identity``)

    @property
    def contract_kind(self) -> str:
        return "resolved" if self.event == "resolve" else CONTRACT_KIND.get(self.kind, self.kind)


@dataclass(frozen=True)
class Decision:
    """What to do about one alert now, and why (after Alertmanager's ``needsUpdate``)."""

    action: Action
    reason: str
    state: AlertState  # the state after it (the same object when nothing changes)
    sequence: int = 0  # which reminder of the episode (keys reminders apart)


def decide(
    state: AlertState,
    holds: bool,
    at: int,
    *,
    period: str | None,
    repeat: timedelta | None,
) -> Decision:
    """Fire, remind, resolve or nothing, and why: a pure function of the alert's state,
    whether its condition holds, the instant, its calendar period (None: a rolling window
    or no_data, which fire once per crossing) and its ``repeat``."""
    if holds and state.state != "firing":
        if period is not None and state.period_key == period:
            return Decision("none", "holds again, but already fired in this period", state)
        new = replace(
            state,
            state="firing",
            period_key=period,
            since=at,
            last_sent_at=at,
            episode=state.episode + 1,
            fire_key=None,  # until a notification carries the new fire
        )
        return Decision("fire", "crossed", new)
    if holds and period is not None and state.period_key != period:
        new = replace(
            state,
            period_key=period,
            since=at,
            last_sent_at=at,
            episode=state.episode + 1,
            fire_key=None,
        )
        return Decision("fire", "still over in a new period", new)
    if holds and repeat is not None and state.last_sent_at is not None:
        every = int(repeat.total_seconds())
        if at - state.last_sent_at >= every:
            sequence = (at - (state.since or at)) // every
            reason = f"still firing {every}s after the last notification"
            return Decision("remind", reason, replace(state, last_sent_at=at), sequence)
        return Decision("none", "firing; the next reminder is not due", state)
    if holds:
        return Decision("none", "firing; notified once per crossing", state)
    if state.state == "firing":
        return Decision("resolve", "no longer holds", replace(state, state="ok", since=at))
    return Decision("none", "does not hold", state)


def _key(installation: str, identity: str, episode: int, event: str, sequence: int = 0) -> str:
    raw = json.dumps([installation, identity, episode, event, sequence])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def fire_key(installation: str, state: AlertState) -> str:
    """The key the notification of the fire of ``state``'s episode carried (or will carry
    when it goes alone): what its reminders and its resolution refer to."""
    return state.fire_key or _key(installation, state.identity, state.episode, "fire")


def conditions(finding: Finding) -> Iterable[tuple[Kind, Trigger | None, bool, str]]:
    """(kind, threshold or pair, holds, severity) for every alert a finding's budget can
    raise. A burn-rate pair whose windows are unknown raises nothing: it neither fires nor
    resolves (the finding's note says why)."""
    budget = finding.budget
    drift = finding.extra.get("drift")
    if drift is not None:  # OpenAI's live controls vs the rules' controls: (budgetguard.watch)
        yield "drift", None, bool(drift), "warning"
        return
    known = finding.severity != "unknown"
    yield "no_data", None, not known, "unknown"
    if not known:
        return
    for t in budget.thresholds:
        yield "threshold", t, t in finding.crossed, t.severity
        if budget.forecast or t.forecast:
            yield "forecast", t, t in finding.forecast_crossed, "warning"
    for rate in finding.burn:
        if rate.known:
            yield "burn_rate", rate.pair, rate.holds, rate.pair.severity
    if budget.anomaly is not None:
        yield "anomaly", None, finding.anomaly, "warning"
    if budget.metric == "cost" and budget.source == "auto":  # costs that do not add up
        yield "data", None, bool(finding.extra.get("mismatch")), "warning"


def routes(finding: Finding, threshold: Trigger | None) -> tuple[str | NotifyEntry, ...]:
    """Where an alert goes: its threshold's (or pair's) ``notify`` if set, else its
    budget's."""
    if threshold is not None and threshold.notify:
        return tuple(threshold.notify)
    return tuple(finding.budget.notify)


def transitions(
    findings: Iterable[Finding],
    states: Mapping[str, AlertState],
    now: datetime,
    *,
    installation: str = "",
) -> tuple[dict[str, AlertState], list[AlertEvent]]:
    """New states (only those that changed) and the events to deliver, keyed for the store
    ``installation`` (empty only where nothing is delivered: backtests)."""
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
                threshold: Trigger | None = threshold,
                identity: str = identity,
                notify: tuple[str | NotifyEntry, ...] = notify,
                prior: AlertState = state,
            ) -> AlertEvent:
                key = _key(installation, identity, st.episode, name, seq)
                return AlertEvent(
                    name,
                    kind,
                    severity if name != "resolve" else "ok",
                    finding,
                    threshold,
                    key,
                    now,
                    notify,
                    prior.since if name != "fire" else at,
                    key if name == "fire" else fire_key(installation, prior),
                    identity,
                )

            decision = decide(
                state,
                holds,
                at,
                # a pace fires per crossing: a second runaway in a month is paged too
                period=period if kind not in ("no_data", "burn_rate") else None,
                repeat=budget.repeat_delta,
            )
            if decision.action != "none":
                changed[identity] = decision.state
                events.append(event(decision.action, decision.state, decision.sequence))
    return changed, events


def active_alerts(findings: Iterable[Finding], keys: Mapping[str, str]) -> list[dict[str, object]]:
    """The alerts that hold now, in the JSON report's shape; ``keys`` (identity -> key) are
    the keys their notifications carry (``alerts/keys.py``)."""
    out: list[dict[str, object]] = []
    for finding in findings:
        for kind, threshold, holds, severity in conditions(finding):
            if not holds:
                continue
            tkey = threshold.key if threshold is not None else ""
            identity = alert_identity(finding.budget.name, finding.group, kind, tkey)
            out.append(
                {
                    "budget": finding.budget.name,
                    "group": dict(finding.group),
                    "kind": CONTRACT_KIND.get(kind, kind),
                    "severity": severity,
                    "threshold": None if threshold is None else float(threshold.ratio),
                    "spend": json_number(finding.spend, finding.budget.metric),
                    "limit": json_number(finding.limit, finding.budget.metric),
                    "key": keys[identity],
                }
            )
    return out


def resolved_alerts(resolved: Iterable[tuple[AlertEvent, str]]) -> list[dict[str, object]]:
    """The resolutions of this evaluation in the JSON report's shape (kind ``resolved``),
    each with the key its notification carries (``alerts/keys.py``)."""
    return [
        {
            "budget": event.finding.budget.name,
            "group": dict(event.finding.group),
            "kind": event.contract_kind,
            "severity": event.severity,
            "threshold": None if event.threshold is None else float(event.threshold.ratio),
            "spend": json_number(event.finding.spend, event.finding.budget.metric),
            "limit": json_number(event.finding.limit, event.finding.budget.metric),
            "key": key,
        }
        for event, key in resolved
    ]
