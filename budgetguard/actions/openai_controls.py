"""OpenAI's controls as the plain states actions compare (``actions.controls.Controls``),
over the provider's write client (``providers.openai.Controls``).

Each call opens the client for itself (``asyncio.run``): an action makes a handful of calls
a tick, and a worker process or a command has no event loop of its own to share. States:
spend limits ``{"cents": n}`` or None; model permissions ``{"mode", "model_ids"}`` or None;
hosted tools ``{tool: enabled}``; rate limits ``{id: {"model": m, field: n, ...}}``. A
deleted key and an archived project cannot be read back through the controls API: their
state after the write is what OpenAI answered to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from budgetguard.actions.controls import Observed
from budgetguard.providers.base import Reply
from budgetguard.providers.openai import OPENAI, Controls
from budgetguard.providers.openai.control_objects import dollars

__all__ = ["OpenAIControls"]

T = TypeVar("T")


class OpenAIControls:
    def __init__(
        self,
        key: SecretStr,
        base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._key, self._base, self._transport = key, base_url, transport
        self._written: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        return f"OpenAIControls(base_url={self._base!r})"

    def _call(self, use: Callable[[Controls], Awaitable[Reply[T]]]) -> Reply[T]:
        async def run() -> Reply[T]:
            async with OPENAI.controls(self._key, self._base, transport=self._transport) as api:
                return await use(api)

        return asyncio.run(run())

    def read(self, kind: str, target: Mapping[str, str]) -> Observed:
        project = target.get("project", "")
        if kind == "openai.org_spend_limit":
            limit = self._call(lambda api: api.org_spend_limit())
            return _seen(
                limit, None if limit.value is None else {"cents": limit.value.threshold_cents}
            )
        if kind == "openai.project_spend_limit":
            reply = self._call(lambda api: api.project_spend_limit(project))
            value = reply.value
            return _seen(reply, None if value is None else {"cents": value.threshold_cents})
        if kind == "openai.model_deny":
            perms = self._call(lambda api: api.model_permissions(project))
            p = perms.value
            state = None if p is None else {"mode": p.mode, "model_ids": sorted(p.model_ids)}
            return _seen(perms, state)
        if kind == "openai.hosted_tools":
            tools = self._call(lambda api: api.hosted_tools(project))
            return _seen(tools, dict(sorted(tools.value.enabled.items())))
        if kind == "openai.rate_limit":
            limits = self._call(lambda api: api.rate_limits(project))
            rows = {r.id: {"model": r.model, **r.limits} for r in limits.value}
            return _seen(limits, rows)
        # delete_key, archive: no read of them in the controls API (see the module's doc)
        default = {"present": True} if kind == "openai.delete_key" else {"status": "active"}
        return Observed(self._written.get((kind, _ident(target)), default))

    def write(self, kind: str, target: Mapping[str, str], state: Any, before: Any) -> Observed:
        project = target.get("project", "")
        if kind in ("openai.org_spend_limit", "openai.project_spend_limit"):
            org = kind == "openai.org_spend_limit"
            if state is None:
                gone = self._call(
                    lambda api: (
                        api.delete_org_spend_limit()
                        if org
                        else api.delete_project_spend_limit(project)
                    )
                )
                return _seen(gone, None)
            amount = dollars(int(state["cents"]))
            reply: Reply[Any] = self._call(
                lambda api: (
                    api.set_org_spend_limit(amount)
                    if org
                    else api.set_project_spend_limit(project, amount)
                )
            )
            return _seen(reply, state)
        if kind == "openai.model_deny":
            if state is None:
                return _seen(self._call(lambda api: api.delete_model_permissions(project)), None)
            reply = self._call(
                lambda api: api.set_model_permissions(project, state["mode"], state["model_ids"])
            )
            return _seen(reply, state)
        if kind == "openai.hosted_tools":
            return _seen(self._call(lambda api: api.set_hosted_tools(project, state)), state)
        if kind == "openai.rate_limit":
            return self._rate_limits(project, state, before or {})
        if kind == "openai.delete_key":
            key = target["key"]
            reply = self._call(lambda api: api.delete_api_key(project, key))
            self._written[(kind, _ident(target))] = None
            return _seen(reply, None)
        archived = self._call(lambda api: api.archive_project(project))
        self._written[(kind, _ident(target))] = {"status": "archived"}
        return _seen(archived, {"status": "archived"})

    def _rate_limits(
        self, project: str, state: Mapping[str, Any], live: Mapping[str, Any]
    ) -> Observed:
        """Write each model's row that differs from the live one (there is no reset)."""
        last: Observed = Observed(state)
        for limit_id, row in state.items():
            if live.get(limit_id) == row:
                continue
            values = {k: int(v) for k, v in row.items() if k != "model"}
            last = _seen(self._set_rate_limit(project, limit_id, values), state)
        return last

    def _set_rate_limit(self, project: str, limit_id: str, values: dict[str, int]) -> Reply[Any]:
        return self._call(lambda api: api.set_rate_limit(project, limit_id, values))


def _seen(reply: Reply[Any], state: Any) -> Observed:
    return Observed(state, reply.status, reply.request_id)


def _ident(target: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(target.items()))
