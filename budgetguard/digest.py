"""The periodic digest: the last complete period's spend against the one before, day by day,
the top projects and models, every budget's standing, the alerts of the period, data notes.

Figures come from the costs endpoint (what the invoice says), by local days in the rules'
timezone: a UTC costs day that straddles a local midnight is apportioned by its usage, as
every budget's interval is. A local day that reaches into costs days not settled yet (the
last two UTC days: today's is open, and costs lag by hours) counts as ``cost_source: auto``
does, the larger of costs and the usage estimate per UTC day, and says so: west of UTC the
last local day ends in the open day, and costs alone would fall short. A day the store holds
no costs for is shown as missing and noted, never as $0. The digest's key is stable per
period and store, so a re-run or a second replica queues it once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from budgetguard.evaluate.data import CostRow, SpendData
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.series import spend_series
from budgetguard.evaluate.spend import collect_spend, cost_parts, total_of
from budgetguard.evaluate.windows import Window
from budgetguard.notify.alert_text import display
from budgetguard.notify.alert_text import group_text as display_group
from budgetguard.notify.messages import (
    Digest,
    DigestBudget,
    DigestBurnup,
    DigestLine,
    money,
    signed_percent,
)
from budgetguard.rules.model import Budget, Rules
from budgetguard.rules.periods import last_complete_period, local_days

__all__ = [
    "BURNUP_TOP",
    "build_digest",
    "burnups",
    "digest_key",
    "digest_period",
    "digest_rules",
]

#: How many budgets the digest draws a burn-up for (the highest percent of their limit).
BURNUP_TOP = 3

_DAY = 86400
_NAMES = {"day": "Daily", "week": "Weekly", "month": "Monthly"}
#: Every cost of the organisation, as ``auto`` counts it (for days costs have not settled).
_ORGANISATION = Budget(name="digest", cost_source="auto")


def digest_period(rules: Rules, period: str | None = None) -> str:
    """``period`` if given, else the rules' ``digest.period``, else a week."""
    return period or (rules.digest.period if rules.digest else "week")


def digest_rules(rules: Rules, period: str | None = None) -> Rules:
    """``rules`` whose digest is of ``digest_period(rules, period)``: what the plan reads
    for the digest (the usage and minutes that split its costs days at local midnights) is
    of the period the digest is made for, also with no digest section or ``--period``."""
    from budgetguard.rules.model import Digest as DigestRules

    chosen = digest_period(rules, period)
    current = rules.digest or DigestRules()
    if current.period == chosen and rules.digest is not None:
        return rules
    return rules.model_copy(update={"digest": current.model_copy(update={"period": chosen})})


_Rows = list[tuple[CostRow, Decimal]]


def _rows(data: SpendData, start: datetime, end: datetime) -> tuple[_Rows, bool]:
    """The usd costs lines of ``[start, end)`` with the amount inside, and whether a day
    that straddles a bound had to be split by time (no usage covered it)."""
    rows, by_time = [], False
    for row, amount, split in cost_parts(data, int(start.timestamp()), int(end.timestamp())):
        if row.currency.lower() == "usd":
            rows.append((row, amount))
            by_time |= split == "time"
    return rows, by_time


def _top(now_rows: _Rows, before_rows: _Rows, attr: str, top: int) -> tuple[DigestLine, ...]:
    spend: dict[str, Decimal] = defaultdict(Decimal)
    previous: dict[str, Decimal] = defaultdict(Decimal)
    for row, amount in now_rows:
        spend[getattr(row, attr) or "(none)"] += amount
    for row, amount in before_rows:
        previous[getattr(row, attr) or "(none)"] += amount
    ranked = sorted(spend, key=lambda name: (-spend[name], name))[:top]
    return tuple(DigestLine(name, spend[name], previous.get(name, Decimal(0))) for name in ranked)


def digest_key(period: str, first_day: date, installation: str) -> str:
    """``digest-<period>-<first day>-<installation id>``: one per period and store, so a
    re-run or a second replica sends it once, and two stores never share it (without an
    installation: the key stores before version 9 gave it)."""
    key = f"digest-{period}-{first_day.isoformat()}"
    return f"{key}-{installation}" if installation else key


