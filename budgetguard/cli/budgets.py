"""The budget commands: validate, collect, check, backtest, digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from budgetguard.cli.check import collect_new, collect_replayed, run_collect, say_delivery
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
    from budgetguard.store import Store


@app.command()
def validate(
    strict: Annotated[
        bool, typer.Option("--strict", help="Unset variables of notifiers are errors too.")
    ] = False,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Load and check the rules file; each mistake as PATH:LINE:COL: message (exit 2).
    Unset variables of notifier settings are warnings (errors with --strict)."""
    from budgetguard.rules.errors import RuleError

    warnings: list[RuleError] = []
    settings, loaded, _ = command_context(rules, db, now, verbose, notifier_warnings=warnings)
    for warning in warnings:  # with --strict, errors: PATH:LINE:COL: message, one a line
        text = f"{warning.message.removeprefix('warning: ')} (--strict)" if strict else ""
        typer.echo(str(replace(warning, message=text) if text else warning), err=True)
    if strict and warnings:
        raise typer.Exit(EXIT_INPUT)
    enabled = sum(1 for b in loaded.budgets if b.enabled)
    parts = [
        f"{len(loaded.budgets)} budget{'s' if len(loaded.budgets) != 1 else ''}"
        + (f" ({len(loaded.budgets) - enabled} disabled)" if enabled < len(loaded.budgets) else ""),
        f"{len(loaded.notifiers)} notifier{'s' if len(loaded.notifiers) != 1 else ''}",
    ]
    if loaded.digest is not None:
        parts.append(
            f"{loaded.digest.period}ly digest" if loaded.digest.period != "day" else "daily digest"
        )
    typer.echo(f"{settings.rules}: ok — {', '.join(parts)}")


Since = Annotated[
    str | None,
    typer.Option("--since", help="Collect from this far back: a duration (30d) or a date."),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Collect up to this date or time; a later one than now collects up to now, "
        "as without --until.",
    ),
]


