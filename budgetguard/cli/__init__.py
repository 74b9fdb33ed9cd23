"""The ``budgetguard`` command line. Each command only wires modules together.

Heavy modules are imported inside the commands, so ``budgetguard --help`` stays fast, and
``check --offline`` does not even import typer: ``cli/fast.py`` reads its flags when they
are plain, and everything else (help, mistakes, other commands) goes through typer.
Exit codes (the contract): 0 all good, 1 a budget at or over ``--fail-on``, 2 bad input,
3 data unavailable. ``run`` is the one place where whatever a command did not handle ends:
as one line on stderr with the right code, never a traceback (and never exit 1, which means
"over budget").
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

from budgetguard.cli.context import (
    EXIT_BROKEN_PIPE,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    CommandExit,
    echo,
    one_line,
    one_line_text,
)
from budgetguard.cli.fast import offline_check

if TYPE_CHECKING:
    import typer

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED", "app", "main", "run"]


def main() -> None:
    """Console-script entry point."""
    for name in ("stdout", "stderr"):  # started with a stream closed (``>&-``): write nowhere
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()  # what is still buffered, while a broken pipe can be answered
    except BrokenPipeError:
        code = _reader_gone()
    sys.exit(code)


def run(argv: list[str]) -> int:
    """Run the command line ``argv``; the exit code."""
    try:
        options = offline_check(argv)
        if options is None:
            return run_typer(argv)
        from budgetguard.cli.check import run_check

        run_check(options)
        return 0
    except CommandExit as exc:
        return exc.exit_code
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return _fail("budgetguard: interrupted", EXIT_INTERRUPTED)
    except Exception as exc:
        return _fail(*_unhandled(exc))


def run_typer(argv: list[str]) -> int:
    """``argv`` through typer: every command, ``--help`` and the flag mistakes."""
    import typer

    app = commands()
    try:
        code = app(args=argv, prog_name="budgetguard", standalone_mode=False)
    except CommandExit as exc:  # a command ended itself (what it had to say is said)
        return exc.exit_code
    except SystemExit as exc:  # typer ends a broken pipe itself, with sys.exit(1)
        if exc.code == 1:
            return _reader_gone()
        raise
    except typer.Abort:
        return _fail("budgetguard: interrupted", EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # a bad flag or option value: one line, exit 2
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            echo(ctx.get_help())
            return EXIT_INPUT
        where = ctx.command_path if ctx is not None else "budgetguard"
        return _fail(f"{where}: {one_line_text(exc.format_message())}", _input_exit(argv))
    if code == EXIT_INTERRUPTED:  # typer's silent answer to Ctrl-C, said as run() says it
        return _fail("budgetguard: interrupted", EXIT_INTERRUPTED)
    return code if isinstance(code, int) else 0


def commands() -> typer.Typer:
    """The typer app with every command registered."""
    from budgetguard.cli import (  # noqa: F401  (each registers its commands, in order)
        actions,
        budgets,
        controls,
        doctor,
        export,
        operate,
        silences,
    )
    from budgetguard.cli.common import app

    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # ``from budgetguard.cli import app``: typer's app, for its test runner
        return commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _unhandled(exc: Exception) -> tuple[str, int]:
    """What an exception no command handled means, in one line and an exit code."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from budgetguard.store import StoreURLError

    if isinstance(exc, StoreURLError | ArgumentError | NoSuchModuleError):
        return f"budgetguard: bad store URL: {one_line(exc)}", EXIT_INPUT
    if isinstance(exc, SQLAlchemyError):
        cause = getattr(exc, "orig", None) or exc
        return f"budgetguard: the store is unavailable: {one_line(cause)}", EXIT_UNAVAILABLE
    if isinstance(exc, OSError):
        return f"budgetguard: {one_line(exc)}", EXIT_UNAVAILABLE
    if isinstance(exc, UnicodeDecodeError):
        return f"budgetguard: a file is not UTF-8 text: {one_line(exc)}", EXIT_INPUT
    return (
        f"budgetguard: internal error ({type(exc).__name__}: {one_line(exc)}); please report it",
        EXIT_UNAVAILABLE,
    )


def _input_exit(argv: list[str]) -> int:
    """The exit of a bad flag: 2, but 1 for ``controls plan``, whose 2 means "changes"
    (terraform plan's -detailed-exitcode)."""
    words = [a for a in argv if not a.startswith("-")]
    return 1 if words[:2] == ["controls", "plan"] else EXIT_INPUT


def _fail(message: str, code: int) -> int:
    echo(message, err=True)
    return code


def _reader_gone() -> int:
    """stdout's reader left: no traceback and never 1 ("over budget"); what is still
    buffered goes nowhere."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE
