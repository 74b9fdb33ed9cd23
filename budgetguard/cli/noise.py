"""``backtest --stats`` and ``--inject``: the tables of ``alerts.noise``'s figures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import typer

from budgetguard.evaluate.data import SpendData
from budgetguard.rules.model import Rules

__all__ = ["print_stats"]


def _hours(value: object) -> str:
    return "—" if not isinstance(value, float | int) else f"{value:.2f} h"


def _share(value: object) -> str:
    return "—" if not isinstance(value, float | int) else f"{value:.1%}"


def print_stats(
    rules: Rules,
    data: SpendData,
    first: datetime,
    last: datetime,
    every: timedelta,
    multipliers: Sequence[float],
    step: str,
) -> None:
    """Fire episodes per rule over the replay, then each runaway's detection."""
    from budgetguard import pipeline
    from budgetguard.alerts.noise import FireCounts, detections

    days = (last - first).total_seconds() / 86400
    counts = FireCounts.of_rules(rules, days)
    for _, events in pipeline.replay(rules, data, first, last, every):
        counts.add(events)
    typer.echo(f"fire episodes over {days:g} days ({step} steps), per 30 days:")
    rows = counts.rows()
    width = max((len(b) for b, *_ in rows), default=6)
    rule_width = max((len(r) for _, r, *_ in rows), default=4)
    typer.echo(f"  {'budget':<{width}}  {'rule':<{rule_width}}  severity  fires  per 30 days")
    for budget, rule, severity, fires, per in rows:
        typer.echo(
            f"  {budget:<{width}}  {rule:<{rule_width}}  {severity:<8}  {fires:>5}  {per:>11.2f}"
        )
    if not multipliers:
        return
    found, notes = detections(rules, data, first, last, every, multipliers)
    typer.echo(
        "runaways injected (the budgeted pace x N from each start), paged by critical pairs:"
    )
    typer.echo(
        f"  {'budget':<{width}}  runaway  paged   median     max        "
        "burnt at page (median, max)  first pair (median)"
    )
    for detection in found:
        s = detection.summary()
        pairs = "; ".join(f"{k} {_hours(v)}" for k, v in s["first_pair"].items()) or "—"
        skipped = f" ({s['skipped']} unknown)" if s["skipped"] else ""
        typer.echo(
            f"  {s['budget']:<{width}}  {s['runaway']:<7}  {s['paged']:>2}/{s['starts']:<3}"
            f"  {_hours(s['median_hours']):<9}  {_hours(s['max_hours']):<9}  "
            f"{_share(s['median_share'])}, {_share(s['max_share'])}{skipped:<20}  {pairs}"
        )
    for note in notes:
        typer.echo(f"  note: {note}")