def _unsettled(
    data: SpendData,
    days: Sequence[tuple[date, int, int]],
    per_day: dict[date, Decimal],
    now: int,
) -> list[str]:
    """Local days that reach into costs days not settled yet: counted as ``auto`` counts
    them (the larger of costs and the estimate per UTC day), in ``per_day``; the notes that
    say so (or that such a day may still grow, where no usage can estimate it)."""
    today = now - now % _DAY
    settled_before = today - _DAY
    notes = []
    for local, lo, hi in days:
        if hi <= settled_before:
            continue
        window = Window(datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC), "period")
        spend = collect_spend(_ORGANISATION, data, "auto", lo, hi, now)
        value, used = total_of(spend, (), "auto", window, now)
        if used != "costs" and value > per_day[local]:
            per_day[local] = value
            notes.append(
                f"{local.isoformat()}: the usage estimate counts the hours its costs do not "
                "hold yet (costs lag by hours); top projects and models count costs only"
            )
        elif hi > today and not spend.estimate:
            notes.append(
                f"{local.isoformat()}: reaches into today's costs, which are still coming in, "
                "and no usage estimates it: the figure may grow"
            )
    return notes


def build_digest(
    rules: Rules,
    data: SpendData,
    findings: Sequence[Finding],
    alerts: Sequence[str],
    now: datetime,
    *,
    period: str | None = None,
    names: Mapping[str, str] | None = None,
    installation: str = "",
) -> Digest:
    """The digest of the last complete period before ``now``; ``findings`` are the budgets
    at ``now`` and ``alerts`` the one-line messages of the period's alerts; ``installation``
    (the store's id) is part of its key."""
    period = digest_period(rules, period)
    known_names = dict(names or {})
    top = rules.digest.top if rules.digest else 5
    before, start, end = last_complete_period(period, now, rules.timezone)
    covered = data.covered("costs")
    notes: list[str] = []

    def known(lo: int, hi: int) -> bool:
        return covered is not None and covered[0] <= lo - lo % _DAY and hi <= covered[1]

    rows, by_time = _rows(data, start, end)
    earlier, earlier_by_time = _rows(data, before, start)
    days = local_days(start, end, rules.timezone)
    per_day: dict[date, Decimal] = defaultdict(Decimal)
    foreign: dict[date, set[str]] = defaultdict(set)  # a day in another currency: unknown
    for local, lo, hi in days:
        for row, amount, _ in cost_parts(data, lo, hi):
            if row.currency.lower() == "usd":
                per_day[local] += amount
            else:
                foreign[local].add(row.currency.upper())
    settling = [day for day in days if day[0] not in foreign]  # another currency: unknown
    notes += _unsettled(data, settling, per_day, int(now.timestamp()))
    daily = tuple(
        (local, per_day.get(local, Decimal(0)) if known(lo, hi) and local not in foreign else None)
        for local, lo, hi in days
    )
    if foreign:
        currencies = ", ".join(sorted(set().union(*foreign.values())))
        notes.append(
            f"costs in {currencies} on {len(foreign)} days: those days are unknown "
            "(budgetguard counts USD only)"
        )
    missing = [d for d, v in daily if v is None]
    if covered is None:
        notes.append("no costs have been collected yet: run `budgetguard collect`")
    elif missing:
        notes.append(
            f"costs missing for {len(missing)} of {len(days)} days "
            f"({missing[0].isoformat()}…): the total is incomplete"
        )
    if by_time or earlier_by_time:
        notes.append("costs days across a local midnight without usage were split by time")
    known_before = all(known(lo, hi) for _, lo, hi in local_days(before, start, rules.timezone))
    total = None if len(missing) == len(days) else sum((v for _, v in daily if v), Decimal(0))
    previous = sum((a for _, a in earlier), Decimal(0)) if known_before else None
    if previous is None and covered is not None:
        notes.append("the previous period is not fully collected: no change shown")
    for finding in findings:  # the groups of an ``each`` budget share its note: say it once
        for text in (finding.budget.about, finding.note):
            line = f"{finding.budget.name}: {text}"
            if text and line not in notes:
                notes.append(line)
    budgets = tuple(
        DigestBudget(
            budget=f.budget.name,
            group=dict(f.group),
            spend=f.spend,
            limit=f.limit,
            forecast=f.forecast,
            severity=f.severity,
            window=f.budget.period
            or f.budget.window
            or (f.budget.anomaly.window if f.budget.anomaly else ""),
            source=f.source,
            metric=f.budget.metric,
            names={v: known_names[v] for v in f.group.values() if v in known_names},
        )
        for f in findings
    )
    zone = ZoneInfo(rules.timezone)
    first_day = start.astimezone(zone).date()
    last_day = (end - timedelta(seconds=1)).astimezone(zone).date()
    label = _label(period, first_day, last_day)
    title = f"{_NAMES.get(period, period)} spend digest · {label}"
    change = ""
    if total is not None and previous:
        change = f" ({signed_percent((total - previous) / previous)} vs {money(previous)})"
    summary = f"{money(total)} spent {label}{change}"
    key = digest_key(period, first_day, installation)
    digest = Digest(
        key=key,
        title=title,
        summary=summary,
        period=period,
        start=first_day,
        end=end.astimezone(zone).date(),
        total=total,
        previous_total=previous,
        daily=daily,
        top_projects=tuple(
            replace(line, name=display(line.name, known_names))
            for line in _top(rows, earlier, "project", top)
        ),
        top_models=_top(rows, earlier, "model", top),
        budgets=budgets,
        alerts=tuple(alerts),
        notes=tuple(notes),
        burnup=burnups(rules, data, findings, now, known_names),
    )
    return digest.with_payload()


