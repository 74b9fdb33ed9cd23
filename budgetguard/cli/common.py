"""What every command shares: the app, the common options, settings, rules and exit codes.

Exit codes (the contract): 0 all good, 1 a budget at or over ``--fail-on``, 2 bad input,
3 data unavailable.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from budgetguard.progress import PageProgress
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings
    from budgetguard.store import Store

EXIT_OK, EXIT_OVER, EXIT_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3

app = typer.Typer(
    name="budgetguard",
    help="Guards an OpenAI organisation's spend: budgets in YAML, alerts at once, CI gates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Guards an OpenAI organisation's spend: budgets in YAML, alerts at once, CI gates."""


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens (DEBUG).")]
RulesPath = Annotated[
    Path | None,
    typer.Option("--rules", "-r", help="Rules file [env BUDGETGUARD_RULES; default rules.yaml]."),
]
Database = Annotated[
    str | None, typer.Option("--db", help="Store URL [env BUDGETGUARD_DATABASE_URL].")
]
Now = Annotated[
    str | None,
    typer.Option("--now", help="Evaluate as if it were this ISO 8601 time [env BUDGETGUARD_NOW]."),
]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"budgetguard: {message}", err=True)
    return typer.Exit(code)


def page_progress() -> PageProgress:
    from budgetguard.progress import PageProgress

    return PageProgress(enabled=sys.stderr.isatty())


def settings_from(rules: Path | None, db: str | None, now: str | None) -> Settings:
    """Settings from the environment and .env, with the command-line flags on top."""
    from pydantic import ValidationError

    from budgetguard.settings import Settings

    overrides: dict[str, Any] = {}
    if rules is not None:
        overrides["rules"] = rules
    if db is not None:
        overrides["database_url"] = db
    if now is not None:
        overrides["now"] = now
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"bad setting: {problems}", EXIT_INPUT) from None


def rules_env() -> dict[str, str]:
    """Variables for ${VAR} in the rules: .env in the working directory, then the environment."""
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    values.update(os.environ)
    return values


def command_context(
    rules: Path | None, db: str | None, now: str | None, verbose: bool
) -> tuple[Settings, Rules, datetime]:
    """What every command starts from: logging, settings, the checked rules, the clock."""
    setup_logging(verbose)
    settings = settings_from(rules, db, now)
    return settings, load_checked_rules(settings), settings.clock()


def load_checked_rules(settings: Settings) -> Rules:
    from budgetguard.rules import RulesError, load_rules

    try:
        return load_rules(settings.rules, env=rules_env())
    except RulesError as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        noun = "error" if len(exc.errors) == 1 else "errors"
        typer.echo(f"{settings.rules}: {len(exc.errors)} {noun}", err=True)
        raise typer.Exit(EXIT_INPUT) from None


def parse_when(value: str, now: datetime, flag: str) -> datetime:
    """A duration before ``now`` (``30d``) or an ISO 8601 date or time."""
    from budgetguard.rules.vocabulary import parse_duration
    from budgetguard.settings import parse_instant

    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        return parse_instant(value)
    except ValueError:
        raise fail(
            f"{flag}: expected a duration like 30d or a date like 2026-10-01, got {value!r}",
            EXIT_INPUT,
        ) from None


def refuse_future_now(settings: Settings) -> None:
    """Exit 2 when ``--now`` is later than the clock: bad input for every command that
    collects (the future cannot be collected, and must never count as covered)."""
    if settings.now_ahead_of_clock():
        raise fail(
            f"--now {settings.clock().isoformat()} is later than the clock: the future cannot "
            "be collected (use --offline to evaluate what is stored)",
            EXIT_INPUT,
        )


def open_store(settings: Settings) -> Store:
    from budgetguard.store import Store, StoreVersionError

    try:
        return Store.open(settings.database_url)
    except StoreVersionError as exc:
        raise fail(str(exc), EXIT_UNAVAILABLE) from None
