"""The check report: JSON (the contract's shape), a rich table, Markdown, GitHub annotations."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from budgetguard.evaluate.evaluator import SEVERITY_ORDER, Finding
from budgetguard.json_numbers import json_number as _number
from budgetguard.json_numbers import json_number_text as _number_text
from budgetguard.notify.alert_text import group_text
from budgetguard.notify.escape import (
    escape_annotation,
    escape_annotation_property,
    plain_text,
)

__all__ = [
    "exit_code",
    "json_text",
    "overall_status",
    "to_github",
    "to_json",
    "to_markdown",
    "to_text",
    "write_json",
]

_ICON = {"ok": "✅", "warning": "⚠️", "critical": "🔴", "unknown": "❔"}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def overall_status(findings: Sequence[Finding]) -> str:
    return max((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__, default="ok")


def exit_code(findings: Sequence[Finding], fail_on: str) -> int:
    """1 when a budget is at or over ``fail_on``; else 3 when any is unknown; else 0."""
    if fail_on != "never":
        bar = SEVERITY_ORDER[fail_on]
        if any(
            f.severity in ("warning", "critical") and SEVERITY_ORDER[f.severity] >= bar
            for f in findings
        ):
            return 1
    return 3 if any(f.severity == "unknown" for f in findings) else 0


def silence_lines(silences: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per active silence, for the text of ``check`` (on stderr): matchers and
    comments are people's text, made inert for a terminal or a CI log."""
    return [
        plain_text(
            f"silenced until {s['ends_at']}: {' '.join(s['matchers'])} (id {s['id']})"
            + (f" — {s['comment']}" if s.get("comment") else "")
        )
        for s in silences
    ]


