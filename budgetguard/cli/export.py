"""``budgetguard export``: settled costs as FOCUS 1.3 rows or a plain daily table."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from budgetguard.cli.common import Database, Now, RulesPath, Verbose, app
from budgetguard.cli.context import (
    EXIT_INPUT,
    EXIT_UNAVAILABLE,
    command_context,
    echo,
    fail,
    open_store,
    parse_when,
)

if TYPE_CHECKING:
    from budgetguard.export import ExportRange

_DAY = 86400


@app.command()
def export(
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="focus (FOCUS 1.3 rows) | csv (a daily table).")
    ],
    start: Annotated[
        str | None, typer.Option("--from", help="First UTC day [default: this month's first].")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="End, exclusive (as FOCUS's ChargePeriodEnd): the day after the last one "
            "exported; --to 2026-12-01 ends with November 30 [default: through today].",
        ),
    ] = None,
    include_estimates: Annotated[
        bool,
        typer.Option(
            "--include-estimates", help="Add unsettled days from usage x prices, flagged."
        ),
    ] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="JSON lines instead of CSV.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here [default: stdout].")
    ] = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Export settled costs from the store (run `collect` first): FOCUS rows for FinOps
    tools, or one row per day, project and line item."""
    from budgetguard import export as exporting

    if output_format not in ("focus", "csv"):
        raise fail(f"--format {output_format!r}: use focus or csv", EXIT_INPUT)
    settings, loaded, clock = command_context(rules, db, now, verbose, sends=False)
    span = _span(start, end, clock)
    store = open_store(settings)
    try:
        found, columns, late = exporting.export(
            store, loaded, clock, span, output_format, include_estimates
        )
    except exporting.ExportError as exc:
        raise fail(str(exc), EXIT_UNAVAILABLE) from None
    finally:
        store.close()
    with _opened(output) as out:
        count = exporting.write_rows(out, found, columns, jsonl)
    echo(_said(found, count, span, late if not include_estimates else []), err=True)


def _span(start: str | None, end: str | None, clock: datetime) -> ExportRange:
    from budgetguard.export import ExportRange

    at = int(clock.timestamp())
    today = at - at % _DAY
    month = int(clock.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())
    first = _day(parse_when(start, clock, "--from")) if start else month
    last = _day(parse_when(end, clock, "--to"), up=True) if end else today + _DAY
    if first >= last and end:
        raise fail(
            f"--from {_date(first)} --to {_date(last)}: the range ends before it starts "
            "(--to is exclusive: the day after the last one)",
            EXIT_INPUT,
        )
    if first >= last:
        raise fail(
            f"--from {_date(first)}: later than today ({_date(today)}), where the range "
            "ends without --to",
            EXIT_INPUT,
        )
    return ExportRange(first, last, today - _DAY)


def _said(found: list[dict[str, str]], count: int, span: ExportRange, late: list[int]) -> str:
    """What was exported, the dates in order; a range with no settled day says so."""
    billed = sum(
        (
            Decimal(r.get("BilledCost") or r.get("amount_usd") or 0)
            for r in found
            if r.get("x_CostSource", "costs") == "costs"
        ),
        Decimal(0),
    )
    first, end = span.start, min(span.end, span.settled_before)
    left = f"; {len(late)} day(s) not settled left out (--include-estimates adds them, flagged)"
    if end <= first:
        what = f"exported {count} rows of estimates" if count else "nothing to export"
        return (
            f"{what}: no settled costs from {_date(span.start)} to {_date(span.end - _DAY)} "
            f"(the last settled day is {_date(span.settled_before - _DAY)})"
            + (left if late else "")
        )
    return (
        f"exported {count} rows, ${billed:,.2f} of settled costs, {_date(first)} to "
        f"{_date(end - _DAY)}" + (left if late else "")
    )


def _day(moment: datetime, *, up: bool = False) -> int:
    stamp = int(moment.timestamp())
    floor = stamp - stamp % _DAY
    return floor + _DAY if up and stamp > floor else floor


def _date(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).date().isoformat()


@contextlib.contextmanager
def _opened(path: Path | None) -> Iterator[TextIO]:
    """The file at ``path``, or stdout (left open)."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            yield handle
    except OSError as exc:
        raise fail(f"--output {path}: {exc.strerror or exc}", EXIT_INPUT) from None
