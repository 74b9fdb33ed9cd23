"""The timeline of the last 30 days (alerts, deliveries, silences, actions) and the data
health view (coverage per endpoint per day, the outbox, the ``/healthz`` reasons)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from budgetguard.charts import COLOURS, Figure, Rect, Text, to_svg
from budgetguard.service.page.layout import e, figure, group_label, legend, when

__all__ = ["health", "timeline"]

_STATES = {
    "settled": COLOURS["ok"],
    "estimated": COLOURS["estimate"],
    "missing": COLOURS["missing"],
}
_DELIVERY = {"delivered": "ok", "failed": "critical", "retrying": "warning", "queued": "unknown"}


def _day(value: str) -> str:
    return value[:10]


def _describe(event: Mapping[str, Any], names: Mapping[str, str]) -> str:
    kind = event.get("kind")
    if kind == "alert":
        group = event.get("group") or {}
        where = f" [{group_label(group, names)}]" if group else ""
        return f"{event.get('event')} · {event.get('budget')}{where}: {event.get('text')}"
    if kind == "delivery":
        tries = f", {event.get('attempts')} attempt(s)" if event.get("attempts") else ""
        why = f": {event['text']}" if event.get("text") else ""
        return (
            f"{event.get('status')} to {event.get('notifier')} ({event.get('budget')}{tries}){why}"
        )
    if kind == "silence":
        until = f" until {when(event.get('until'))}"
        comment = f" — {event['text']}" if event.get("text") else ""
        return f"silence {event.get('id')}: {' '.join(event.get('matchers') or ())}{until}{comment}"
    return f"{event.get('budget', '')}: {event.get('text', '')}"


def _strip(events: list[Mapping[str, Any]], days: list[str]) -> str:
    """Per day, one square per kind of event that day, shaded by how many."""
    kinds = ("alert", "delivery", "silence", "action")
    counts = Counter((_day(str(ev["at"])), str(ev.get("kind"))) for ev in events)
    fig = Figure(26 * len(days) + 90, 22 * len(kinds) + 24, "events per day of the last 30 days")
    colour = {
        "alert": COLOURS["fire"],
        "delivery": COLOURS["costs"],
        "silence": COLOURS["silence"],
        "action": COLOURS["action"],
    }
    for row, kind in enumerate(kinds):
        fig.add(Text(84, 22 * row + 16, kind, 11, COLOURS["text"], "end"))
        for col, day in enumerate(days):
            n = counts.get((day[:10], kind), 0)
            fill = colour[kind] if n else COLOURS["grid"]
            fig.add(Rect(90 + 26 * col, 22 * row + 4, 22, 18, fill, f"{day[:10]}: {n} {kind}"))
    for col, day in enumerate(days):
        if col % 5 == 0:
            fig.add(Text(90 + 26 * col, 22 * len(kinds) + 18, day[5:10], 10, COLOURS["axis"]))
    return to_svg(fig, "chart timeline")


def timeline(status: Mapping[str, Any]) -> str:
    names = status.get("names") or {}
    events = list(status.get("timeline") or ())
    days = list((status.get("coverage") or {}).get("days") or ())
    rows = "".join(
        f'<tr data-kind="{e(ev.get("kind"))}" data-status="{e(ev.get("status", ""))}">'
        f"<td>{when(str(ev['at']))}</td><td>{e(ev.get('kind'))}</td>"
        f"<td>{e(_describe(ev, names))}</td></tr>"
        for ev in reversed(events)
    )
    strip = figure(_strip(events, days)) if days else ""
    return (
        strip
        + '<table id="events"><thead><tr><th>when</th><th>what</th><th>detail</th></tr></thead>'
        + f"<tbody>{rows}</tbody></table>"
        + ("" if events else '<p class="note">Nothing happened in the last 30 days.</p>')
        + '<p class="note">Alerts as notified (silenced ones show under their silence), '
        "each delivery's last state (delivered, failed, retrying, queued), and silences.</p>"
    )


def _grid(coverage: Mapping[str, Any]) -> str:
    days: list[str] = list(coverage.get("days") or ())
    endpoints: Mapping[str, list[str]] = coverage.get("endpoints") or {}
    fig = Figure(
        18 * len(days) + 200,
        20 * len(endpoints) + 26,
        "coverage per endpoint per day: settled, estimated or missing",
    )
    for row, (endpoint, states) in enumerate(endpoints.items()):
        fig.add(Text(192, 20 * row + 15, endpoint, 11, COLOURS["text"], "end"))
        for col, state in enumerate(states):
            fig.add(
                Rect(
                    198 + 18 * col,
                    20 * row + 3,
                    16,
                    16,
                    _STATES.get(state, "#000"),
                    f"{endpoint} {days[col][:10]}: {state}",
                )
            )
    for col, day in enumerate(days):
        if col % 5 == 0:
            fig.add(Text(198 + 18 * col, 20 * len(endpoints) + 18, day[5:10], 10, COLOURS["axis"]))
    return to_svg(fig, "chart coverage")


def health(status: Mapping[str, Any], healthz: tuple[int, Mapping[str, Any]]) -> str:
    code, body = healthz
    reasons = list(body.get("reasons") or ())
    listed = "".join(f"<li>{e(r)}</li>" for r in reasons) or "<li>none: the guard is healthy</li>"
    outbox = (status.get("notifications") or {}).get("outbox") or {}
    depth = (
        "".join(
            f'<tr><td>{e(k)}</td><td class="num">{int(v)}</td></tr>'
            for k, v in sorted(outbox.items())
        )
        or "<tr><td colspan=2>empty</td></tr>"
    )
    problems = "".join(f"<li>{e(p)}</li>" for p in status.get("collect_problems") or ())
    coverage = status.get("coverage") or {}
    grid = _grid(coverage) if coverage.get("endpoints") else '<p class="note">No coverage yet.</p>'
    keys = legend(list(_STATES.items()))
    return (
        f'<h2>/healthz: <span id="healthz" data-code="{code}">{code} '
        f'{e(body.get("status", ""))}</span></h2><ul class="reasons" id="reasons">{listed}</ul>'
        "<h2>Coverage per endpoint per day (UTC)</h2>"
        + figure(grid + keys)
        + '<h2>Outbox</h2><table id="outbox" style="max-width:320px"><tbody>'
        + depth
        + "</tbody></table>"
        + (f'<h2>Collection problems</h2><ul id="problems">{problems}</ul>' if problems else "")
        + f'<p class="note">Settled: costs final (before {_settled(status)}); estimated: '
        "costs not final yet, or today's usage; missing: not collected (inside a budget's "
        "window, a hole: the budget is unknown until the next collection fills it).</p>"
    )


def _settled(status: Mapping[str, Any]) -> str:
    fresh = (status.get("freshness") or {}).get("costs_settled_to")
    return when(fresh) if fresh else "—"
