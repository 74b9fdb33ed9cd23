"""``budgetguard silence add|list|expire``: hold back notifications during a known spend event.

Silences live in the store, so every replica (and ``check --notify``) honours them. They need
no rules file: a matcher names budgets, group values, severities and kinds by glob.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from budgetguard.cli.common import Database, Now, RulesPath, Verbose, app
from budgetguard.cli.context import (
    EXIT_INPUT,
    fail,
    open_store,
    settings_from,
    setup_logging,
)
from budgetguard.notify.escape import plain_text

if TYPE_CHECKING:
    from budgetguard.settings import Settings
    from budgetguard.store.silences import SilenceStore

__all__ = ["silence"]

silence = typer.Typer(help="Silence notifications for a while: add, list, expire.")
app.add_typer(silence, name="silence")


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
    except ValueError:
        flag, value = ("--for", duration) if duration else ("--until", until)
        raise fail(
            f"{flag}: expected a duration like 2h or an ISO time, got {value!r}", EXIT_INPUT
        ) from None
    if end <= now:
        raise fail(f"--until {until}: that is not in the future", EXIT_INPUT)
    return end


@silence.command("add")
def add(
    matchers: Annotated[list[str], typer.Argument(help="KEY=GLOB, all must match.")],
    duration: Annotated[str | None, typer.Option("--for", help="How long, e.g. 2h.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until when (ISO 8601).")] = None,
    comment: Annotated[str, typer.Option("--comment", help="Why, for the others.")] = "",
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Silence the alerts every MATCHER matches, for a while."""
    from budgetguard.alerts import parse_matcher

    settings = _settings(rules, db, now, verbose)
    clock = settings.clock()
    try:
        parsed = tuple(parse_matcher(m) for m in matchers)
    except ValueError as exc:
        raise fail(str(exc), EXIT_INPUT) from None
    end = _until(duration, until, clock)
    with _silences(settings) as silences:
        silence_id = silences.add(parsed, clock, end, comment)
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