def to_json(
    findings: Sequence[Finding],
    alerts: Sequence[Mapping[str, Any]],
    now: datetime,
    silences: Sequence[Mapping[str, Any]] = (),
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The contract's JSON report; ``names`` adds the display names of the ids its groups
    show (``"names": {"proj_abc": "Chatbot"}``), ``silences`` the active ones."""
    return {
        "evaluated_at": _iso(now),
        "status": overall_status(findings),
        "budgets": [_budget(f) for f in findings],
        "alerts": list(alerts),
        **({"silences": list(silences)} if silences else {}),
        **({"names": shown} if (shown := _names_shown(findings, names)) else {}),
    }


def _budget(f: Finding) -> dict[str, Any]:
    ratio = f.ratio
    return {
        "name": f.budget.name,
        "group": dict(f.group),
        "metric": f.budget.metric,
        "window": {
            "start": _iso(f.window.start),
            "end": _iso(f.window.end),
            "kind": f.window.kind,
        },
        "spend": _number(f.spend, f.budget.metric),
        "limit": _number(f.limit, f.budget.metric),
        "ratio": None if ratio is None else round(float(ratio), 4),
        "forecast": _number(f.forecast, f.budget.metric),
        "planned": _number(f.planned, f.budget.metric),
        "severity": f.severity,
        "source": f.source,
        "data": {"complete": f.complete and f.severity != "unknown", "note": f.note},
        **({"burn_rate": _burn(f)} if f.burn else {}),
        **_people(f),
    }


def _burn(f: Finding) -> list[dict[str, Any]]:
    """Each burn-rate pair of the finding: its windows' rates and whether it holds (null
    when its data is incomplete: unknown, never ok)."""

    def rate(value: Decimal | None) -> float | None:
        return None if value is None else round(float(value), 4)

    return [
        {
            "pair": b.pair.key,
            "factor": float(b.pair.factor),
            "severity": b.pair.severity,
            "long_rate": rate(b.long_rate),
            "short_rate": rate(b.short_rate),
            "holds": b.holds if b.known else None,
        }
        for b in f.burn
    ]


def write_json(
    out: TextIO,
    findings: Sequence[Finding],
    alerts: Sequence[Mapping[str, Any]],
    now: datetime,
    silences: Sequence[Mapping[str, Any]] = (),
    names: Mapping[str, str] | None = None,
) -> None:
    """``json_text(to_json(...))`` and a newline, written to ``out`` as it is made: no report
    held in memory, and each budget's line from parts shared by its findings (its name,
    metric, window and people keys are encoded once)."""
    report = to_json((), alerts, now, silences)
    report["status"] = overall_status(findings)
    if shown := _names_shown(findings, names):
        report["names"] = shown
    cache: dict[tuple[int, int], tuple[str, str, str]] = {}
    lines = (_budget_line(f, cache) for f in findings)
    batch: list[str] = []
    for chunk in _chunks(report, lines if findings else None):
        batch.append(chunk)
        if len(batch) >= 1024:  # a write per line costs as much as making it
            out.write("".join(batch))
            batch.clear()
    batch.append("\n")
    out.write("".join(batch))


def _budget_line(f: Finding, cache: dict[tuple[int, int], tuple[str, str, str]]) -> str:
    """``json.dumps(_budget(f))``, to the byte."""
    b = f.budget
    parts = cache.get((id(b), id(f.window)))
    if parts is None:
        window = {"start": _iso(f.window.start), "end": _iso(f.window.end), "kind": f.window.kind}
        people = json.dumps(_people(f))[1:-1]
        parts = (
            '{"name": ' + json.dumps(b.name) + ', "group": ',
            ', "metric": ' + json.dumps(b.metric) + ', "window": ' + json.dumps(window),
            ", " + people + "}" if people else "}",
        )
        cache[(id(b), id(f.window))] = parts
    head, middle, tail = parts
    metric = b.metric
    ratio = f.ratio
    return "".join(
        (
            head,
            json.dumps(f.group) if f.group else "{}",
            middle,
            ', "spend": ',
            _number_text(f.spend, metric),
            ', "limit": ',
            _number_text(f.limit, metric),
            ', "ratio": ',
            "null" if ratio is None else repr(round(float(ratio), 4)),
            ', "forecast": ',
            _number_text(f.forecast, metric),
            ', "planned": ',
            _number_text(f.planned, metric),
            ', "severity": ',
            _STRINGS.get(f.severity) or json.dumps(f.severity),
            ', "source": ',
            _STRINGS.get(f.source) or json.dumps(f.source),
            ', "data": {"complete": ',
            "true" if f.complete and f.severity != "unknown" else "false",
            ', "note": ',
            "null" if f.note is None else json.dumps(f.note),
            "}",
            ', "burn_rate": ' + json.dumps(_burn(f)) if f.burn else "",
            tail,
        )
    )


_STRINGS = {
    s: json.dumps(s)
    for s in ("ok", "warning", "critical", "unknown", "costs", "estimate", "mixed", "usage")
}


def _names_shown(findings: Sequence[Finding], names: Mapping[str, str] | None) -> dict[str, str]:
    known = names or {}
    return {v: known[v] for f in findings for v in f.group.values() if v in known}


def _people(f: Finding) -> dict[str, Any]:
    """The budget's keys for people, where it has them."""
    b = f.budget
    out: dict[str, Any] = {}
    if b.description:
        out["description"] = b.description
    if b.runbook_url:
        out["runbook_url"] = b.runbook_url
    if b.labels:
        out["labels"] = dict(b.labels)
    return out


def _lower_bound(f: Finding) -> bool:
    """Some usage had no price (or data was left out): the spend shown is at least this."""
    return not f.complete and f.severity != "unknown" and f.spend is not None


def _notes(findings: Sequence[Finding]) -> list[tuple[str, str, bool]]:
    """(budget, text, from the data) of each budget's description and runbook (once per
    budget: the rules' own words) and of each finding's note (once per distinct note of a
    budget: it may quote names from the data)."""
    out: list[tuple[str, str, bool]] = []
    seen: set[tuple[str, str]] = set()
    for f in findings:
        for text, data in ((f.budget.about, False), (f.note, True)):
            if text and (f.budget.name, text) not in seen:
                seen.add((f.budget.name, text))
                out.append((f.budget.name, text, data))
    return out