@app.command()
def collect(
    since: Since = None,
    until: Until = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Sync usage and costs into the store, incrementally (a progress bar on a terminal)."""
    settings, loaded, clock = command_context(rules, db, now, verbose, sends=False)
    start = None if since is None else parse_when(since, clock, "--since")
    # an --until past now is no --until: what is not yet there cannot be collected, and the
    # partial buckets up to now are read again as a plain collect reads them
    end = clock if until is None else min(parse_when(until, clock, "--until"), clock)
    if start is not None and start >= end:
        raise fail("--since must be before --until (or now)", EXIT_INPUT)
    report = run_collect(settings, loaded, end, start)
    typer.echo(report.summary())
    for outcome in report.failed:
        echo(f"budgetguard: {outcome.query.key}: {outcome.error}", err=True)
    if report.failed:
        raise typer.Exit(EXIT_UNAVAILABLE)


Format = Annotated[str, typer.Option("--format", "-f", help="text | json | markdown | github")]
FailOn = Annotated[
    str, typer.Option("--fail-on", help="Exit 1 at this severity: warning | critical | never.")
]
Expect = Annotated[
    list[str] | None,
    typer.Option(
        "--expect",
        help="Planned spend: AMOUNT or KEY=VALUE[,KEY=VALUE]=AMOUNT (project=p,model=m=120).",
    ),
]


@app.command()
def check(
    offline: Annotated[bool, typer.Option("--offline", help="Evaluate stored data only.")] = False,
    output: Format = "text",
    fail_on: FailOn = "critical",
    notify: Annotated[
        bool, typer.Option("--notify", help="Deliver alerts (deduplicated).")
    ] = False,
    expect: Expect = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="With --format markdown: what changed since a previous JSON report (a file).",
        ),
    ] = None,
) -> None:
    """Collect what is new, evaluate every budget, print the report; exit 0/1/2/3."""
    from budgetguard.cli.check import CheckOptions, run_check

    run_check(
        CheckOptions(offline, output, fail_on, notify, expect, rules, db, now, verbose, compare)
    )


@app.command()
def backtest(
    start: Annotated[str, typer.Option("--from", help="First instant (date or ISO time).")],
    end: Annotated[str, typer.Option("--to", help="Last instant (date or ISO time).")],
    step: Annotated[str, typer.Option("--step", help="Evaluate every (Nm, Nh, Nd).")] = "1h",
    offline: Annotated[
        bool, typer.Option("--offline", help="Fetch nothing: not the minutes steps cut either.")
    ] = False,
    stats: Annotated[
        bool,
        typer.Option("--stats", help="Fire episodes per 30 days of each rule and pair instead."),
    ] = False,
    inject: Annotated[
        str | None,
        typer.Option(
            "--inject",
            help="With --stats: runaways (2x,5x,10x) overlaid at 40 starts; how fast they page.",
        ),
    ] = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Replay evaluation over stored history; list when each alert would fire and resolve
    (with --stats: how often each rule fires, and with --inject how fast runaways page)."""
    from budgetguard import pipeline
    from budgetguard.evaluate import group_label, needed_from

    settings, loaded, clock = command_context(rules, db, now, verbose, sends=False)
    first, last = parse_when(start, clock, "--from"), parse_when(end, clock, "--to")
    every, steps = _steps(first, last, step)
    multipliers = _injections(inject)
    stats = stats or inject is not None
    if not offline and settings.openai_admin_key is not None:
        collect_replayed(settings, loaded, min(last, clock), steps)
    store = open_store(settings)
    try:
        if not _stored_within(store, first, last):  # every step would be unknown: exit 3
            raise fail(
                f"nothing is stored from {_iso(first)} to {_iso(last)} to replay: run "
                f"`budgetguard collect --since {first.date().isoformat()}` first",
                EXIT_UNAVAILABLE,
            )
        loaded = pipeline.named_rules(store, loaded)  # match globs on names, as check does
        # what the budgets look at from the first instant replayed, up to the last
        since = needed_from(loaded, first)
        # planned as of the clock, as the store was collected (hours for the recent days,
        # days before): a plan as of an old ``--to`` would ask for hours the store never got
        data = pipeline.spend_data(store, loaded, max(last, clock), since=since, replayed=steps)
    finally:
        store.close()
    if stats:
        from budgetguard.cli.noise import print_stats

        print_stats(loaded, data, first, last, every, multipliers, step)
        return
    fired = resolved = 0
    for moment, events in pipeline.replay(loaded, data, first, last, every):
        for event in events:
            if event.event == "remind":
                continue
            fired += event.event == "fire"
            resolved += event.event == "resolve"
            f = event.finding
            what = event.kind + (f" {event.threshold.key}" if event.threshold else "")
            label = f.budget.name + (f" [{group_label(f.group)}]" if f.group else "")
            spend = (
                "—"
                if f.spend is None
                else f"${f.spend:,.2f}"
                if f.budget.metric == "cost"
                else f"{int(f.spend):,}"  # tokens, requests, ...: whole units, as reports
            )
            typer.echo(
                f"{moment.isoformat().replace('+00:00', 'Z')}  {event.event:<7}  "
                f"{label}  {what}  {event.severity}  spend {spend}"
            )
    typer.echo(
        f"backtest: {len(steps)} steps of {step} from {first.isoformat()} to "
        f"{last.isoformat()}: {fired} fired, {resolved} resolved",
        err=True,
    )


def _steps(first: datetime, last: datetime, step: str) -> tuple[timedelta, list[datetime]]:
    """The replayed instants from ``first`` to ``last``, every ``step`` (bad input: exit 2)."""
    from budgetguard.rules.vocabulary import parse_duration

    try:
        every = parse_duration(step)
    except ValueError as exc:
        raise fail(f"--step: {exc}", EXIT_INPUT) from None
    except OverflowError:
        raise fail(f"--step {step!r}: too large", EXIT_INPUT) from None
    if first >= last:
        raise fail("--from must be before --to", EXIT_INPUT)
    if (last - first) / every > 20_000:
        raise fail("too many steps: use a larger --step or a shorter range", EXIT_INPUT)
    return every, [first + every * n for n in range(int((last - first) / every) + 1)]


def _injections(inject: str | None) -> list[float]:
    """``--inject 2x,5x,10x`` as multipliers (bad input: exit 2)."""
    if inject is None:
        return []
    from budgetguard.alerts.noise import parse_injections

    try:
        return parse_injections(inject)
    except ValueError as exc:
        raise fail(f"--inject: {exc}", EXIT_INPUT) from None


def _stored_within(store: Store, first: datetime, last: datetime) -> bool:
    """Whether any query's coverage reaches into ``[first, last)``."""
    start, end = int(first.timestamp()), int(last.timestamp())
    return any(s < end and e > start for spans in store.coverage().values() for s, e in spans)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@app.command()
def digest(
    period: Annotated[
        str | None, typer.Option("--period", help="day | week | month [rules' digest.period].")
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Deliver to the rules' digest.notify notifiers.")
    ] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Use stored data only.")] = False,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """The last complete period's spend digest; printed, and sent with --send."""
    if period not in (None, "day", "week", "month"):
        raise fail(f"--period {period!r}: use day, week or month", EXIT_INPUT)
    settings, loaded, clock = command_context(rules, db, now, verbose, sends=send)
    names = loaded.digest.notify if loaded.digest else ()
    if send and not names:
        raise fail("--send: the rules have no digest.notify notifiers", EXIT_INPUT)
    if not offline:  # what the digest of this period reads, whatever the rules' period
        from budgetguard.digest import digest_rules

        collect_new(settings, digest_rules(loaded, period), clock)
    from rich.console import Console

    from budgetguard import pipeline
    from budgetguard.digest import digest_panel
    from budgetguard.notify.manager import default_plugins

    store = open_store(settings)
    try:
        made = pipeline.make_digest(store, loaded, clock, period, past=settings.fixed_past(clock))
        Console(width=max(100, Console().width)).print(digest_panel(made))
        if send:
            notifiers = default_plugins().notifiers(loaded.notifiers)
            queued, result = pipeline.send_digest(
                store, made, names, clock, notifiers, within=settings.notify_retry_within
            )
            already = len(names) - queued
            say_delivery(f"digest {made.key}: {queued} queued (already sent: {already})", result)
    finally:
        store.close()
