"""The page's shell and the small pieces every view uses: escaping, money, pills, links.

No script and no request at view time: the page refreshes itself with a meta refresh, its
styles and charts are inline, and ``CSP`` forbids anything else (a name that slipped past
escaping still could not run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from budgetguard.notify.alert_text import group_text
from budgetguard.notify.escape import escape_html

__all__ = [
    "CSP",
    "REFRESH_SECONDS",
    "detail_link",
    "e",
    "figure",
    "group_label",
    "page",
    "pill",
    "when",
]

REFRESH_SECONDS = 60
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)

_VIEWS = (
    ("overview", "/", "Overview"),
    ("groups", "/ui/groups", "Groups"),
    ("timeline", "/ui/timeline", "Timeline"),
    ("health", "/ui/health", "Data health"),
)

_STYLE = """
:root{--ok:#067647;--warning:#b54708;--critical:#d92d20;--unknown:#475467;--silenced:#6941c6}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,
Arial,sans-serif;color:#101828;background:#f9fafb}header{background:#101828;color:#fff;
padding:10px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}header b{font-size:16px}
header a{color:#d0d5dd;text-decoration:none}header a.on{color:#fff;border-bottom:2px solid #84adff}
main{padding:16px 24px;max-width:1200px}h1{font-size:18px;margin:8px 0 4px}h2{font-size:15px;
margin:20px 0 6px}.meta{color:#475467;font-size:13px}table{border-collapse:collapse;width:100%;
background:#fff}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eaecf0;
vertical-align:middle}th{font-size:12px;color:#475467;font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}.pill{display:inline-block;padding:1px 8px;
border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:var(--unknown)}
.pill.ok{background:var(--ok)}.pill.warning{background:var(--warning)}.pill.critical{background:
var(--critical)}.pill.silenced{background:var(--silenced)}.badge{display:inline-block;
padding:0 6px;border:1px solid #d0d5dd;border-radius:4px;font-size:12px;margin-left:4px}
.card{background:#fff;border:1px solid #eaecf0;border-radius:8px;padding:12px 16px;margin:12px 0}
svg.chart{max-width:100%;height:auto}ul.reasons li{margin:2px 0}.note{color:#475467;font-size:13px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}.legend i{display:inline-block;
width:10px;height:10px;margin-right:4px;border-radius:2px}
"""


def e(value: object) -> str:
    """Text from the data, escaped for HTML (quotes too: it may sit in an attribute), no
    control character (``notify.escape``: one escaping module for every sink)."""
    return escape_html(value)


def when(value: str | None) -> str:
    """An ISO instant as people read it, ``2026-11-22 10:17 UTC`` (``—`` when unknown)."""
    if not value:
        return "—"
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return e(value)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def pill(state: str) -> str:
    known = state if state in ("ok", "warning", "critical", "unknown", "silenced") else "unknown"
    return f'<span class="pill {known}" data-state="{known}">{known}</span>'


def group_label(group: Mapping[str, str], names: Mapping[str, str]) -> str:
    """``project=Support chatbot (proj_chatbot)``, or ``—`` for a budget without ``each``."""
    return group_text(group, names) or "—"


def detail_link(budget: str, group: Mapping[str, str], text: str) -> str:
    query = urlencode({"name": budget, **{f"g.{k}": v for k, v in group.items()}})
    return f'<a href="/ui/budget?{e(query)}">{e(text)}</a>'


def figure(svg: str, caption: str = "") -> str:
    note = f'<div class="note">{e(caption)}</div>' if caption else ""
    return f'<div class="card">{svg}{note}</div>'


def page(view: str, title: str, body: str, status: Mapping[str, Any]) -> str:
    """The whole document: header, navigation, the report's instant and freshness, body."""
    nav = "".join(
        f'<a href="{href}"{" class=on" if name == view else ""} data-view="{name}">{label}</a>'
        for name, href, label in _VIEWS
    )
    fresh = status.get("freshness") or {}
    meta = (
        f"evaluated {when(status.get('evaluated_at'))} · costs settled to "
        f"{when(fresh.get('costs_settled_to'))}, usage to {when(fresh.get('usage_to'))}"
        f" · refreshes every {REFRESH_SECONDS} s"
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>budgetguard · {e(title)}</title><style>{_STYLE}</style></head>"
        f'<body data-view="{view}"><header><b>budgetguard</b>{nav}</header><main>'
        f'<h1>{e(title)}</h1><div class="meta" id="freshness">{meta}</div>{body}'
        "</main></body></html>"
    )


def legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{colour}"></i>{e(label)}</span>' for label, colour in items
        )
        + "</div>"
    )
