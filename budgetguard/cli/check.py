"""``check`` itself, and the collect and delivery steps ``collect`` and ``digest`` share.

Nothing here imports typer: ``check --offline`` runs through ``cli/fast.py`` without it, and
the typer command only hands its options over.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budgetguard.cli.context import (
    EXIT_INPUT,
    EXIT_UNAVAILABLE,
    CommandExit,
    command_context,
    echo,
    fail,
    one_line_text,
    open_store,
    page_progress,
    refuse_future_now,
    store_write_failed,
)

if TYPE_CHECKING:
    from decimal import Decimal

    from budgetguard.alerts import DeliveryReport
    from budgetguard.collect import CollectReport
    from budgetguard.evaluate.evaluator import Finding
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings
    from budgetguard.store import Store

__all__ = [
    "CheckOptions",
    "collect_new",
    "expectations",
    "run_check",
    "run_collect",
    "say_delivery",
]


def run_collect(
    settings: Settings,
    rules: Rules,
    end: datetime,
    since: datetime | None,
    *,
    strict: bool = True,
) -> CollectReport:
    """Plan, fetch and store; exit 3 with a plain message when no data can be had."""
    from budgetguard import pipeline
    from budgetguard.providers.openai import AUTH_HELP

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
        echo(f"budgetguard: {report.auth_error}", err=True)
    elif strict and report.all_failed:
        first = report.failed[0].error
        raise fail(f"no data collected: {first}", EXIT_UNAVAILABLE)
    return report


def collect_replayed(
    settings: Settings, rules: Rules, end: datetime, steps: Sequence[datetime]
) -> None:
    """What ``backtest`` fetches first: the minutes of the hours its steps cut (a replay
    splits them by their minutes). Best effort: what cannot be fetched is split by time,
    and its notes say so."""
    from budgetguard import pipeline

    refuse_future_now(settings)
    store = open_store(settings)
    try:
        with page_progress() as progress:
            report = pipeline.collect(
                settings, store, rules, end, progress=progress, replayed=steps
            )
    finally:
        store.close()
    for outcome in report.failed[:1]:
        echo(
            f"budgetguard: the minutes of the hours the steps cut could not be fetched "
            f"({outcome.error}); those hours are split by time",
            err=True,
        )


def collect_new(settings: Settings, rules: Rules, now: datetime) -> bool:
    """What ``check`` and ``digest`` do first unless ``--offline``: fetch what is new; a
    failed endpoint is reported and its budgets turn unknown, the rest goes on. True when
    what was reported covers everything (a refused key, or every query failed)."""
    if settings.openai_admin_key is None:
        from budgetguard.providers.openai import AUTH_HELP

        raise fail(
            f"no admin key ({AUTH_HELP}); or use --offline to evaluate the stored data",
            EXIT_UNAVAILABLE,
        )
    report = run_collect(settings, rules, now, None, strict=False)
    for outcome in [] if report.auth_failed else report.failed:
        echo(f"budgetguard: collect {outcome.query.key}: {outcome.error}", err=True)
    return report.auth_failed or report.all_failed


_MATCH_KEYS = ("project", "model", "user", "api_key", "line_item", "endpoint")


def expectations(values: list[str] | None) -> list[tuple[dict[str, str], Decimal]]:
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


@dataclass(frozen=True)
class CheckOptions:
    """The command line of ``check``, as typer or the fast path parsed it."""

    offline: bool = False
    output: str = "text"
    fail_on: str = "critical"
    notify: bool = False
    expect: list[str] | None = None
    rules: Path | None = None
    db: str | None = None
    now: str | None = None
    verbose: bool = False
    compare: Path | None = None


def run_check(options: CheckOptions) -> None:
    """Collect what is new, evaluate every budget, print the report; raises
    ``CommandExit`` with 0/1/2/3."""
    offline, output, fail_on, notify = (
        options.offline,
        options.output,
        options.fail_on,
        options.notify,
    )
    if output not in ("text", "json", "markdown", "github"):
        raise fail(f"--format {output!r}: use text, json, markdown or github", EXIT_INPUT)
    if fail_on not in ("warning", "critical", "never"):
        raise fail(f"--fail-on {fail_on!r}: use warning, critical or never", EXIT_INPUT)
    planned = expectations(options.expect)
    previous = _previous_report(options.compare, output)
    settings, loaded, clock = command_context(
        options.rules, options.db, options.now, options.verbose, sends=notify
    )
    said = not offline and collect_new(settings, loaded, clock)
    from budgetguard.report import (
        exit_code,
        silence_lines,
        to_github,
        to_markdown,
        to_text,
        write_json,
    )

    findings, alerts, silences, names = _evaluate(
        settings, loaded, clock, planned, notify, output, online=not offline
    )
    for line in silence_lines(silences):
        echo(line, err=True)
    if output == "json":
        write_json(sys.stdout, findings, alerts, clock, silences, names)
    elif output == "markdown":
        text = to_markdown(findings, clock, names, previous=previous, alerts=alerts)
        echo(text, nl=False)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(text)
    elif output == "github":
        echo(to_github(findings, names), nl=False)
    else:
        echo(to_text(findings, clock, names=names), nl=False)
    code = exit_code(findings, fail_on)
    if code == EXIT_UNAVAILABLE and not said:  # unless the collection's lines say it all
        echo(f"budgetguard: {_unknown_line(findings)}", err=True)
    raise CommandExit(code)


def _previous_report(path: Path | None, output: str) -> dict[str, Any] | None:
    """The JSON report ``--compare`` names, checked to be one (exit 2 otherwise)."""
    if path is None:
        return None
    if output != "markdown":
        raise fail("--compare needs --format markdown", EXIT_INPUT)
    import json

    try:
        if not path.is_file() or path.stat().st_size > 64 * 1024 * 1024:
            raise fail(f"--compare {path}: not a regular file under 64 MiB", EXIT_INPUT)
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise fail(
            f"--compare {path}: not a JSON report ({one_line_text(str(exc))})", EXIT_INPUT
        ) from None
    budgets = report.get("budgets") if isinstance(report, dict) else None
    if not isinstance(budgets, list) or not all(
        isinstance(b, dict) and isinstance(b.get("name"), str) for b in budgets
    ):
        raise fail(f"--compare {path}: not a budgetguard JSON report (no budgets list)", EXIT_INPUT)
    return dict(report)


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
    *,
    online: bool = False,
) -> tuple[list[Finding], list[dict[str, object]], list[dict[str, object]], dict[str, str]]:
    """Findings, the report's alerts, active silences and display names. Without
    ``--notify`` nothing is written: a SQLite store at this version is then read through
    the standard library (``SQLiteReads``), so a cold check never imports SQLAlchemy."""
    from budgetguard import offline
    from budgetguard.store.reads import SQLiteReads

    reads = None if notify else SQLiteReads.open(settings.database_url)
    store: Store | SQLiteReads = reads if reads is not None else open_store(settings)
    try:
        past = settings.fixed_past(now)
        findings = offline.evaluate_store(store, rules, now, expectations, past=past)
        notifying = store if notify and not isinstance(store, SQLiteReads) else None
        # what this check resolves, read before notifying writes it (else: as stored)
        prior = None if notifying is None else offline.alert_snapshot(notifying)
        if notifying is not None:
            # the report on stdout is machine-readable: console alert lines go to stderr
            with contextlib.redirect_stdout(sys.stderr if output != "text" else sys.stdout):
                _notify(settings, notifying, rules, findings, now, online)
        alerts, silences = offline.report_alerts(store, findings, now, prior)
        return findings, alerts, silences, offline.display_names(store)
    finally:
        store.close()


def _notify(
    settings: Settings,
    store: Store,
    rules: Rules,
    findings: list[Finding],
    now: datetime,
    online: bool,
) -> None:
    """The alerts, then the actions (``--notify`` is the cron form of ``run``'s tick: it
    plans and moves actions the same way), then the delivery of what both queued; exit 3
    when the store cannot save them (a read-only file, even offline: the state must persist)."""
    from sqlalchemy.exc import SQLAlchemyError

    from budgetguard import pipeline
    from budgetguard.notify.manager import default_plugins

    notifiers = default_plugins().notifiers(rules.notifiers)
    within = settings.notify_retry_within
    try:
        result = pipeline.notify(store, findings, now, notifiers, within=within)
    except SQLAlchemyError as exc:
        raise store_write_failed(settings, exc, "the alert state and notifications") from None
    say_delivery("notifications", result)
    if rules.actions or store.actions.all(("applied", "applying", "reverting")):
        ran, skipped = pipeline.act(settings, store, rules, findings, now, collect_month=online)
        for line in [*ran.moved, *ran.held, *skipped]:
            echo(f"actions: {line}", err=True)
        say_delivery(
            "action notifications", pipeline.deliver_due(store, notifiers, now, within=within)
        )


def say_delivery(what: str, result: DeliveryReport) -> None:
    """The delivery summary, then one line per notifier that failed (which, why, when)."""
    from budgetguard.alerts import problem_lines

    echo(
        f"{what}: {result.delivered} delivered, {result.retrying} to retry, {result.failed} failed",
        err=True,
    )
    for line in problem_lines(result):
        echo(f"  {line}", err=True)
