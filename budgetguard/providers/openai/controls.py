"""The write client of OpenAI's own controls: spend limits, spend alerts, model permissions,
hosted tools, rate limits, project keys and archiving.

How to use it::

    from budgetguard.providers.openai import Controls
    async with Controls(action_key, base_url, transport=None) as api:
        before = await api.project_spend_limit("proj_abc")   # Reply[SpendLimit | None]
        done = await api.set_project_spend_limit("proj_abc", Decimal("120.00"))
        after = await api.project_spend_limit("proj_abc")    # read back and compare
        log(done.status, done.request_id, before.value, after.value)

Every method answers a ``Reply``: ``value`` (a typed, frozen object of ``control_objects``;
``None`` where OpenAI says there is none: a GET of a spend limit or model permissions that
is not set answers 404), ``status`` and ``request_id`` (the ``x-request-id`` header). Failures
raise ``ControlError`` (``providers.base``) with ``kind`` and ``retryable``; no message ever
holds the key.

Money is USD ``Decimal`` in and out; the wire's integer cents are rounded up to the cent.
Reads (GET) are retried on temporary failures within the ``RetryPolicy``; writes are sent
once: a caller that sees a retryable failure re-reads the live state before trying again
(creating a spend alert twice makes two). A write is never taken on trust: OpenAI has been
seen to change one object when another was written, so callers read back and compare.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from budgetguard.header_safe import header_problem
from budgetguard.providers.base import ControlError, Reply
from budgetguard.providers.openai.control_objects import (
    HOSTED_TOOLS,
    RATE_LIMIT_FIELDS,
    AlertChannel,
    HostedTools,
    ModelPermissions,
    Project,
    RateLimit,
    SpendAlert,
    SpendLimit,
    cents,
)
from budgetguard.providers.openai.control_wire import Answer, send
from budgetguard.providers.openai.request import ACCEPT_ENCODING
from budgetguard.providers.openai.retry import RetryPolicy

__all__ = ["Controls"]

_PAGE = 100
_MAX_PAGES = 100


class Controls:
    """OpenAI's controls through one admin key; ``async with Controls(key, base_url)``."""

    def __init__(
        self,
        api_key: SecretStr | str | None,
        base_url: str = "https://api.openai.com/v1",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        request_deadline: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not secret:
            raise ControlError("no admin key to act with: set OPENAI_ADMIN_KEY", kind="auth")
        self._key = SecretStr(secret)
        self._key_problem = header_problem(secret)
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy(max_attempts=4, deadline=60.0)
        self.request_deadline = request_deadline
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,  # what control_wire inflates, bounded
                "User-Agent": "budgetguard",
            },
        )

    def __repr__(self) -> str:
        return f"Controls(base_url={self.base_url!r}, api_key=SecretStr('**********'))"

    async def __aenter__(self) -> Controls:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- spend limits -------------------------------------------------------------------------

    async def org_spend_limit(self) -> Reply[SpendLimit | None]:
        """The organisation's hard spend limit, or None when none is set (404)."""
        answer = await self._get("/organization/spend_limit", missing_ok=True)
        return self._maybe(answer, lambda b: SpendLimit.parse(b, None))

    async def set_org_spend_limit(self, amount: Decimal) -> Reply[SpendLimit]:
        """Create or replace the organisation's monthly limit at ``amount`` USD."""
        answer = await self._write("POST", "/organization/spend_limit", _limit_body(amount))
        return self._parsed(answer, lambda b: SpendLimit.parse(b, None))

    async def delete_org_spend_limit(self) -> Reply[bool]:
        """Remove the organisation's limit; ``value`` False when there was none (404)."""
        return self._deleted(
            await self._write("DELETE", "/organization/spend_limit", missing_ok=True)
        )

    async def project_spend_limit(self, project: str) -> Reply[SpendLimit | None]:
        answer = await self._get(_project(project, "spend_limit"), missing_ok=True)
        return self._maybe(answer, lambda b: SpendLimit.parse(b, project))

    async def set_project_spend_limit(self, project: str, amount: Decimal) -> Reply[SpendLimit]:
        path = _project(project, "spend_limit")
        answer = await self._write("POST", path, _limit_body(amount))
        return self._parsed(answer, lambda b: SpendLimit.parse(b, project))

    async def delete_project_spend_limit(self, project: str) -> Reply[bool]:
        path = _project(project, "spend_limit")
        return self._deleted(await self._write("DELETE", path, missing_ok=True))

    # -- spend alerts (e-mail) ----------------------------------------------------------------

    async def spend_alerts(self, project: str | None = None) -> Reply[list[SpendAlert]]:
        """Every spend alert of the organisation (``project`` None) or of one project."""
        path = _alerts(project)
        items, answer = await self._list(path)
        return Reply(
            [SpendAlert.parse(i, project) for i in items], answer.status, answer.request_id
        )

    async def create_spend_alert(
        self,
        amount: Decimal,
        recipients: tuple[str, ...] | list[str],
        *,
        project: str | None = None,
        subject_prefix: str | None = None,
    ) -> Reply[SpendAlert]:
        """A new alert at ``amount`` USD a month, e-mailed to ``recipients``."""
        body = _alert_body(amount, recipients, subject_prefix, project)
        answer = await self._write("POST", _alerts(project), body)
        return self._parsed(answer, lambda b: SpendAlert.parse(b, project))

    async def update_spend_alert(
        self,
        alert_id: str,
        amount: Decimal,
        recipients: tuple[str, ...] | list[str],
        *,
        project: str | None = None,
        subject_prefix: str | None = None,
    ) -> Reply[SpendAlert]:
        """Replace the whole alert ``alert_id`` (an update takes the whole body)."""
        body = _alert_body(amount, recipients, subject_prefix, project)
        answer = await self._write("POST", f"{_alerts(project)}/{_id(alert_id)}", body)
        return self._parsed(answer, lambda b: SpendAlert.parse(b, project))

    async def delete_spend_alert(self, alert_id: str, *, project: str | None = None) -> Reply[bool]:
        path = f"{_alerts(project)}/{_id(alert_id)}"
        return self._deleted(await self._write("DELETE", path, missing_ok=True))

    # -- model permissions --------------------------------------------------------------------

    async def model_permissions(self, project: str) -> Reply[ModelPermissions | None]:
        """The project's allow or deny list, or None when it has none (404)."""
        answer = await self._get(_project(project, "model_permissions"), missing_ok=True)
        return self._maybe(answer, lambda b: ModelPermissions.parse(b, project))

    async def set_model_permissions(
        self, project: str, mode: str, model_ids: tuple[str, ...] | list[str]
    ) -> Reply[ModelPermissions]:
        """Replace the whole list: ``mode`` ``allow_list`` or ``deny_list``, exact ids."""
        if mode not in ("allow_list", "deny_list"):
            raise ControlError(
                f"mode must be allow_list or deny_list, not {mode!r}", kind="invalid"
            )
        body = {"mode": mode, "model_ids": list(model_ids)}
        answer = await self._write("POST", _project(project, "model_permissions"), body)
        return self._parsed(answer, lambda b: ModelPermissions.parse(b, project))

    async def delete_model_permissions(self, project: str) -> Reply[bool]:
        path = _project(project, "model_permissions")
        return self._deleted(await self._write("DELETE", path, missing_ok=True))

    # -- hosted tools -------------------------------------------------------------------------

    async def hosted_tools(self, project: str) -> Reply[HostedTools]:
        answer = await self._get(_project(project, "hosted_tool_permissions"))
        return self._parsed(answer, lambda b: HostedTools.parse(b, project))

    async def set_hosted_tools(
        self, project: str, enabled: Mapping[str, bool]
    ) -> Reply[HostedTools]:
        """Switch the named tools on or off (a partial update: the others stay as they are)."""
        unknown = sorted(set(enabled) - set(HOSTED_TOOLS))
        if unknown:
            raise ControlError(f"unknown hosted tool {unknown[0]!r}", kind="invalid")
        body = {tool: {"enabled": bool(on)} for tool, on in enabled.items()}
        answer = await self._write("POST", _project(project, "hosted_tool_permissions"), body)
        return self._parsed(answer, lambda b: HostedTools.parse(b, project))

    # -- rate limits --------------------------------------------------------------------------

    async def rate_limits(self, project: str) -> Reply[list[RateLimit]]:
        """Every model's rate limits in the project (all pages)."""
        items, answer = await self._list(_project(project, "rate_limits"))
        limits = [RateLimit.parse(i, project) for i in items]
        return Reply(limits, answer.status, answer.request_id)

    async def set_rate_limit(
        self, project: str, rate_limit_id: str, limits: Mapping[str, int]
    ) -> Reply[RateLimit]:
        """Write any subset of ``RATE_LIMIT_FIELDS``; there is no reset: to undo, write the
        old values back."""
        unknown = sorted(set(limits) - set(RATE_LIMIT_FIELDS))
        if unknown or not limits:
            what = f"unknown rate limit field {unknown[0]!r}" if unknown else "no limit to set"
            raise ControlError(what, kind="invalid")
        path = f"{_project(project, 'rate_limits')}/{_id(rate_limit_id)}"
        answer = await self._write("POST", path, {k: int(v) for k, v in limits.items()})
        return self._parsed(answer, lambda b: RateLimit.parse(b, project))

    # -- irreversible -------------------------------------------------------------------------

    async def delete_api_key(self, project: str, key_id: str) -> Reply[bool]:
        """Delete a project's API key (irreversible: there is no disable)."""
        path = f"{_project(project, 'api_keys')}/{_id(key_id)}"
        return self._deleted(await self._write("DELETE", path))

    async def archive_project(self, project: str) -> Reply[Project]:
        """Archive a project (irreversible: there is no unarchive)."""
        answer = await self._write("POST", _project(project, "archive"), None)
        return self._parsed(answer, Project.parse)

    # -- plumbing -----------------------------------------------------------------------------

    async def _get(self, path: str, *, missing_ok: bool = False) -> Answer:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send("GET", path, None, missing_ok=missing_ok)
            except ControlError as failure:
                elapsed = time.monotonic() - started
                wait = self.retry.delay(attempt, failure.retry_after, self._rng)
                if (
                    not failure.retryable
                    or attempt >= self.retry.max_attempts
                    or elapsed + wait > self.retry.deadline
                ):
                    raise
                await self._sleep(wait)

    async def _list(self, path: str) -> tuple[list[dict[str, Any]], Answer]:
        """Every item of a cursor-paged list; a cursor that does not advance is an error."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            query = f"?limit={_PAGE}" + (f"&after={quote(after, safe='')}" if after else "")
            answer = await self._get(path + query)
            page = answer.body
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list) or page.get("object") != "list":
                raise _format(path, answer, "is not a list")
            if not all(isinstance(item, dict) for item in data):
                raise _format(path, answer, "has an item that is not an object")
            items.extend(data)
            if not page.get("has_more"):
                return items, answer
            after = page.get("last_id") or (data[-1].get("id") if data else None)
            if not after or after in seen:
                raise _format(path, answer, "has a cursor that does not advance")
            seen.add(after)
        raise ControlError(f"{path}: more than {_MAX_PAGES} pages", kind="format")

    async def _write(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Answer:
        """One request, sent once (see the module's docstring on retries of writes)."""
        return await self._send(method, path, body, missing_ok=missing_ok)

    async def _send(self, method: str, path: str, body: Any, *, missing_ok: bool) -> Answer:
        if self._key_problem is not None:
            raise ControlError(f"the admin key cannot be sent: {self._key_problem}", kind="auth")
        return await send(
            self._http,
            method,
            path,
            body,
            key=self._key,
            deadline=self.request_deadline,
            missing_ok=missing_ok,
        )

    @staticmethod
    def _parsed(answer: Answer, parse: Callable[[dict[str, Any]], Any]) -> Reply[Any]:
        try:
            return Reply(parse(answer.body), answer.status, answer.request_id)
        except (ValueError, KeyError, TypeError) as exc:
            raise _format(answer.path, answer, str(exc)) from None

    def _maybe(self, answer: Answer, parse: Callable[[dict[str, Any]], Any]) -> Reply[Any]:
        if answer.status == 404:
            return Reply(None, 404, answer.request_id)
        return self._parsed(answer, parse)

    @staticmethod
    def _deleted(answer: Answer) -> Reply[bool]:
        if answer.status == 404:
            return Reply(False, 404, answer.request_id)
        deleted = answer.body.get("deleted") if isinstance(answer.body, dict) else None
        if not isinstance(deleted, bool):
            raise _format(answer.path, answer, "does not say whether it was deleted")
        return Reply(deleted, answer.status, answer.request_id)


def _format(path: str, answer: Answer, why: str) -> ControlError:
    return ControlError(
        f"{path}: the answer {why}"
        if why.startswith(("is ", "has ", "does "))
        else f"{path}: {why}",
        kind="format",
        status=answer.status,
        request_id=answer.request_id,
    )


def _id(value: str) -> str:
    """An id as one path segment: ids are plain tokens, anything else is refused."""
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ControlError(f"not an id: {json.dumps(value)[:60]}", kind="invalid")
    return value


def _project(project: str, lever: str) -> str:
    return f"/organization/projects/{_id(project)}/{lever}"


def _alerts(project: str | None) -> str:
    return _project(project, "spend_alerts") if project else "/organization/spend_alerts"


def _limit_body(amount: Decimal) -> dict[str, Any]:
    value = cents(amount)
    if value < 1:
        raise ControlError(f"a spend limit must be at least $0.01, not ${amount}", kind="invalid")
    return {"threshold_amount": value, "currency": "USD", "interval": "month"}


def _alert_body(
    amount: Decimal,
    recipients: tuple[str, ...] | list[str],
    subject_prefix: str | None,
    project: str | None,
) -> dict[str, Any]:
    value = cents(amount)
    if value < 0:
        raise ControlError(f"a spend alert must be at least $0, not ${amount}", kind="invalid")
    alert = SpendAlert(
        id="new",
        project_id=project,
        threshold_cents=value,
        channel=AlertChannel(recipients=tuple(recipients), subject_prefix=subject_prefix),
    )
    return alert.body()
