"""What the status page shows beyond the check's own report, added to the same ``/status``
body by the tick (in its worker): each budget's spend series, the last 30 days' timeline
(alerts, deliveries, silences), coverage per endpoint per day, and data freshness.

The page (``service/page/``) renders only this body: it never reads the store or the API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.series import SpendSeries, spend_series
from budgetguard.rules import Rules
from budgetguard.store import Store, SyncMark
from budgetguard.store.coverage import load_all
from budgetguard.store.silences import SilenceStore

__all__ = ["TIMELINE_DAYS", "page_data"]

TIMELINE_DAYS = 30
_DAY = 86400


def _iso(moment: datetime | int | None) -> str | None:
    if moment is None:
        return None
    at = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return at.isoformat().replace("+00:00", "Z")


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(round(value, 6))


def _series(s: SpendSeries) -> dict[str, Any]:
    f = s.finding
    limit = f.limit
    return {
        "budget": f.budget.name,
        "group": dict(f.group),
        "metric": f.budget.metric,
        "unit": s.unit,
        "start": _iso(s.start),
        "end": _iso(s.end),
        "steps": [
            [_iso(step.start), _num(step.costs), _num(step.estimate), _num(step.usage)]
            for step in s.steps
        ],
        "thresholds": [] if limit is None else [_num(t.ratio * limit) for t in f.budget.thresholds],
        "band": None if s.band is None else [_num(s.band[0]), _num(s.band[1])],
        "runs_out": _iso(s.runs_out),
    }


def _timeline(store: Store, since: int) -> list[dict[str, Any]]:
    """Alerts and action steps (once per key), deliveries (one per notifier) and silences
    since ``since``."""
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in store.alerts.outbox.recent(since):
        body = json.loads(row.payload)
        if body.get("type") == "budgetguard.alert" and row.idempotency_key not in seen:
            seen.add(row.idempotency_key)
            events.append(
                {
                    "at": body.get("fired_at") or _iso(row.created_at),
                    "kind": "alert",
                    "event": body.get("event")
                    or ("resolve" if body.get("kind") == "resolved" else "fire"),
                    "severity": body.get("severity"),
                    "budget": body.get("budget"),
                    "group": body.get("group") or {},
                    "text": body.get("message") or "",
                }
            )
        if body.get("type") == "budgetguard.action" and row.idempotency_key not in seen:
            seen.add(row.idempotency_key)
            events.append(
                {
                    "at": body.get("fired_at") or _iso(row.created_at),
                    "kind": "action",
                    "severity": body.get("severity"),
                    "budget": body.get("budget"),
                    "group": body.get("group") or {},
                    "text": body.get("message") or "",
                }
            )
        status = row.status
        if status == "pending":
            status = "retrying" if row.attempts else "queued"
        events.append(
            {
                "at": _iso(row.delivered_at or row.created_at),
                "kind": "delivery",
                "status": status,
                "notifier": row.notifier,
                "attempts": row.attempts,
                "budget": body.get("budget") or body.get("title") or "digest",
                "text": row.last_error or "",
            }
        )
    for sid, matchers, starts, ends, comment, _ in SilenceStore(store.engine).all():
        if int(ends.timestamp()) >= since:
            events.append(
                {
                    "at": _iso(starts),
                    "until": _iso(ends),
                    "kind": "silence",
                    "id": sid,
                    "matchers": [f"{k}={g}" for k, g in matchers],
                    "text": comment,
                }
            )
    events.sort(key=lambda e: str(e["at"]))
    return events


def _coverage(
    store: Store, marks: Sequence[SyncMark], planned: set[str], now: int
) -> dict[str, Any]:
    """Per endpoint and UTC day of the last 30: settled, estimated (costs not final yet, or
    today's usage) or missing; and how far costs are settled and usage collected."""
    spans = load_all(store.engine)
    today = now - now % _DAY
    settled_before = today - _DAY  # the costs of the last two UTC days may still change
    days = [today - i * _DAY for i in range(TIMELINE_DAYS - 1, -1, -1)]
    by_endpoint: dict[str, list[tuple[int, int]]] = {}
    ends: dict[str, int] = {}
    for mark in marks:
        if mark.query_key in planned:
            by_endpoint.setdefault(mark.endpoint, []).extend(spans.get(mark.query_key, []))
            if mark.covered_end is not None:
                ends[mark.endpoint] = max(ends.get(mark.endpoint, 0), mark.covered_end)

    def state(endpoint: str, day: int) -> str:
        end = min(day + _DAY, now)
        whole = any(a <= day and b >= end for a, b in by_endpoint[endpoint])
        if not whole:
            return "missing"
        if endpoint == "costs":
            return "settled" if day < settled_before else "estimated"
        return "settled" if day < today else "estimated"

    usage_ends = [end for endpoint, end in ends.items() if endpoint != "costs"]
    costs_end = ends.get("costs")
    return {
        "days": [_iso(d) for d in days],
        "endpoints": {e: [state(e, d) for d in days] for e in sorted(by_endpoint)},
        "freshness": {
            "costs_settled_to": _iso(min(costs_end, settled_before)) if costs_end else None,
            "usage_to": _iso(min(usage_ends)) if usage_ends else None,
        },
    }


def page_data(
    store: Store,
    rules: Rules,
    data: SpendData,
    findings: Sequence[Finding],
    now: datetime,
    marks: Sequence[SyncMark],
    planned: set[str],
) -> dict[str, Any]:
    """The keys the tick adds to ``/status`` for the page."""
    at = int(now.timestamp())
    since = int((now - timedelta(days=TIMELINE_DAYS)).timestamp())
    coverage = _coverage(store, marks, planned, at)
    return {
        "timezone": rules.timezone,
        "series": [_series(s) for s in spend_series(rules, data, findings, now)],
        "timeline": _timeline(store, since),
        "coverage": {"days": coverage["days"], "endpoints": coverage["endpoints"]},
        "freshness": coverage["freshness"],
    }