def json_text(report: Mapping[str, Any]) -> str:
    """The report as JSON: top-level keys indented, one line per budget and per alert.

    Readable, grep-able, and written by the C encoder (an indented dump of 10,000 budgets
    takes a pure-Python encoder and about half a second)."""
    return "".join(_chunks(report, None))


def _chunks(report: Mapping[str, Any], budgets: Iterable[str] | None) -> Iterator[str]:
    """The text of ``json_text``, in pieces; ``budgets`` (the encoded lines of
    ``report["budgets"]``, when not None) stands in for that key's value."""
    yield "{"
    last = len(report) - 1
    for i, (key, value) in enumerate(report.items()):
        comma = "," if i < last else ""
        items: Iterable[str] | None = None
        if key == "budgets" and budgets is not None:
            items = budgets
        elif isinstance(value, list) and value:
            items = (json.dumps(item) for item in value)
        if items is None:
            yield f"\n  {json.dumps(key)}: {json.dumps(value)}{comma}"
            continue
        yield f"\n  {json.dumps(key)}: ["
        separator = "\n    "
        for item in items:
            yield separator + item
            separator = ",\n    "
        yield f"\n  ]{comma}"
    yield "\n}"


def _fmt(value: Decimal | None, metric: str) -> str:
    if value is None:
        return "—"
    if metric == "cost":
        return f"${value:,.2f}"
    return f"{int(value):,}"


def _group(f: Finding, names: Mapping[str, str] | None) -> str:
    """The group as people read it: ``project=Chatbot (proj_abc)`` where a name is known."""
    return group_text(f.group, names or {}) or "—"


def _planned(findings: Sequence[Finding]) -> bool:
    """Whether a plan (``--expect``) was placed: the tables then show its part."""
    return any(f.planned for f in findings)


def _headers(findings: Sequence[Finding]) -> list[str]:
    if not _planned(findings):
        return HEADERS
    return [*HEADERS[:7], "planned", *HEADERS[7:]]


def _rows(findings: Sequence[Finding], names: Mapping[str, str] | None = None) -> list[list[str]]:
    planned = _planned(findings)
    rows = []
    for f in findings:
        m = f.budget.metric
        window = (
            f.budget.window
            or f.budget.period
            or (f"{f.budget.anomaly.window} spike" if f.budget.anomaly else "")
        )
        ratio = f.ratio
        spend = _fmt(f.spend, m)
        rows.append(
            [
                f.budget.name,
                _group(f, names),
                str(window),
                f"≥ {spend}" if _lower_bound(f) else spend,
                _fmt(f.limit, m),
                "—" if ratio is None else f"{ratio:.0%}",
                _fmt(f.forecast, m),
                *([_fmt(f.planned, m)] if planned else []),
                f.severity,
                f.source,
            ]
        )
    return rows


HEADERS = ["budget", "group", "window", "spend", "limit", "%", "forecast", "severity", "source"]


def to_text(
    findings: Sequence[Finding],
    now: datetime,
    width: int | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"budgetguard · {_iso(now)}", title_justify="left")
    for header in _headers(findings):
        numeric = header in ("spend", "limit", "%", "forecast", "planned")
        table.add_column(header, justify="right" if numeric else "left")
    style = {"warning": "yellow", "critical": "bold red", "unknown": "magenta"}
    for f, row in zip(findings, _rows(findings, names), strict=True):
        # data as Text: Rich markup off (a key named "[/bold]" is a name, not markup)
        table.add_row(*(Text(plain_text(cell)) for cell in row), style=style.get(f.severity))
    out = io.StringIO()
    Console(file=out, width=width or 160, force_terminal=False).print(table)
    return out.getvalue() + "".join(
        f"note: {plain_text(name)}: {plain_text(text)}\n" for name, text, _ in _notes(findings)
    )


