"""``budgetguard doctor [--probe-writes]``: which admin API levers the configured keys may
use. Reads go with the admin key; writes (``--probe-writes``: each reversible control
re-written with its current value, then read back) with the action key. Exit 0 when every
lever tried worked, 3 when one was refused or unreachable or did not hold."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from budgetguard.cli.common import Database, Now, RulesPath, Verbose, app
from budgetguard.cli.context import EXIT_UNAVAILABLE, CommandExit, command_context, echo, fail

if TYPE_CHECKING:
    from budgetguard.controls.doctor import Probe
    from budgetguard.settings import Settings

__all__ = ["doctor"]


@app.command()
def doctor(
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
    probe_writes: Annotated[
        bool,
        typer.Option(
            "--probe-writes",
            help="Also write each reversible control with its current value, and read it back.",
        ),
    ] = False,
) -> None:
    """Show which admin API levers the configured key can read (and write)."""
    from budgetguard.providers.openai import AUTH_HELP

    settings, checked, _ = command_context(rules, db, now, verbose, sends=False)
    if settings.openai_admin_key is None:
        raise fail(f"no admin key: {AUTH_HELP}", EXIT_UNAVAILABLE)
    controls = checked.controls
    wanted = next(iter(controls.projects), None) if controls is not None else None
    probes, project = _probe(settings, wanted, probe_writes)
    echo(_header(settings, project, probe_writes))
    for probe in probes:
        detail = f" ({probe.detail})" if probe.detail else ""
        echo(f"{probe.access:<6} {probe.lever:<22} {probe.outcome}{detail}")
    if any(p.outcome in ("refused", "unavailable", "failed") for p in probes):
        raise CommandExit(EXIT_UNAVAILABLE)


def _header(settings: Settings, project: str | None, writes: bool) -> str:
    keys = "reads with the admin key"
    if writes:
        own = settings.openai_action_key is not None
        keys += ", writes with " + (
            "the action key (BUDGETGUARD_OPENAI_ACTION_KEY)" if own else "the admin key"
        )
    probed = f"project probed: {project}" if project else "no project to probe"
    return f"doctor: {keys}; {probed}"


def _probe(settings: Settings, project: str | None, writes: bool) -> tuple[list[Probe], str | None]:
    from budgetguard.controls.doctor import probe_reads, probe_writes
    from budgetguard.providers.openai import OPENAI, RetryPolicy

    retry = RetryPolicy(max_attempts=2, deadline=settings.collect_deadline / 4)

    async def go() -> tuple[list[Probe], str | None]:
        base = settings.openai_base_url
        async with (
            OPENAI.reader(settings.openai_admin_key, base, retry=retry) as reader,
            OPENAI.controls(settings.openai_admin_key, base, retry=retry) as api,
        ):
            probes, probed = await probe_reads(reader, api, project)
        if writes:
            async with OPENAI.controls(settings.action_key, base, retry=retry) as writer:
                probes += await probe_writes(writer, probed)
        return probes, probed

    async def bounded() -> tuple[list[Probe], str | None]:
        async with asyncio.timeout(settings.collect_deadline):
            return await go()

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        raise fail(
            f"OpenAI did not answer within {settings.collect_deadline:g}s", EXIT_UNAVAILABLE
        ) from None
