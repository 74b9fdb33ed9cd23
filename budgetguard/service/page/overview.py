"""The overview (a row per budget and group: status, spend against the limit, forecast,
burn-rate alerts, when the limit runs out) and the groups view (percent of limit per group of
each ``each`` budget, names beside ids)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from budgetguard.charts import ratio_bars, spend_bar, to_svg
from budgetguard.notify.alert_text import show
from budgetguard.service.page.layout import detail_link, e, figure, group_label, pill, when

__all__ = ["groups", "overview", "row_state", "series_of"]


def _key(budget: str, group: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return budget, tuple(sorted(group.items()))


def series_of(status: Mapping[str, Any], budget: str, group: Mapping[str, str]) -> dict[str, Any]:
    """The series the tick drew for ``budget``'s ``group`` (empty when none)."""
    for s in status.get("series") or ():
        if _key(s["budget"], s["group"]) == _key(budget, group):
            return dict(s)
    return {}


def _alerts(status: Mapping[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]] = defaultdict(list)
    for alert in status.get("alerts") or ():
        found[_key(alert.get("budget", ""), alert.get("group") or {})].append(alert)
    return found


def row_state(budget: Mapping[str, Any], alerts: Sequence[Mapping[str, Any]]) -> str:
    """The pill of a row: ``silenced`` when a firing alert of it is silenced, else its
    severity."""
    severity = str(budget.get("severity") or "unknown")
    if severity != "ok" and any(a.get("silenced") for a in alerts):
        return "silenced"
    return severity


def _ratio(value: Any) -> float | None:
    return None if value is None else float(value)


def overview(status: Mapping[str, Any]) -> str:
    names = status.get("names") or {}
    alerts = _alerts(status)
    rows = []
    for b in status.get("budgets") or ():
        group = b.get("group") or {}
        mine = alerts.get(_key(b["name"], group), [])
        state = row_state(b, mine)
        limit, spend, metric = b.get("limit"), b.get("spend"), b.get("metric", "cost")
        ratio = _ratio(b.get("ratio"))
        forecast = b.get("forecast")
        series = series_of(status, b["name"], group)
        thresholds = [t / limit for t in series.get("thresholds") or () if limit]
        bar = to_svg(
            spend_bar(
                f"{b['name']}: {show(spend, metric)} of {show(limit, metric)}",
                ratio,
                b.get("severity", "unknown"),
                thresholds=thresholds,
                forecast=forecast / limit if forecast is not None and limit else None,
            ),
            "bar",
        )
        badges = "".join(
            f'<span class="badge" data-kind="burn_rate">burn {e(a.get("severity", ""))}</span>'
            for a in mine
            if a.get("kind") == "burn_rate"
        )
        runs_out = series.get("runs_out")
        rows.append(
            f'<tr data-budget="{e(b["name"])}" data-state="{state}">'
            f"<td>{pill(state)}</td>"
            f"<td>{detail_link(b['name'], group, b['name'])}{badges}</td>"
            f"<td>{e(group_label(group, names))}</td>"
            f"<td>{bar if limit else ''}</td>"
            f'<td class="num">{e(show(spend, metric))}</td>'
            f'<td class="num">{e(show(limit, metric))}</td>'
            f'<td class="num">{"—" if ratio is None else f"{ratio:.0%}"}</td>'
            f'<td class="num">{e(show(forecast, metric))}</td>'
            f"<td>{when(runs_out) if runs_out else '—'}</td>"
            f"<td>{e(b.get('source', ''))}</td></tr>"
        )
    counts: dict[str, int] = defaultdict(int)
    for b in status.get("budgets") or ():
        counts[b.get("severity", "unknown")] += 1
    summary = " · ".join(f"{pill(k)} {n}" for k, n in sorted(counts.items()))
    return (
        f'<p id="summary">overall {pill(str(status.get("status", "unknown")))} — {summary}</p>'
        '<table id="budgets"><thead><tr><th>status</th><th>budget</th><th>group</th>'
        "<th>spend against the limit</th><th>spend</th><th>limit</th><th>%</th>"
        "<th>forecast</th><th>runs out at</th><th>source</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        '<p class="note">Bars: spend as a share of the limit (red line), thresholds as ticks, '
        "the forecast as a diamond. Figures are the check's report: the same as "
        "<code>/status</code> and <code>budgetguard check</code>.</p>"
    )


def groups(status: Mapping[str, Any]) -> str:
    """Per ``each`` budget, one bar per group: percent of its limit."""
    names = status.get("names") or {}
    split: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for b in status.get("budgets") or ():
        if b.get("group"):
            split[b["name"]].append(b)
    if not split:
        return '<p class="note">No budget is split by project, key, user or model (each).</p>'
    parts = []
    for name, members in split.items():
        ranked = sorted(members, key=lambda b: -(b.get("ratio") or 0))
        metric = ranked[0].get("metric", "cost")
        rows = [
            (
                group_label(b["group"], names),
                _ratio(b.get("ratio")),
                str(b.get("severity", "unknown")),
                (f"{b['ratio']:.0%} · " if b.get("ratio") is not None else "")
                + show(b.get("spend"), metric),
            )
            for b in ranked
        ]
        limit = show(ranked[0].get("limit"), metric)
        chart = to_svg(
            ratio_bars(
                f"{name}: percent of the limit ({limit}) per group",
                rows,
                width=760,
                label_width=330,
            )
        )
        parts.append(f'<h2 data-budget="{e(name)}">{e(name)}</h2>' + figure(chart))
    return "".join(parts)
