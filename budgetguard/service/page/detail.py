"""One budget (and group) in detail: cumulative spend against the pace and the limit over its
span, the forecast band, markers for fire, resolve, silence and action, and the spend per step
split by costs and estimate (local days in the rules' timezone)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from budgetguard.charts import COLOURS, bar_chart, burn_up, to_svg
from budgetguard.charts.figure import compact_money
from budgetguard.notify.alert_text import show
from budgetguard.service.page.layout import e, figure, group_label, legend, pill, when
from budgetguard.service.page.overview import row_state, series_of

__all__ = ["detail", "find_budget"]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def find_budget(
    status: Mapping[str, Any], name: str, group: Mapping[str, str]
) -> Mapping[str, Any] | None:
    for b in status.get("budgets") or ():
        if b.get("name") == name and dict(b.get("group") or {}) == dict(group):
            return dict(b)
    return None


def _markers(
    status: Mapping[str, Any],
    name: str,
    group: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> list[tuple[float, str, str]]:
    """(fraction of the span, kind, text) of the alerts, silences and actions that touch it."""
    span = (end - start).total_seconds() or 1.0
    out = []
    for event in status.get("timeline") or ():
        kind = event.get("kind")
        at = _at(str(event["at"]))
        if not start <= at <= end:
            continue
        fraction = (at - start).total_seconds() / span
        if kind == "alert" and event.get("budget") == name and event.get("group") == dict(group):
            marker = "resolve" if event.get("event") == "resolve" else "fire"
            out.append(
                (
                    fraction,
                    marker,
                    f"{event.get('event')} {when(event['at'])}: {event.get('text', '')}",
                )
            )
        elif kind == "silence" and _silences(event, name, group):
            out.append(
                (
                    fraction,
                    "silence",
                    f"silenced {when(event['at'])}: {' '.join(event.get('matchers') or ())}",
                )
            )
        elif kind == "action" and event.get("budget") == name:
            out.append((fraction, "action", f"action {when(event['at'])}: {event.get('text')}"))
    return out


def _silences(event: Mapping[str, Any], name: str, group: Mapping[str, str]) -> bool:
    """A silence marks the budget (and group) its ``budget=`` and group-key matchers cover;
    one that names a key the budget is not split by is not drawn on it."""
    values = {"budget": name, **group}
    for matcher in event.get("matchers") or ():
        key, _, glob = str(matcher).partition("=")
        if key in ("severity", "kind"):
            continue
        if key not in values or not fnmatch.fnmatchcase(values[key], glob):
            return False
    return True


def _label(value: str, unit: str, timezone: str) -> str:
    local = _at(value).astimezone(ZoneInfo(timezone))
    return local.strftime("%H:%M") if unit == "hour" else local.strftime("%d %b")


def detail(status: Mapping[str, Any], name: str, group: Mapping[str, str]) -> tuple[int, str, str]:
    """(HTTP status, title, body)."""
    budget = find_budget(status, name, group)
    if budget is None:
        return (
            404,
            "no such budget",
            (
                f"<p>No budget {e(name)} with group {e(group_label(group, {}))} in the last report."
                ' <a href="/">Back to the overview</a></p>'
            ),
        )
    names = status.get("names") or {}
    title = name + (f" [{group_label(group, names)}]" if group else "")
    metric = budget.get("metric", "cost")
    fmt = compact_money if metric == "cost" else (lambda v: f"{v:,.0f}")
    state = row_state(
        budget,
        [
            a
            for a in status.get("alerts") or ()
            if a.get("budget") == name and (a.get("group") or {}) == group
        ],
    )
    head = (
        f'<p id="standing">{pill(state)} {e(show(budget.get("spend"), metric))} of '
        f"{e(show(budget.get('limit'), metric))} · window {when(budget['window']['start'])} to "
        f"{when(budget['window']['end'])} · source {e(budget.get('source', ''))}</p>"
    )
    notes = budget.get("data", {}).get("note")
    about = budget.get("description")
    text = "".join(f'<p class="note">{e(t)}</p>' for t in (about, notes) if t)
    series = series_of(status, name, group)
    if not series:
        return (
            200,
            title,
            head
            + text
            + (
                '<p class="note" id="no-series">No series for this budget: it has no limit, no '
                "figures (unknown), or it is an anomaly budget.</p>"
            ),
        )
    timezone = str(status.get("timezone") or "UTC")
    start, end = _at(series["start"]), _at(series["end"])
    span = (end - start).total_seconds() or 1.0
    steps = series["steps"]
    labels = [_label(s[0], series["unit"], timezone) for s in steps]
    cumulative, total = [], 0.0
    evaluated = _at(str(status["evaluated_at"]))
    for step in steps:
        if _at(step[0]) >= evaluated:
            break
        total += sum(v or 0.0 for v in step[1:])
        step_end = min(
            _at(step[0]).timestamp() + _step_seconds(series["unit"]), evaluated.timestamp()
        )
        cumulative.append(((step_end - start.timestamp()) / span, total))
    band = None
    if series.get("band") and budget.get("spend") is not None:
        now = (evaluated - start).total_seconds() / span
        low, high = series["band"]
        band = (now, float(budget["spend"]), float(low), float(high))
    ticks = (
        [
            (0.0, labels[0]),
            (0.5, _label(_mid(start, end), series["unit"], timezone)),
            (1.0, _label(series["end"], series["unit"], timezone)),
        ]
        if labels
        else []
    )
    limit = budget.get("limit")
    burn = to_svg(
        burn_up(
            f"{title}: cumulative spend against the limit and the pace",
            ticks,
            cumulative,
            float(limit) if limit else None,
            band=band,
            thresholds=[float(t) for t in series.get("thresholds") or () if t != limit],
            markers=_markers(status, name, group, start, end),
            width=760,
            height=260,
            fmt=fmt,
        ),
        "chart burnup",
    )
    stacks = (
        [
            ("costs", COLOURS["costs"], [s[1] for s in steps]),
            ("estimate", COLOURS["estimate"], [s[2] for s in steps]),
        ]
        if metric == "cost"
        else [(metric, COLOURS["usage"], [s[3] for s in steps])]
    )
    unit = {"hour": "hour", "day": "day", "week": "week"}[series["unit"]]
    bars = to_svg(
        bar_chart(
            f"{title}: spend per {unit} ({timezone})",
            labels,
            stacks,
            width=760,
            height=200,
            fmt=fmt,
        ),
        "chart daily",
    )
    keys = legend(
        [
            ("spend", COLOURS["spend"]),
            ("pace", COLOURS["pace"]),
            ("limit", COLOURS["limit"]),
            ("forecast band", COLOURS["band"]),
            ("fire", COLOURS["fire"]),
            ("resolve", COLOURS["resolve"]),
            ("silence", COLOURS["silence"]),
            ("action", COLOURS["action"]),
        ]
    )
    runs_out = series.get("runs_out")
    out = f'<p id="runs-out">runs out at {when(runs_out)}</p>' if runs_out else ""
    return (
        200,
        title,
        (
            head
            + out
            + text
            + "<h2>Burn-up</h2>"
            + figure(burn + keys)
            + f"<h2>Spend per {unit}, costs and estimate ({e(timezone)})</h2>"
            + figure(bars)
        ),
    )


def _step_seconds(unit: str) -> float:
    return {"hour": 3600.0, "day": 86400.0, "week": 604800.0}[unit]


def _mid(start: datetime, end: datetime) -> str:
    return (start + (end - start) / 2).isoformat()