def to_markdown(
    findings: Sequence[Finding],
    now: datetime,
    names: Mapping[str, str] | None = None,
    *,
    previous: Mapping[str, Any] | None = None,
    alerts: Sequence[Mapping[str, Any]] = (),
) -> str:
    """A short summary (what changed since ``previous``, a JSON report; what ``--expect``
    adds; the budgets at risk), then every budget in a table folded under ``<details>``."""
    from budgetguard.report_changes import changes, md_text

    status = overall_status(findings)
    headers = _headers(findings)
    lines = [f"### budgetguard: {_ICON[status]} {status} ({_iso(now)})", ""]
    rows = _rows(findings, names)

    def label(b: Mapping[str, Any]) -> str:
        group = group_text(b.get("group") or {}, names or {})
        return f"`{md_text(str(b.get('name')))}`" + (f" [{md_text(group)}]" if group else "")

    def shown(value: Any, metric: str) -> str:
        return _fmt(None if value is None else Decimal(str(value)), metric)

    if previous is not None:
        lines += [*changes([_budget(f) for f in findings], previous, label, shown), ""]
    planned = [f for f in findings if f.planned]
    if planned:
        lines.append("**What the plan adds** (`--expect`):")
        for f in planned:
            m = f.budget.metric
            ratio = "" if f.ratio is None else f" ({f.ratio:.0%})"
            lines.append(
                f"- {label(_budget(f))}: +{_fmt(f.planned, m)} → {_fmt(f.spend, m)} of "
                f"{_fmt(f.limit, m)}{ratio}, {_ICON[f.severity]} {f.severity}"
            )
        lines.append("")
    risky = [(f, row) for f, row in zip(findings, rows, strict=True) if f.severity != "ok"]
    silenced = {
        (a.get("budget"), json.dumps(a.get("group") or {}, sort_keys=True))
        for a in alerts
        if a.get("silenced") and a.get("kind") != "resolved"  # what holds, silenced
    }
    if risky:
        lines += [
            "**At risk:**",
            "",
            "| | budget | group | spend | limit | % | forecast |",
            "|---|---|---|---|---|---|---|",
        ]
        for f, row in risky:
            mute = " 🔕" if (f.budget.name, json.dumps(f.group, sort_keys=True)) in silenced else ""
            cells = [f"{_ICON[f.severity]} {f.severity}{mute}", *row[:2], *row[3:7]]
            lines.append("| " + " | ".join(md_text(c) for c in cells) + " |")
        lines.append("")
    else:
        lines += ["No budget at risk.", ""]
    lines += [
        f"<details><summary>All {len(findings)} budgets</summary>",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    at = headers.index("severity")
    for f, row in zip(findings, rows, strict=True):
        row[at] = f"{_ICON[f.severity]} {row[at]}"
        lines.append("| " + " | ".join(md_text(c) for c in row) + " |")
    notes = [  # the budget's own words as the rules wrote them; notes from the data escaped
        f"- **{name}**: {md_text(text) if data else plain_text(text)}"
        for name, text, data in _notes(findings)
    ]
    lines += ["", *notes, "", "</details>"] if notes else ["", "</details>"]
    return "\n".join(lines) + "\n"


def to_github(findings: Sequence[Finding], names: Mapping[str, str] | None = None) -> str:
    """``::warning``/``::error`` workflow commands, one per budget not ok."""
    lines = []
    for f in findings:
        if f.severity == "ok":
            continue
        level = "error" if f.severity in ("critical", "unknown") else "warning"
        label = f.budget.name + (f" [{_group(f, names)}]" if f.group else "")
        m = f.budget.metric
        detail = (
            f"{f.note}"
            if f.severity == "unknown"
            else ("≥ " if _lower_bound(f) else "")
            + f"{_fmt(f.spend, m)} of {_fmt(f.limit, m)}"
            + (f" ({f.ratio:.0%})" if f.ratio is not None else "")
        )
        if f.budget.about:
            detail += f" — {f.budget.about}"
        message = escape_annotation(f"{f.severity} {label}: {detail}")  # no CR, LF, or %xx
        title = escape_annotation_property(f"budgetguard {f.budget.name}")
        lines.append(f"::{level} title={title}::{message}")
    return "\n".join(lines) + ("\n" if lines else "")
