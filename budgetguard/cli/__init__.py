"""The ``budgetguard`` command line. Each command only wires modules together.

Heavy modules are imported inside the commands, so ``budgetguard --help`` stays fast.
Exit codes (the contract): 0 all good, 1 a budget at or over ``--fail-on``, 2 bad input,
3 data unavailable. ``main`` is the one place where whatever a command did not handle ends:
as one line on stderr with the right code, never a traceback (and never exit 1, which means
"over budget").
"""

from __future__ import annotations

import sys

import typer

from budgetguard.cli import budgets, operate, silences  # noqa: F401  (each registers its commands, in order)
from budgetguard.cli.common import EXIT_INPUT, EXIT_UNAVAILABLE, app, one_line, one_line_text

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Run the command line ``argv``; the exit code."""
    try:
        code = app(args=argv, prog_name="budgetguard", standalone_mode=False)
    except typer.Abort:
        return _fail("budgetguard: interrupted", 130)
    except typer.TyperException as exc:  # a bad flag or option value: one line, exit 2
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            return EXIT_INPUT
        where = ctx.command_path if ctx is not None else "budgetguard"
        return _fail(f"{where}: {one_line_text(exc.format_message())}", EXIT_INPUT)
    except Exception as exc:
        return _fail(*_unhandled(exc))
    return code if isinstance(code, int) else 0


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


def _fail(message: str, code: int) -> int:
    typer.echo(message, err=True)
    return code
