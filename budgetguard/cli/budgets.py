"""The budget commands: validate, collect, check, backtest, digest."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from budgetguard.cli.common import (
    EXIT_INPUT,
    EXIT_UNAVAILABLE,
    Database,
    Now,
    RulesPath,
    Verbose,
    app,
    command_context,
    fail,
    one_line_text,
    open_store,
    page_progress,
    parse_when,
    refuse_future_now,
)

if TYPE_CHECKING:
    from decimal import Decimal

    from budgetguard.alerts import DeliveryReport
    from budgetguard.collect import CollectReport
    from budgetguard.evaluate.evaluator import Finding
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings
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
Until = Annotated[str | None, typer.Option("--until", help="Collect up to this date or time.")]


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
    settings, loaded, clock = command_context(rules, db, now, verbose)
    start = None if since is None else parse_when(since, clock, "--since")
    end = clock if until is None else parse_when(until, clock, "--until")
    if start is not None and start >= end:
        raise fail("--since must be before --until (or now)", EXIT_INPUT)
    report = _run_collect(settings, loaded, end, start)
    typer.echo(report.summary())
    for outcome in report.failed:
        typer.echo(f"budgetguard: {outcome.query.key}: {outcome.error}", err=True)
    if report.failed:
        raise typer.Exit(EXIT_UNAVAILABLE)


def _run_collect(
    settings: Settings,
    rules: Rules,
    end: datetime,
    since: datetime | None,
    *,
    strict: bool = True,
) -> CollectReport:
    """Plan, fetch and store; exit 3 with a plain message when no data can be had."""
    from budgetguard import pipeline
    from budgetguard.openai_admin import AUTH_HELP

    if settings.openai_admin_key is None:
        raise fail(f"no admin key: {AUTH_HELP}", EXIT_UNAVAILABLE)
    refuse_future_now(settings)
    store = open_store(settings)

    try:
        with page_progress() as progress:
            report = pipeline.collect(settings, store, rules, end, since=since, progress=progress)
    finally:
        store.close()
    if report.auth_error is not None:  # one line, not one per query
        if strict:
            raise fail(str(report.auth_error), EXIT_UNAVAILABLE)
        typer.echo(f"budgetguard: {report.auth_error}", err=True)
    elif strict and report.all_failed:
        first = report.failed[0].error
        raise fail(f"no data collected: {first}", EXIT_UNAVAILABLE)
    return report


def _collect_new(settings: Settings, rules: Rules, now: datetime) -> bool:
    """What ``check`` and ``digest`` do first unless ``--offline``: fetch what is new; a
    failed endpoint is reported and its budgets turn unknown, the rest goes on. True when
    what was reported covers everything (a refused key, or every query failed)."""
    if settings.openai_admin_key is None:
        from budgetguard.openai_admin import AUTH_HELP

        raise fail(
            f"no admin key ({AUTH_HELP}); or use --offline to evaluate the stored data",
            EXIT_UNAVAILABLE,
        )
    report = _run_collect(settings, rules, now, None, strict=False)
    for outcome in [] if report.auth_failed else report.failed:
        typer.echo(f"budgetguard: collect {outcome.query.key}: {outcome.error}", err=True)
    return report.auth_failed or report.all_failed


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
_MATCH_KEYS = ("project", "model", "user", "api_key", "line_item", "endpoint")


def _expectations(values: list[str] | None) -> list[tuple[dict[str, str], Decimal]]:
    from decimal import Decimal, InvalidOperation

    from budgetguard.rules.model import MAX_AMOUNT

    out: list[tuple[dict[str, str], Decimal]] = []
    for raw in values or []:
        selector, _, amount = raw.rpartition("=")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise fail(f"--expect {raw!r}: the amount must be a number", EXIT_INPUT) from None
        if not value.is_finite():
            raise fail(f"--expect {raw!r}: the amount must be a number", EXIT_INPUT)
        if value < 0:
            raise fail(f"--expect {raw!r}: planned spend cannot be negative", EXIT_INPUT)
        if value > MAX_AMOUNT:
            raise fail(f"--expect {raw!r}: the amount is at most {MAX_AMOUNT:,f}", EXIT_INPUT)
        if not selector:
            out.append(({}, value))
            continue
        chosen: dict[str, str] = {}
        for part in selector.split(","):
            key, _, pattern = part.partition("=")
            if key not in _MATCH_KEYS or not pattern or key in chosen:
                raise fail(
                    f"--expect {raw!r}: use AMOUNT or KEY=VALUE[,KEY=VALUE...]=AMOUNT with "
                    f"each KEY once, one of {', '.join(_MATCH_KEYS)}",
                    EXIT_INPUT,
                )
            chosen[key] = pattern
        out.append((chosen, value))
    return out


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
) -> None:
    """Collect what is new, evaluate every budget, print the report; exit 0/1/2/3."""
    if output not in ("text", "json", "markdown", "github"):
        raise fail(f"--format {output!r}: use text, json, markdown or github", EXIT_INPUT)
    if fail_on not in ("warning", "critical", "never"):
        raise fail(f"--fail-on {fail_on!r}: use warning, critical or never", EXIT_INPUT)
    expectations = _expectations(expect)
    settings, loaded, clock = command_context(rules, db, now, verbose, sends=notify)
    said = not offline and _collect_new(settings, loaded, clock)
    from budgetguard.report import (
        exit_code,
        silence_lines,
        to_github,
        to_markdown,
        to_text,
        write_json,
    )

    findings, alerts, silences, names = _evaluate(
        settings, loaded, clock, expectations, notify, output
    )
    for line in silence_lines(silences):
        typer.echo(line, err=True)
    if output == "json":
        write_json(sys.stdout, findings, alerts, clock, silences, names)
    elif output == "markdown":
        text = to_markdown(findings, clock, names)
        typer.echo(text, nl=False)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(text)
    elif output == "github":
        typer.echo(to_github(findings, names), nl=False)
    else:
        typer.echo(to_text(findings, clock, names=names), nl=False)
    code = exit_code(findings, fail_on)
    if code == EXIT_UNAVAILABLE and not said:  # unless the collection's lines say it all
        typer.echo(f"budgetguard: {_unknown_line(findings)}", err=True)
    raise typer.Exit(code)


def _unknown_line(findings: list[Finding]) -> str:
    """Why exit 3: how many budgets are unknown, and the distinct reasons (concise)."""
    unknown = [f for f in findings if f.severity == "unknown"]
    # each note's gist: "costs: data is 23.3h old", "completions: the last collection failed"
    reasons = list(dict.fromkeys((f.note or "no data").split(" (")[0] for f in unknown))
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    noun = "budget" if len(unknown) == 1 else "budgets"
    return one_line_text(f"{len(unknown)} {noun} unknown: {shown}")


def _evaluate(
    settings: Settings,
    rules: Rules,
    now: datetime,
    expectations: list[tuple[dict[str, str], Decimal]],
    notify: bool,
    output: str,
) -> tuple[list[Finding], list[dict[str, object]], list[dict[str, object]], dict[str, str]]:
    """Findings, the report's alerts, active silences and display names. Without
    ``--notify`` nothing is written: a SQLite store at this version is then read through
    the standard library (``SQLiteReads``), so a cold check never imports SQLAlchemy."""
    from budgetguard import offline
    from budgetguard.store.reads import SQLiteReads

    reads = None if notify else SQLiteReads.open(settings.database_url)
    store: Store | SQLiteReads = reads if reads is not None else open_store(settings)
    try:
        findings = offline.evaluate_store(store, rules, now, expectations)
        if notify and not isinstance(store, SQLiteReads):
            # the report on stdout is machine-readable: console alert lines go to stderr
            with contextlib.redirect_stdout(sys.stderr if output != "text" else sys.stdout):
                _notify(store, rules, findings, now, settings.notify_retry_within)
        alerts, silences = offline.report_alerts(store, findings, now)
        return findings, alerts, silences, offline.display_names(store)
    finally:
        store.close()


def _notify(
    store: Store, rules: Rules, findings: list[Finding], now: datetime, within: float
) -> None:
    from budgetguard import pipeline
    from budgetguard.notify.manager import default_plugins

    notifiers = default_plugins().notifiers(rules.notifiers)
    result = pipeline.notify(store, findings, now, notifiers, within=within)
    _say_delivery("notifications", result)


def _say_delivery(what: str, result: DeliveryReport) -> None:
    """The delivery summary, then one line per notifier that failed (which, why, when)."""
    from budgetguard.alerts import problem_lines

    typer.echo(
        f"{what}: {result.delivered} delivered, {result.retrying} to retry, {result.failed} failed",
        err=True,
    )
    for line in problem_lines(result):
        typer.echo(f"  {line}", err=True)


@app.command()
def backtest(
    start: Annotated[str, typer.Option("--from", help="First instant (date or ISO time).")],
    end: Annotated[str, typer.Option("--to", help="Last instant (date or ISO time).")],
    step: Annotated[str, typer.Option("--step", help="Evaluate every (Nm, Nh, Nd).")] = "1h",
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Replay evaluation over stored history; list when each alert would fire and resolve."""
    from budgetguard import pipeline
    from budgetguard.evaluate import group_label, needed_from
    from budgetguard.rules.vocabulary import parse_duration

    settings, loaded, clock = command_context(rules, db, now, verbose)
    first, last = parse_when(start, clock, "--from"), parse_when(end, clock, "--to")
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
    store = open_store(settings)
    try:
        loaded = pipeline.named_rules(store, loaded)  # match globs on names, as check does
        # what the budgets look at from the first instant replayed, up to the last
        data = pipeline.spend_data(store, loaded, last, since=needed_from(loaded, first))
    finally:
        store.close()
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
    steps = int((last - first) / every) + 1
    typer.echo(
        f"backtest: {steps} steps of {step} from {first.isoformat()} to "
        f"{last.isoformat()}: {fired} fired, {resolved} resolved",
        err=True,
    )


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
    if not offline:
        _collect_new(settings, loaded, clock)
    from rich.console import Console

    from budgetguard import pipeline
    from budgetguard.digest import digest_panel
    from budgetguard.notify.manager import default_plugins

    store = open_store(settings)
    try:
        made = pipeline.make_digest(store, loaded, clock, period)
        Console(width=max(100, Console().width)).print(digest_panel(made))
        if send:
            notifiers = default_plugins().notifiers(loaded.notifiers)
            queued, result = pipeline.send_digest(
                store, made, names, clock, notifiers, within=settings.notify_retry_within
            )
            already = len(names) - queued
            _say_delivery(f"digest {made.key}: {queued} queued (already sent: {already})", result)
    finally:
        store.close()
