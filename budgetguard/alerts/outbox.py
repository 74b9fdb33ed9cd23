"""The outbox: queue notifications with their alert transitions (``queue``), and render them.

Delivery (claim -> send with a deadline -> record) is ``alerts/delivery.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime

from budgetguard.alerts.lifecycle import AlertEvent, AlertState
from budgetguard.evaluate.evaluator import Finding, group_label
from budgetguard.notify import Alert, money
from budgetguard.store.alerts import AlertStore, StoredAlert

__all__ = ["load_states", "queue", "render"]


def load_states(store: AlertStore) -> dict[str, AlertState]:
    states = {}
    for stored in store.states():
        fields = asdict(stored)
        fields["group"] = tuple(tuple(pair) for pair in json.loads(fields.pop("group_json")))
        states[stored.identity] = AlertState(**fields)
    return states


def _stored(state: AlertState) -> StoredAlert:
    fields = asdict(state)
    fields["group_json"] = json.dumps([list(pair) for pair in fields.pop("group")])
    return StoredAlert(**fields)


def _window(f: Finding) -> str:
    b = f.budget
    if b.window:
        return f"last {b.window}"
    if b.period:
        return f"this {b.period}"
    return f"last {b.anomaly.window}" if b.anomaly else ""


def render(event: AlertEvent) -> Alert:
    """The alert as every later stage sees it — one typed shape from here to the plugin; the
    outbox stores its ``to_payload()`` (the contract's body)."""
    f = event.finding
    spend = None if f.spend is None else float(f.spend)
    limit = None if f.limit is None else float(f.limit)
    label = f.budget.name + (f" [{group_label(f.group)}]" if f.group else "")
    if event.event == "resolve":
        message = f"RESOLVED {label}: {event.kind} back under"
    elif event.kind == "no_data":
        message = f"NO DATA {label}: {f.note}"
    elif event.kind == "anomaly":
        window = f.budget.anomaly.window if f.budget.anomaly else "window"
        usual = money(float(f.anomaly_baseline or 0))
        message = f"SPIKE {label}: {money(spend)} in the last {window} vs {usual} usual"
    else:
        ratio = f" ({f.ratio:.0%})" if f.ratio is not None else ""
        what = "forecast " if event.kind == "forecast" else ""
        value = float(f.forecast) if event.kind == "forecast" and f.forecast else spend
        message = f"{event.severity.upper()} {label}: {what}{money(value)} of {money(limit)}{ratio}"
        if event.threshold is not None:  # several thresholds may fire at once: say which
            at = event.threshold.at
            message += f", threshold {at if isinstance(at, str) else money(float(at))}"
    if event.event == "remind":
        message = "REMINDER " + message
    return Alert(
        key=event.key,
        summary=message,
        severity=event.severity,
        kind=event.contract_kind,
        budget=f.budget.name,
        group=dict(f.group),
        spend=f.spend,
        limit=f.limit,
        forecast=f.forecast,
        threshold=None if event.threshold is None else event.threshold.ratio,
        window=_window(f),
        source=f.source,
        fired_at=event.at.isoformat().replace("+00:00", "Z"),
    )


def queue(
    store: AlertStore,
    changed: Mapping[str, AlertState],
    events: Iterable[AlertEvent],
    now: datetime,
) -> int:
    """Record the transitions and their notifications in one transaction."""
    states = [_stored(s) for s in changed.values()]
    rows = [(e.key, name, json.dumps(render(e).to_payload())) for e in events for name in e.notify]
    return store.apply(states, rows, int(now.timestamp()))
