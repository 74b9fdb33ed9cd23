"""The live state of the controls the rules declare, read through the provider's controls
client: only the levers a scope declares are read (a read-only key can plan what it may
read), concurrently within a small gate."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from budgetguard.providers.openai import (
    Controls,
    HostedTools,
    ModelPermissions,
    SpendAlert,
    SpendLimit,
)
from budgetguard.rules.controls import Controls as DeclaredControls

__all__ = ["Live", "read_live"]

Scope = str | None  # a project id, or None for the organisation
T = TypeVar("T")


@dataclass
class Live:
    """What OpenAI holds now, for the levers read (a lever not read is absent)."""

    limits: dict[Scope, SpendLimit | None] = field(default_factory=dict)
    alerts: dict[Scope, list[SpendAlert]] = field(default_factory=dict)
    permissions: dict[str, ModelPermissions | None] = field(default_factory=dict)
    tools: dict[str, HostedTools] = field(default_factory=dict)


async def read_live(declared: DeclaredControls, api: Controls, *, concurrency: int = 4) -> Live:
    """The live state of every lever ``declared`` manages (a ``ControlError`` ends it)."""
    live = Live()
    gate = asyncio.Semaphore(concurrency)

    async def gated(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    async def scope(project: Scope) -> None:
        wanted = dict(declared.scopes())[project]
        if wanted.spend_limit is not None:
            reply = await gated(
                api.project_spend_limit(project) if project else api.org_spend_limit()
            )
            live.limits[project] = reply.value
        if wanted.spend_alerts is not None:
            live.alerts[project] = (await gated(api.spend_alerts(project))).value
        if project is not None and wanted.model_permissions is not None:
            live.permissions[project] = (await gated(api.model_permissions(project))).value
        if project is not None and wanted.hosted_tools is not None:
            live.tools[project] = (await gated(api.hosted_tools(project))).value

    tasks = [asyncio.ensure_future(scope(project)) for project, _ in declared.scopes()]
    try:
        await asyncio.gather(*tasks)
    finally:  # the first failure ends the rest: none is left running unheard
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return live
