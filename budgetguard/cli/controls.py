"""``budgetguard controls plan|apply``: OpenAI's own limits, alerts and permissions as code.

``plan`` reads the live state with the admin key and exits like ``terraform plan
-detailed-exitcode``: 0 in sync, 2 changes, 1 an error in the input (rules, flags,
settings: never 2 here, which means "changes"), 3 OpenAI unavailable or the key refused.
``apply`` writes with the action key (``BUDGETGUARD_OPENAI_ACTION_KEY``, else the admin
key), in the safe order, reading each lever back: 0 applied and in sync, 1 a write refused
or not holding, 2 bad input, 3 unavailable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from budgetguard.cli.common import Database, Now, RulesPath, Verbose, app
from budgetguard.cli.context import (
    EXIT_INPUT,
    EXIT_OVER,
    EXIT_UNAVAILABLE,
    CommandExit,
    command_context,
    echo,
    fail,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

    from budgetguard.controls import ApplyReport, Change
    from budgetguard.providers.openai import Controls
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings

__all__ = ["controls"]

controls = typer.Typer(help="OpenAI's own limits, alerts and permissions as code: plan, apply.")
app.add_typer(controls, name="controls")

#: plan's exit when there are changes (terraform's -detailed-exitcode)
EXIT_CHANGES = 2
T = TypeVar("T")
Format = Annotated[str, typer.Option("--format", help="text or json.")]


@controls.command("plan")
def plan_command(
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
    output: Format = "text",
) -> None:
    """Show how OpenAI's live controls differ from the rules' controls: section.
    Exit 0 in sync, 2 changes, 1 or 3 errors (for CI)."""
    with _input_is_an_error():
        settings, declared = _start(rules, db, now, verbose, output)
    if declared is None:
        _nothing_declared(output)
        return
    changes = _run(settings, settings.openai_admin_key, lambda api: _plan(declared, api))
    _print_plan(changes, output)
    if changes:
        raise CommandExit(EXIT_CHANGES)


@controls.command("apply")
def apply_command(
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
    output: Format = "text",
) -> None:
    """Write the rules' controls: section to OpenAI (limits, then permissions, then
    alerts), reading each lever back. Uses BUDGETGUARD_OPENAI_ACTION_KEY (else the admin key)."""
    settings, declared = _start(rules, db, now, verbose, output)
    if declared is None:
        _nothing_declared(output)
        return
    report = _run(settings, settings.action_key, lambda api: _apply(declared, api))
    _print_apply(report, output)
    if not report.ok:
        raise CommandExit(EXIT_UNAVAILABLE if report.unavailable else EXIT_OVER)


@contextmanager
def _input_is_an_error() -> Iterator[None]:
    """For ``plan``, bad input exits 1: its 2 means "changes"."""
    try:
        yield
    except CommandExit as exc:
        raise CommandExit(EXIT_OVER if exc.exit_code == EXIT_INPUT else exc.exit_code) from None


def _start(
    rules: Path | None, db: str | None, now: str | None, verbose: bool, output: str
) -> tuple[Settings, Any]:
    if output not in ("text", "json"):
        raise fail(f"--format: expected text or json, got {output!r}", EXIT_INPUT)
    settings, checked, _ = command_context(rules, db, now, verbose, sends=False)
    return settings, _declared(checked)


def _declared(rules: Rules) -> Any:
    """The rules' ``controls:``, or None when they have none (or declare nothing)."""
    declared = rules.controls
    return declared if declared is not None and any(True for _ in declared.scopes()) else None


def _nothing_declared(output: str) -> None:
    if output == "json":
        echo(json.dumps({"in_sync": True, "changes": []}))
    else:
        echo("controls: the rules declare no controls (no controls: section); nothing to compare")


def _run(settings: Settings, key: SecretStr | None, work: Callable[[Controls], Awaitable[T]]) -> T:
    """``work`` with a controls client on ``key``, within the collection deadline; an
    unreachable or refusing API exits 3, a refused value 1."""
    from budgetguard.providers import ControlError
    from budgetguard.providers.openai import AUTH_HELP, OPENAI

    if key is None:
        raise fail(f"no admin key: {AUTH_HELP}", EXIT_UNAVAILABLE)

    async def go() -> T:
        async with asyncio.timeout(settings.collect_deadline):
            async with OPENAI.controls(key, settings.openai_base_url) as api:
                return await work(api)

    try:
        return asyncio.run(go())
    except TimeoutError:
        raise fail(
            f"OpenAI did not answer within {settings.collect_deadline:g}s", EXIT_UNAVAILABLE
        ) from None
    except ControlError as exc:
        code = EXIT_UNAVAILABLE if exc.kind in ("auth", "unavailable", "format") else EXIT_OVER
        raise fail(str(exc), code) from None


async def _plan(declared: Any, api: Controls) -> list[Change]:
    from budgetguard.controls import plan, read_live

    return plan(declared, await read_live(declared, api))


async def _apply(declared: Any, api: Controls) -> ApplyReport:
    from budgetguard.controls import ApplyReport, apply_plan, plan, read_live

    changes = plan(declared, await read_live(declared, api))
    return await apply_plan(declared, changes, api) if changes else ApplyReport()


def _print_plan(changes: list[Change], output: str) -> None:
    if output == "json":
        echo(json.dumps({"in_sync": not changes, "changes": [c.to_json() for c in changes]}))
        return
    if not changes:
        echo("controls: in sync with the rules; nothing to change")
        return
    echo(f"controls: {len(changes)} change{'s' * (len(changes) != 1)} to apply")
    for change in changes:
        echo(change.describe())


def _print_apply(report: ApplyReport, output: str) -> None:
    if output == "json":
        done = [
            {**a.change.to_json(), "status": a.status, "request_id": a.request_id,
             "held": a.held, "problem": a.problem}
            for a in report.applied
        ]  # fmt: skip
        left = [c.to_json() for c in report.remaining]
        echo(json.dumps({"ok": report.ok, "applied": done, "remaining": left}))
        return
    if not report.applied:
        echo("controls: in sync with the rules; nothing to apply")
    for applied in report.applied:
        said = f"HTTP {applied.status}" + (f", {applied.request_id}" if applied.request_id else "")
        verdict = "done, read back" if applied.held else f"FAILED: {applied.problem}"
        echo(f"{applied.change.describe()}  [{verdict}; {said}]")
    for change in report.remaining:
        echo(f"still different after apply: {change.describe()}")