def burnups(
    rules: Rules,
    data: SpendData,
    findings: Sequence[Finding],
    now: datetime,
    names: Mapping[str, str],
) -> tuple[DigestBurnup, ...]:
    """The current period's burn-up of the cost budgets highest against their limit (one
    group of an ``each`` budget at most), cumulative at each local day's end so far."""
    candidates = [
        f
        for f in findings
        if f.budget.metric == "cost" and f.budget.period and f.limit and f.spend is not None
    ]
    best: dict[str, Finding] = {}
    for f in sorted(candidates, key=lambda f: -(f.ratio or 0)):
        best.setdefault(f.budget.name, f)
    chosen = list(best.values())[:BURNUP_TOP]
    zone = ZoneInfo(rules.timezone)
    out = []
    for series in spend_series(rules, data, chosen, now, top=1):
        f = series.finding
        assert f.limit is not None and f.spend is not None
        total, points = Decimal(0), []
        for step in series.steps:
            if step.start >= now:
                break
            total += step.total
            points.append((step.start.astimezone(zone).date(), total))
        group = display_group(f.group, names)
        out.append(
            DigestBurnup(
                f.budget.name + (f" [{group}]" if group else ""),
                f.limit,
                f.spend,
                series.start.astimezone(zone).date(),
                series.end.astimezone(zone).date(),
                tuple(points),
                f.severity,
            )
        )
    return tuple(out)


def _label(period: str, first: date, last: date) -> str:
    if period == "day":
        return first.isoformat()
    if period == "month":
        return first.strftime("%B %Y")
    return f"{first.isoformat()} – {last.isoformat()}"


def digest_panel(digest: Digest) -> Any:
    """A rich panel of the digest, for a terminal."""
    from rich.console import Group
    from rich.markup import escape as markup
    from rich.panel import Panel
    from rich.table import Table

    from budgetguard.notify.escape import plain_text

    def escape(text: str) -> str:  # names and notes: no markup, no control character
        return markup(plain_text(text))

    head = Table.grid(padding=(0, 2))
    head.add_row(
        "Total",
        money(digest.total),
        "previous",
        money(digest.previous_total),
        "change",
        signed_percent(digest.change),
    )
    head.add_row("Daily", digest.sparkline, "", "", "", "")
    parts: list[Any] = [head]
    for title, lines in (("Top projects", digest.top_projects), ("Top models", digest.top_models)):
        if lines:
            table = Table(title, "spend", "change", box=None, title_justify="left")
            for line in lines:
                table.add_row(escape(line.name), money(line.spend), signed_percent(line.change))
            parts.append(table)
    if digest.budgets:
        table = Table("budget", "window", "spend", "limit", "forecast", "severity", box=None)
        for b in digest.budgets:
            shown = (b.show(b.spend), b.show(b.limit), b.show(b.forecast))
            table.add_row(escape(b.label), b.window, *shown, b.severity)
        parts.append(table)
    if digest.alerts:
        parts.append("Alerts:\n" + "\n".join(f"  • {escape(a)}" for a in digest.alerts))
    if digest.notes:
        parts.append("Notes:\n" + "\n".join(f"  • {escape(n)}" for n in digest.notes))
    return Panel(Group(*parts), title=escape(digest.title), subtitle=escape(digest.summary))
