"""The outbox: queue notifications with their alert transitions (``queue``), and render them.

Delivery (claim -> send with a deadline -> record) is ``alerts/delivery.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection

from budgetguard.alerts.grouping import Notification, carried_keys
from budgetguard.alerts.lifecycle import AlertEvent, AlertState, state_of, stored_of
from budgetguard.evaluate.evaluator import Finding
from budgetguard.notify import Alert, money
from budgetguard.notify.alert_text import alert_summary
from budgetguard.rules.needs import endpoints_of
from budgetguard.store.alerts import AlertStore

__all__ = ["carried", "load_states", "queue", "render"]


def load_states(store: AlertStore) -> dict[str, AlertState]:
    return {s.identity: state_of(s) for s in store.states()}


def carried(
    changed: Mapping[str, AlertState],
    states: Mapping[str, AlertState],
    notifications: Iterable[Notification],
) -> dict[str, AlertState]:
    """``changed``, plus each fired alert's ``fire_key``: the key of the (first)
    notification that carries its fire — the lead's, when thresholds are grouped — so the
    report, reminders and the resolution name the incident its receivers got."""
    out = dict(changed)
    for identity, key in carried_keys(notifications).items():
        state = out.get(identity) or states.get(identity)
        if state is not None and state.fire_key is None:
            out[identity] = replace(state, fire_key=key)
    return out


def _window(f: Finding) -> str:
    b = f.budget
    if b.window:
        return f"over the last {b.window}"
    if b.period:
        return "today" if b.period == "day" else f"this {b.period}"
    return f"in the last {b.anomaly.window}" if b.anomaly else ""


def _iso(at: datetime | int | None) -> str | None:
    if at is None:
        return None
    moment = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _threshold_at(event: AlertEvent) -> str | None:
    t = event.threshold
    if t is None:
        return None
    return t.at if isinstance(t.at, str) else money(float(t.at))


def _limit_reached_on(f: Finding) -> str | None:
    """The day spend reaches the limit at the forecast's pace (its mean daily spend from
    now to the period's end), or None when the forecast stays under it."""
    end = f.window.period_end
    if end is None or f.forecast is None or f.spend is None or f.limit is None:
        return None
    if f.spend >= f.limit:
        return f.window.end.date().isoformat()
    left = (end - f.window.end).total_seconds()
    rate = (f.forecast - f.spend) / Decimal(left) if left > 0 else Decimal(0)
    if rate <= 0 or f.forecast < f.limit:
        return None
    reach = f.window.end + timedelta(seconds=float((f.limit - f.spend) / rate))
    return reach.date().isoformat()


def _missing(f: Finding, data_end: Callable[[str], int | None] | None) -> tuple[list[str], str]:
    """The budget's own queries that lack data (none collected, or older than its
    ``max_staleness``), and since when: the oldest end of their data, else the window's
    start. All its queries when none of them looks stale (a hole inside the window)."""
    sources = sorted(endpoints_of(f.budget))
    if data_end is None:
        return sources, str(_iso(f.window.start))
    now = int(f.window.end.timestamp())
    stale = int(f.budget.staleness_delta.total_seconds())
    ends = {q: data_end(q) for q in sources}
    lacking = [q for q, e in ends.items() if e is None or now - e > stale] or sources
    known = [e for q, e in ends.items() if q in lacking and e is not None]
    return lacking, str(_iso(min(known) if known else f.window.start))


def render(
    note: Notification,
    names: Mapping[str, str] | None = None,
    fired_spend: Decimal | float | None = None,
    data_end: Callable[[str], int | None] | None = None,
) -> Alert:
    """The notification as every later stage sees it — one typed shape from here to the
    plugin, whose ``to_payload()`` the outbox stores: the contract's alert fields plus type,
    message, fired_at and ``thresholds`` (every transition it groups), and the facts the
    message is made of."""
    event = note.lead
    f = event.finding
    known = names or {}
    body: dict[str, object] = {
        "type": "budgetguard.alert",
        "budget": f.budget.name,
        "group": dict(f.group),
        "kind": event.contract_kind,
        "event": event.event,
        "severity": event.severity,
        "threshold": None if event.threshold is None else float(event.threshold.ratio),
        "spend": _num(f.spend),
        "limit": _num(f.limit),
        "key": note.key,
        "metric": f.budget.metric,
        "window": _window(f),
        "window_start": _iso(f.window.start),
        "forecast": _num(f.forecast),
        "source": f.source,
        "fired_at": _iso(event.at),
        "since": _iso(event.since),
        "fire_key": event.fire_key or None,  # the key of this episode's firing
        "thresholds": [
            {
                "kind": e.kind,
                "event": e.event,
                "threshold": None if e.threshold is None else float(e.threshold.ratio),
                "at": _threshold_at(e),
                "severity": e.severity,
                "key": e.key,
                "fire_key": e.fire_key or None,
            }
            for e in note.events
        ],
        "names": {v: known[v] for v in f.group.values() if v in known},
        "description": f.budget.description,
        "runbook_url": f.budget.runbook_url,
        "labels": dict(f.budget.labels),
        "note": f.note,
    }
    if event.event == "resolve":
        body["resolved_kind"] = event.kind
        body["fired_spend"] = None if fired_spend is None else float(fired_spend)
    if event.kind == "no_data" and event.event != "resolve":
        body["queries"], body["missing_since"] = _missing(f, data_end)
    if event.kind == "data" and event.event != "resolve":
        body["data_problem"] = f.extra.get("mismatch")
    if event.kind == "drift" and event.event != "resolve":
        body["drift"] = list(f.extra.get("drift") or ())
    if event.kind == "forecast":
        body["limit_reached_on"] = _limit_reached_on(f)
    if event.kind == "anomaly":
        body["baseline"] = _num(f.anomaly_baseline)
    body["message"] = alert_summary(body)
    return Alert.from_payload(body)


def queue(
    store: AlertStore,
    changed: Mapping[str, AlertState],
    notifications: Iterable[Notification],
    now: datetime,
    *,
    names: Mapping[str, str] | None = None,
    data_end: Callable[[str], int | None] | None = None,
    also: Callable[[Connection], None] | None = None,
) -> int:
    """Record the transitions and their notifications in one transaction (with ``also``)."""
    states = [stored_of(s) for s in changed.values()]
    rows = []
    for note in notifications:
        fired = None
        for event in note.events if note.lead.event == "resolve" else ():
            value = store.payload_value(event.fire_key, "spend")
            if isinstance(value, int | float):
                fired = float(value)
                break
        alert = render(note, names, fired, data_end)
        rows.append((note.key, note.notifier, json.dumps(alert.to_payload())))
    return store.apply(states, rows, int(now.timestamp()), also)
