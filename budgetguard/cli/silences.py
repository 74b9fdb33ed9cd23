"""``budgetguard silence add|list|expire``: hold back notifications during a known spend event.

Silences live in the store, so every replica (and ``check --notify``) honours them. ``add``
evaluates the stored data with the rules first and prints the alerts the silence matches now
(as Alertmanager's preview does), warning when it matches none; ``--dry-run`` stops there.
Without usable rules (an operator's machine pointed at the shared store, in an incident) it
says it cannot preview, and adds the silence all the same. A silence longer than 30 days, or
one that matches every alert, needs ``--force``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from budgetguard.cli.common import Database, Now, RulesPath, Verbose, app
from budgetguard.cli.context import (
    EXIT_INPUT,
    echo,
    fail,
    one_line,
    open_store,
    rules_env,
    settings_from,
    setup_logging,
)
from budgetguard.notify.escape import plain_text

if TYPE_CHECKING:
    from budgetguard.alerts import Silence
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings
    from budgetguard.store import Store
    from budgetguard.store.silences import SilenceStore

__all__ = ["silence"]

silence = typer.Typer(help="Silence notifications for a while: add, list, expire.")
app.add_typer(silence, name="silence")

#: The longest silence without --force: a forgotten one must not hide alerts for a season.
LONGEST = timedelta(days=30)


def _settings(rules: Path | None, db: str | None, now: str | None, verbose: bool) -> Settings:
    setup_logging(verbose)
    return settings_from(rules, db, now)


@contextmanager
def _silences(settings: Settings) -> Iterator[SilenceStore]:
    """The store's silences, open for the length of one command (after its input checked)."""
    from budgetguard.store.silences import SilenceStore

    store = open_store(settings)
    try:
        yield SilenceStore(store.engine)
    finally:
        store.close()


def _until(duration: str | None, until: str | None, now: datetime) -> datetime:
    from budgetguard.rules.vocabulary import parse_duration
    from budgetguard.settings import parse_instant

    if (duration is None) == (until is None):
        raise fail("silence add: give exactly one of --for DURATION and --until TIME", EXIT_INPUT)
    try:
        end = now + parse_duration(duration) if duration else parse_instant(str(until))
    except (ValueError, OverflowError):
        flag, value = ("--for", duration) if duration else ("--until", until)
        raise fail(
            f"{flag}: expected a duration like 2h or an ISO time, got {value!r}", EXIT_INPUT
        ) from None
    if end <= now:
        raise fail(f"--until {until}: that is not in the future", EXIT_INPUT)
    return end


def _preview(store: Store, rules: Rules, now: datetime, candidate: Silence) -> list[str]:
    """The alerts that hold now (stored data, these rules) that ``candidate`` matches."""
    from budgetguard import offline
    from budgetguard.alerts import mark_silenced
    from budgetguard.notify.alert_text import group_text

    findings = offline.evaluate_store(store, rules, now)
    alerts, _ = offline.report_alerts(store, findings, now)
    names = offline.display_names(store)
    budgets = {f.budget.name: f.budget for f in findings}
    lines = []
    for alert in mark_silenced(alerts, [candidate], now, names, budgets):
        if not alert["silenced"] or alert["kind"] == "resolved":  # only what holds now
            continue
        raw = alert["group"]
        group = plain_text(group_text(raw, names)) if isinstance(raw, dict) else ""  # inert
        at = alert["threshold"]
        threshold = f" {float(at):.0%}" if isinstance(at, int | float) else ""
        lines.append(
            f"  {str(alert['severity']).upper()} {alert['budget']}"
            + (f" [{group}]" if group else "")
            + f" {alert['kind']}{threshold}"
        )
    return lines


def _rules_for_preview(settings: Settings) -> Rules | None:
    """The rules, or None (and a warning that says why) when they cannot be had."""
    from budgetguard.rules import RulesError, load_rules

    try:
        return load_rules(settings.rules, env=rules_env(), notifier_warnings=[])
    except RulesError as exc:
        why = str(exc.errors[0])
    except Exception as exc:  # the rules must not stand between an incident and a silence
        why = f"{settings.rules}: {one_line(exc)}"
    echo(f"budgetguard: warning: cannot preview what the silence matches ({why})", err=True)
    return None


@silence.command("add")
def add(
    matchers: Annotated[list[str], typer.Argument(help="KEY=GLOB, all must match.")],
    duration: Annotated[str | None, typer.Option("--for", help="How long, e.g. 2h.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until when (ISO 8601).")] = None,
    comment: Annotated[str, typer.Option("--comment", help="Why, for the others.")] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what it matches now; add nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Allow longer than 30 days, or matching everything.")
    ] = False,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Silence the alerts every MATCHER matches, for a while; prints what it matches now."""
    from budgetguard.alerts import Silence, matches_everything, parse_matcher
    from budgetguard.store.reads import check_silence

    settings = _settings(rules, db, now, verbose)
    clock = settings.clock()
    try:
        parsed = tuple(parse_matcher(m) for m in matchers)
    except ValueError as exc:
        raise fail(str(exc), EXIT_INPUT) from None
    end = _until(duration, until, clock)
    try:
        check_silence(parsed, int(clock.timestamp()), int(end.timestamp()), comment)
    except ValueError as exc:
        raise fail(f"silence add: {exc}", EXIT_INPUT) from None
    candidate = Silence("preview", parsed, clock, end, comment)
    loaded = _rules_for_preview(settings)
    store = open_store(settings)
    try:
        if loaded is not None:
            matched = _preview(store, loaded, clock, candidate)
            echo(f"matches {len(matched)} alert{'' if len(matched) == 1 else 's'} firing now:")
            for line in matched:
                echo(line)
            if not matched:
                echo(
                    "budgetguard: warning: this silence matches no alert firing now (a group "
                    "key matches a budget's `each` groups, or what a budget's `match` pins "
                    "it to)",
                    err=True,
                )
        if dry_run:
            echo("dry run: no silence added")
            return
        if not force and end - clock > LONGEST:
            raise fail(
                f"silence add: {end - clock} is longer than 30 days: add --force if you mean it",
                EXIT_INPUT,
            )
        if not force and matches_everything(parsed):
            raise fail(
                "silence add: this silences every alert: add --force if you mean it", EXIT_INPUT
            )
        from budgetguard.store.silences import SilenceStore

        silence_id = SilenceStore(store.engine).add(parsed, clock, end, comment)
    finally:
        store.close()
    typer.echo(f"silence {silence_id} until {end.isoformat(timespec='seconds')}")


@silence.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Expired ones too.")] = False,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """The active silences (``--all``: every one): id, until, matchers, comment."""
    settings = _settings(rules, db, now, verbose)
    with _silences(settings) as silences:
        rows = silences.all(active_at=None if all_ else settings.clock())
    for silence_id, matchers, _, ends, comment, _ in rows:
        shown = plain_text(" ".join(f"{k}={g}" for k, g in matchers))  # people's text: inert
        typer.echo(
            f"{silence_id}  until {ends.isoformat()}  {shown}"
            + (f"  # {plain_text(comment)}" if comment else "")
        )
    if not rows:
        typer.echo("no silences", err=True)


@silence.command("expire")
def expire(
    silence_id: Annotated[str, typer.Argument(help="The id `silence list` shows.")],
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """End a silence now; what still fires is notified on the next evaluation."""
    settings = _settings(rules, db, now, verbose)
    with _silences(settings) as silences:
        done = silences.expire(silence_id, settings.clock())
    if not done:
        raise fail(f"silence expire: no running silence with id {silence_id!r}", EXIT_INPUT)
    typer.echo(f"silence {silence_id} expired")
