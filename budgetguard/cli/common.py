"""The typer app and the options every command shares (what the commands do with them is
in ``cli/context.py``, which does not need typer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["Database", "Now", "RulesPath", "Verbose", "app"]

app = typer.Typer(
    name="budgetguard",
    help="Guards an OpenAI organisation's spend: budgets in YAML, alerts at once, CI gates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(wanted: bool) -> None:
    if wanted:
        from budgetguard import __version__

        typer.echo(f"budgetguard {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
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
