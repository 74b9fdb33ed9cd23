"""What every command does, without typer: settings, the checked rules, the store, the
clock, one-line failures and the exit codes.

Exit codes (the contract): 0 all good, 1 a budget at or over ``--fail-on``, 2 bad input,
3 data unavailable. Nothing here imports typer, so the fast path of ``check --offline``
(``cli/fast.py``) runs on it alone; under typer a ``CommandExit`` ends a command the same way
(it is a ``SystemExit``, which click lets through and its test runner reads as the code).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from budgetguard.progress import PageProgress
    from budgetguard.rules import Rules
    from budgetguard.rules.errors import RuleError
    from budgetguard.settings import Settings
    from budgetguard.store import Store

EXIT_OK, EXIT_OVER, EXIT_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3
#: Ctrl-C, and stdout's reader gone (``| head``): 128 + the signal, as a shell reports them
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141


class CommandExit(SystemExit):
    """End the command with ``code`` (what it had to say is already said)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.exit_code = code


def echo(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Write a line (``nl``) to stdout or stderr, at once. What goes to stderr quotes the
    data (names, API messages, comments): no control character reaches the terminal or CI log."""
    if err:
        from budgetguard.notify.escape import plain_lines

        text = plain_lines(text)
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n" if nl else text)
    stream.flush()


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    from budgetguard.notify.escape import plain_logs

    plain_logs()


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (a driver's message may span several)."""
    return one_line_text(str(exc)) or type(exc).__name__


def one_line_text(text: str) -> str:
    from budgetguard.notify.escape import plain_text

    return plain_text(text)[:300]


def fail(message: str, code: int) -> CommandExit:
    """Say ``budgetguard: message`` on stderr; the exit to raise with ``code``."""
    echo(f"budgetguard: {message}", err=True)
    return CommandExit(code)


def page_progress() -> PageProgress:
    from budgetguard.progress import PageProgress

    return PageProgress(enabled=sys.stderr.isatty())


def settings_from(rules: Path | None, db: str | None, now: str | None) -> Settings:
    """Settings from the environment and .env, with the command-line flags on top."""
    from pydantic import ValidationError

    from budgetguard.settings import Settings, SettingsInputError, variable_name

    flags = {"rules": "--rules", "database_url": "--db", "now": "--now"}
    overrides: dict[str, Any] = {}
    if rules is not None:
        overrides["rules"] = rules
    if db is not None:
        overrides["database_url"] = db
    if now is not None:
        overrides["now"] = now
    try:
        settings = Settings(**overrides)
    except (UnicodeDecodeError, OSError) as exc:
        raise fail(f".env: cannot read it: {_read_problem(exc)}", EXIT_INPUT) from None
    except SettingsInputError as exc:
        raise fail(str(exc), EXIT_INPUT) from None
    except ValidationError as exc:  # its errors carry no input (hide_input_in_errors)
        problems = "; ".join(
            f"{_where(e['loc'], overrides, flags, variable_name)}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise fail(f"bad setting: {problems}", EXIT_INPUT) from None
    settings.given_by_flags({field: flags[field] for field in overrides})
    check_store_url(settings.database_url, settings.source_name("database_url"))
    return settings


def check_store_url(url: str, where: str) -> None:
    """Exit 2 when ``url`` cannot name a store, for every command, even one that never opens
    it. A plain ``sqlite:///FILE`` passes without importing SQLAlchemy (a cold offline check
    never does); opening the store says whether the file can be used."""
    name = url.removeprefix("sqlite:///")
    if name != url and name and name != ":memory:" and "?" not in name:
        return
    from budgetguard.store import StoreURLError, normalise_url

    try:
        normalise_url(url)
    except StoreURLError as exc:
        raise fail(f"{where}: {exc}", EXIT_INPUT) from None


def _where(
    loc: tuple[int | str, ...],
    given: dict[str, Any],
    flags: dict[str, str],
    variable: Callable[[str], str],
) -> str:
    """The flag or variable a bad setting came from."""
    field = str(loc[0]) if loc else ""
    if not field:
        return "settings"
    return flags[field] if field in given and field in flags else variable(field)


def rules_env() -> dict[str, str]:
    """Variables for ${VAR} in the rules: .env in the working directory, then the environment."""
    from budgetguard.settings import read_dotenv

    try:
        values = read_dotenv()
    except (UnicodeDecodeError, OSError) as exc:
        raise fail(f".env: cannot read it: {_read_problem(exc)}", EXIT_INPUT) from None
    values.update(os.environ)
    return values


def _read_problem(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def command_context(
    rules: Path | None,
    db: str | None,
    now: str | None,
    verbose: bool,
    *,
    sends: bool = True,
    notifier_warnings: list[RuleError] | None = None,
) -> tuple[Settings, Rules, datetime]:
    """What every command starts from: logging, settings, the checked rules, the clock.

    A command that sends nothing (``sends=False``) does not need the variables of notifier
    settings: unset ones are then warnings (collected in ``notifier_warnings`` if given).
    """
    setup_logging(verbose)
    settings = settings_from(rules, db, now)
    warnings = notifier_warnings if notifier_warnings is not None or sends else []
    return settings, load_checked_rules(settings, warnings), settings.clock()


def load_checked_rules(settings: Settings, notifier_warnings: list[RuleError] | None) -> Rules:
    from budgetguard.rules import RulesError, load_rules

    try:
        return load_rules(settings.rules, env=rules_env(), notifier_warnings=notifier_warnings)
    except RulesError as exc:
        for error in exc.errors:  # PATH:LINE:COL: message, one a line, and nothing else
            echo(str(error), err=True)
        raise CommandExit(EXIT_INPUT) from None


def usable_notifier(rules: Rules, name: str) -> None:
    """Exit 2 when notifier ``name`` needs a variable that is not set (it cannot send)."""
    notifier = rules.notifier(name)
    if notifier.unresolved:
        missing = ", ".join(f"'{v}'" for v in notifier.unresolved)
        raise fail(f"notifier '{name}': environment variable {missing} is not set", EXIT_INPUT)


def parse_when(value: str, now: datetime, flag: str) -> datetime:
    """A duration before ``now`` (``30d``) or an ISO 8601 date or time."""
    from budgetguard.rules.vocabulary import parse_duration
    from budgetguard.settings import EARLIEST, parse_instant

    try:
        when = now - parse_duration(value)
    except ValueError:
        pass
    except OverflowError:
        raise fail(f"{flag}: {value!r} reaches back before 1970", EXIT_INPUT) from None
    else:
        if when < EARLIEST:
            raise fail(f"{flag}: {value!r} reaches back before 1970", EXIT_INPUT)
        return when
    try:
        return parse_instant(value)
    except ValueError as exc:
        if "out of range" in str(exc):
            raise fail(f"{flag}: {exc}", EXIT_INPUT) from None
        raise fail(
            f"{flag}: expected a duration like 30d or a date like 2026-10-01, got {value!r}",
            EXIT_INPUT,
        ) from None


def refuse_future_now(settings: Settings) -> None:
    """Exit 2 when ``--now`` (or ``BUDGETGUARD_NOW``, named as such) is later than the clock:
    bad input for every command that collects (the future cannot be collected, and must
    never count as covered)."""
    if settings.now_ahead_of_clock():
        raise fail(
            f"{settings.source_name('now')} {settings.clock().isoformat()} is later than the "
            "clock: the future cannot be collected (use --offline to evaluate what is stored)",
            EXIT_INPUT,
        )


def open_store(settings: Settings) -> Store:
    """The store, or exit: 2 for a URL that cannot be one, 3 for a store that cannot be
    reached or written (one line that names it, the password hidden)."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from budgetguard.store import Store, StoreURLError, StoreVersionError

    try:
        return Store.open(settings.database_url)
    except StoreVersionError as exc:
        raise fail(str(exc), EXIT_UNAVAILABLE) from None
    except (StoreURLError, ArgumentError, NoSuchModuleError) as exc:
        raise fail(f"--db / BUDGETGUARD_DATABASE_URL: {one_line(exc)}", EXIT_INPUT) from None
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        raise fail(
            f"the store at {_safe_url(settings.database_url)} is unavailable: {one_line(cause)}",
            EXIT_UNAVAILABLE,
        ) from None


def store_write_failed(settings: Settings, exc: Exception, what: str) -> CommandExit:
    """Exit 3 for a store that failed to save ``what`` (read-only, full, gone): one line
    that names the store, the password hidden."""
    cause = getattr(exc, "orig", None) or exc
    return fail(
        f"the store at {_safe_url(settings.database_url)} cannot be written ({what} not "
        f"saved): {one_line(cause)}",
        EXIT_UNAVAILABLE,
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured URL"
