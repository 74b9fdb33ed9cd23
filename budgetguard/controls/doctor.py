"""Which of the admin API's levers a key may use, learned by trying: OpenAI publishes no
per-endpoint scope for admin keys.

Reads: usage and costs, the project list, and each control (the organisation's, and one
project's: the first the rules' ``controls:`` name, else the first listed). Writes (only
when asked): each reversible control is written with the value it holds now, then read back
and compared; a lever with nothing set is not probed (writing one would change the state),
and the irreversible ones (deleting a key, archiving a project) never are.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from budgetguard.providers import ControlError
from budgetguard.providers.openai import (
    AdminAPIError,
    AdminClient,
    AuthError,
    Controls,
    SpendLimit,
    UnavailableError,
)

__all__ = ["Probe", "probe_reads", "probe_writes"]

Outcome = Literal["yes", "refused", "unavailable", "failed", "not probed"]


@dataclass(frozen=True)
class Probe:
    """One lever tried: ``outcome`` and a short ``detail`` (HTTP status, request id, why)."""

    lever: str
    access: Literal["read", "write"]
    outcome: Outcome
    detail: str = ""


def _failed(lever: str, access: Literal["read", "write"], exc: Exception) -> Probe:
    if isinstance(exc, ControlError):
        outcome: Outcome = "failed"
        if exc.kind == "auth":
            outcome = "refused"
        elif exc.kind == "unavailable":
            outcome = "unavailable"
        detail = f"HTTP {exc.status}" if exc.status else str(exc)
        return Probe(lever, access, outcome, detail)
    if isinstance(exc, AuthError):
        return Probe(lever, access, "refused", f"HTTP {exc.status}")
    if isinstance(exc, UnavailableError):
        return Probe(lever, access, "unavailable", str(exc))
    status = getattr(exc, "status", None)
    return Probe(lever, access, "failed", f"HTTP {status}" if status else str(exc))


async def _read(lever: str, call: Callable[[], Awaitable[Any]]) -> tuple[Probe, Any]:
    try:
        reply = await call()
    except (ControlError, AdminAPIError) as exc:
        return _failed(lever, "read", exc), None
    request_id = getattr(reply, "request_id", None)
    return Probe(lever, "read", "yes", f"{request_id}" if request_id else ""), reply


async def probe_reads(
    reader: AdminClient, api: Controls, project: str | None
) -> tuple[list[Probe], str | None]:
    """Every read lever; and the project probed (``project``, else the first listed)."""
    now = int(time.time())
    probes = []
    costs = {"start_time": now - 86400 - now % 86400, "limit": 1}
    probe, _ = await _read("usage and costs", lambda: reader.get_json("/organization/costs", costs))
    probes.append(probe)
    probe, listed = await _read(
        "projects", lambda: reader.get_json("/organization/projects", {"limit": 1})
    )
    probes.append(probe)
    if project is None and listed and listed.get("data"):
        project = str(listed["data"][0].get("id") or "") or None
    probes.append((await _read("org spend limit", api.org_spend_limit))[0])
    probes.append((await _read("org spend alerts", api.spend_alerts))[0])
    if project is None:
        return probes, None
    for lever, call in _project_reads(api, project).items():
        probes.append((await _read(lever, call))[0])
    return probes, project


def _project_reads(api: Controls, project: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "project spend limit": lambda: api.project_spend_limit(project),
        "project spend alerts": lambda: api.spend_alerts(project),
        "model permissions": lambda: api.model_permissions(project),
        "hosted tools": lambda: api.hosted_tools(project),
        "rate limits": lambda: api.rate_limits(project),
    }


async def probe_writes(api: Controls, project: str | None) -> list[Probe]:
    """Each reversible control re-written with its current value, then read back."""
    probes = [
        await _rewrite("org spend limit", api, None, _limit),
        await _rewrite("org spend alerts", api, None, _alert),
    ]
    if project is not None:
        for lever, how in (
            ("project spend limit", _limit),
            ("model permissions", _permissions),
            ("hosted tools", _tools),
            ("rate limits", _rate_limit),
            ("project spend alerts", _alert),
        ):
            probes.append(await _rewrite(lever, api, project, how))
    probes += [
        Probe("delete a project key", "write", "not probed", "irreversible"),
        Probe("archive a project", "write", "not probed", "irreversible"),
    ]
    return probes


Rewrite = Callable[
    [Controls, str | None], Awaitable[tuple[Any, Any, Callable[[], Awaitable[Any]]] | None]
]


async def _rewrite(lever: str, api: Controls, project: str | None, how: Rewrite) -> Probe:
    """``how`` reads the lever and answers (its value, the write's reply, a re-read), or
    None when there is nothing to re-write."""
    try:
        done = await how(api, project)
        if done is None:
            return Probe(lever, "write", "not probed", "nothing set to re-write")
        before, reply, reread = done
        after = await reread()
    except ControlError as exc:
        return _failed(lever, "write", exc)
    if after != before:
        return Probe(lever, "write", "failed", "the value read back differs from what was there")
    return Probe(lever, "write", "yes", f"{reply.request_id or ''}".strip())


async def _limit(api: Controls, project: str | None) -> Any:
    async def read() -> SpendLimit | None:
        reply = await (api.project_spend_limit(project) if project else api.org_spend_limit())
        return reply.value

    async def cents_now() -> int | None:
        limit = await read()
        return None if limit is None else limit.threshold_cents

    before = await read()
    if before is None:
        return None
    amount = before.amount
    write = (
        api.set_project_spend_limit(project, amount) if project else api.set_org_spend_limit(amount)
    )
    return before.threshold_cents, await write, cents_now


async def _permissions(api: Controls, project: str | None) -> Any:
    assert project is not None

    async def read() -> Any:
        return (await api.model_permissions(project)).value

    before = await read()
    if before is None:
        return None
    return before, await api.set_model_permissions(project, before.mode, before.model_ids), read


async def _tools(api: Controls, project: str | None) -> Any:
    assert project is not None

    async def read() -> Any:
        return (await api.hosted_tools(project)).value

    before = await read()
    first = next(iter(before.enabled))
    return before, await api.set_hosted_tools(project, {first: before.enabled[first]}), read


async def _rate_limit(api: Controls, project: str | None) -> Any:
    assert project is not None

    async def read() -> Any:
        return (await api.rate_limits(project)).value

    before = await read()
    if not before:
        return None
    row = before[0]
    field = next(iter(row.limits))
    return before, await api.set_rate_limit(project, row.id, {field: row.limits[field]}), read


async def _alert(api: Controls, project: str | None) -> Any:
    async def read() -> Any:
        return (await api.spend_alerts(project)).value

    before = await read()
    if not before:
        return None
    alert = before[0]
    reply = await api.update_spend_alert(
        alert.id,
        alert.amount,
        alert.channel.recipients,
        project=project,
        subject_prefix=alert.channel.subject_prefix,
    )
    return before, reply, read
