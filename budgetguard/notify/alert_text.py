"""The words of an alert, written once for every renderer (Slack, email, Teams, PagerDuty,
console, the webhook's ``message``): what, how much of which limit over which window, since
when, and for whom — from the facts in the alert's JSON body.

A forecast shows the forecast's own % and the day the limit is reached at this pace; a
resolution shows the figure now and at firing; ``no_data`` names the budget's own queries and
since when data is missing; ``drift`` lists how OpenAI's controls differ from the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgetguard.notify.escape import plain_text

__all__ = ["alert_fields", "alert_summary", "display", "group_text", "moment", "show"]


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def show(value: Any, metric: str = "cost") -> str:
    """USD for a cost budget (``$1,240.00``), else a count of the metric; ``—`` if unknown."""
    amount = _dec(value)
    if amount is None:
        return "—"
    if metric == "cost":
        return f"${amount:,.2f}"
    return f"{amount:,.0f} {metric.replace('_', ' ')}"


def _pct(part: Any, whole: Any) -> str:
    p, w = _dec(part), _dec(whole)
    return "" if p is None or not w else f" ({p / w:.0%})"


def moment(value: Any) -> str:
    """An ISO instant as people read it: ``2026-11-22 10:00 UTC`` (``—`` when unknown)."""
    if not value:
        return "—"
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def display(value: str, names: Mapping[str, str]) -> str:
    """``Chatbot (proj_abc)`` where the directory knows a name, else the id."""
    name = names.get(value)
    return f"{name} ({value})" if name and name != value else value


def group_text(group: Mapping[str, str], names: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={display(v, names)}" for k, v in group.items())


def _label(p: Mapping[str, Any]) -> str:
    group = group_text(dict(p.get("group") or {}), dict(p.get("names") or {}))
    return str(p.get("budget") or "") + (f" [{group}]" if group else "")


def _crossed(p: Mapping[str, Any], nouns: bool = True) -> str:
    """``thresholds 100%, 90% crossed`` / ``threshold 80% back under`` (firing or resolved)."""
    fired = [t for t in p.get("thresholds") or () if t.get("event") != "resolve" and t.get("at")]
    resolved = [t for t in p.get("thresholds") or () if t.get("event") == "resolve" and t.get("at")]
    parts = []
    for everything, verb in ((fired, "crossed"), (resolved, "back under")):
        items = [t for t in everything if t.get("kind") != "burn_rate"]
        if items:
            ats = ", ".join(str(t["at"]) for t in items)
            forecast = all(t.get("kind") == "forecast" for t in items)
            noun = "forecast threshold" if forecast else "threshold"
            plural = "s" if len(items) > 1 else ""
            parts.append(f"{noun}{plural} {ats} {verb}" if nouns else f"{ats} {verb}")
        pairs = [t for t in everything if t.get("kind") == "burn_rate"]
        if pairs:
            ats = ", ".join(str(t["at"]) for t in pairs)
            plural = "s" if len(pairs) > 1 else ""
            parts.append(f"burn rate{plural} {ats} {verb}")
    return "; ".join(parts)


def _times(value: Any) -> str:
    rate = _dec(value)
    return "—" if rate is None else f"{rate:.1f}x"


def _pace(p: Mapping[str, Any]) -> str:
    """``; 4.5% of the limit burnt in the last 6h; at this pace the budget runs out at
    2026-12-19 14:00 UTC`` (what of it the body knows)."""
    parts = []
    share = _dec(p.get("long_share"))
    if share is not None and p.get("long_window"):
        parts.append(f"{share:.1%} of the limit burnt in the last {p['long_window']}")
    spend, limit = _dec(p.get("spend")), _dec(p.get("limit"))
    if spend is not None and limit and spend >= limit:
        parts.append("the budget has run out")
    elif p.get("runs_out_at"):
        parts.append(f"at this pace the budget runs out at {p['runs_out_at']}")
    return "".join(f"; {part}" for part in parts)


def alert_summary(p: Mapping[str, Any]) -> str:
    """The one-line text of an alert body."""
    metric = str(p.get("metric") or "cost")
    kind, event = str(p.get("kind") or ""), str(p.get("event") or "")
    label, window = _label(p), str(p.get("window") or "")
    spend, limit = p.get("spend"), p.get("limit")
    crossed = _crossed(p)
    tail = f" — {crossed}" if crossed else ""
    if kind == "resolved" and p.get("resolved_kind") == "drift":
        text = f"RESOLVED {label}: OpenAI's controls match the rules again"
    elif kind == "drift":
        changes = "; ".join(str(c) for c in p.get("drift") or ()) or "see controls plan"
        text = f"DRIFT {label}: OpenAI's controls differ from the rules: {changes}"
    elif kind == "resolved":
        was = p.get("fired_spend")
        then = f", was {show(was, metric)}{_pct(was, limit)} at firing" if was is not None else ""
        what = {"no_data": "data is back", "data": "the costs add up again"}.get(
            str(p.get("resolved_kind")), "back under"
        )
        text = (
            f"RESOLVED {label}: {what}; {show(spend, metric)} of {show(limit, metric)}"
            f"{_pct(spend, limit)} {window} now{then}{tail}"
        )
    elif kind == "no_data" and p.get("data_problem"):
        text = f"DATA {label}: {p['data_problem']}"
    elif kind == "no_data":
        queries = ", ".join(p.get("queries") or ()) or "its queries"
        text = (
            f"NO DATA {label}: no complete data from {queries} since "
            f"{moment(p.get('missing_since'))} ({p.get('note') or 'data unavailable'})"
        )
    elif kind == "anomaly":
        text = (
            f"SPIKE {label}: {show(spend, metric)} {window} vs "
            f"{show(p.get('baseline'), metric)} usual"
        )
    elif kind == "forecast":
        forecast = p.get("forecast")
        method = f" ({p['forecast_method']})" if p.get("forecast_method") else ""
        text = (
            f"{str(p.get('severity') or '').upper()} {label}: forecast {show(forecast, metric)}"
            f" of {show(limit, metric)}{_pct(forecast, limit)} {window}{method} (now "
            f"{show(spend, metric)}{_pct(spend, limit)}){_pace(p)}{tail}"
        )
    elif kind == "burn_rate":
        burn = dict(p.get("burn_rate") or {})
        text = (
            f"{str(p.get('severity') or '').upper()} {label}: burning "
            f"{_times(burn.get('long_rate'))} the budgeted pace over the last {burn.get('long')}"
            f" ({_times(burn.get('short_rate'))} over the last {burn.get('short')}; fires "
            f"above x{_dec(burn.get('factor')) or 0:f}); {show(spend, metric)} of "
            f"{show(limit, metric)}{_pct(spend, limit)} {window}{_pace(p)}{tail}"
        )
    else:
        text = (
            f"{str(p.get('severity') or '').upper()} {label}: {show(spend, metric)} of "
            f"{show(limit, metric)}{_pct(spend, limit)} {window}{_pace(p)}{tail}"
        )
    if event == "remind":
        text = f"REMINDER {text}; firing since {moment(p.get('since'))}"
    return plain_text(text)  # one line, no control character, whatever the names hold


def alert_fields(p: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs in order; the optional ones only when the body has them."""
    metric = str(p.get("metric") or "cost")
    names = dict(p.get("names") or {})
    spend, limit, forecast = p.get("spend"), p.get("limit"), p.get("forecast")
    rows = [
        ("Budget", str(p.get("budget") or "")),
        ("Group", group_text(dict(p.get("group") or {}), names) or "—"),
        ("Window", str(p.get("window") or "—")),
        ("Spend", show(spend, metric) + _pct(spend, limit)),
        ("Limit", show(limit, metric)),
    ]
    if forecast is not None:
        rows.append(("Forecast", show(forecast, metric) + _pct(forecast, limit)))
    if p.get("limit_reached_on"):
        rows.append(("Limit reached", f"{p['limit_reached_on']} at this pace"))
    if p.get("runs_out_at"):
        rows.append(("Runs out", f"{p['runs_out_at']} at this pace"))
    burn = dict(p.get("burn_rate") or {})
    if burn:
        rows.append(
            (
                "Burn rate",
                f"{_times(burn.get('long_rate'))} over {burn.get('long')}, "
                f"{_times(burn.get('short_rate'))} over {burn.get('short')} "
                f"(fires above x{_dec(burn.get('factor')) or 0:f})",
            )
        )
    if p.get("long_share") is not None and p.get("long_window"):
        share = _dec(p["long_share"]) or Decimal(0)
        rows.append((f"Burnt in {p['long_window']}", f"{share:.1%} of the limit"))
    if p.get("fired_spend") is not None:
        rows.append(("At firing", show(p["fired_spend"], metric) + _pct(p["fired_spend"], limit)))
    if p.get("kind") == "no_data":
        rows.append(("Queries", ", ".join(p.get("queries") or ()) or "—"))
        rows.append(("Missing since", moment(p.get("missing_since"))))
    act = p.get("action") if p.get("kind") == "action" else None
    if isinstance(act, Mapping):
        rows.append(("Action", f"{act.get('name')} ({act.get('type')}): {act.get('state')}"))
        if act.get("approve_url"):
            rows.append(("Approve", str(act["approve_url"])))
    thresholds = _crossed(p, nouns=False)
    if thresholds:
        rows.append(("Thresholds", thresholds))
    since = moment(p.get("since") or p.get("fired_at"))
    if p.get("kind") == "resolved":
        rows.append(("Was firing", f"from {since} to {moment(p.get('fired_at'))}"))
    else:
        rows.append(("Firing since", since))
    rows += [
        ("Severity", str(p.get("severity") or "unknown")),
        ("Source", str(p.get("source") or "—")),
    ]
    if p.get("description"):
        rows.append(("Description", str(p["description"])))
    labels = dict(p.get("labels") or {})
    if labels:
        rows.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))))
    if p.get("runbook_url"):
        rows.append(("Runbook", str(p["runbook_url"])))
    return [(label, plain_text(value)) for label, value in rows]
