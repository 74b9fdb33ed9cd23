"""The admin API's directory: projects, users and each project's API keys, for their names.

Lists follow the spec's cursor pagination (``limit``, ``after`` = the page's ``last_id``,
``has_more``); a cursor that repeats or does not advance is a ``PaginationError``, and every
list has a bound on its pages. Temporary failures are retried as the usage client does; 401
and 403 say which key is needed. Only ids and names are kept: e-mail addresses and redacted
key values are never read into the result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from budgetguard.openai_admin.client import AUTH_HELP
from budgetguard.openai_admin.errors import (
    AuthError,
    BadRequestError,
    PaginationError,
    ResponseFormatError,
    UnavailableError,
)
from budgetguard.openai_admin.retry import RetryPolicy, parse_retry_after

__all__ = ["Directory", "DirectoryClient"]

log = logging.getLogger("budgetguard.openai_admin")
MAX_PAGES = 200
PAGE_SIZE = 100


@dataclass
class Directory:
    """id -> display name ("" when it has none), per kind (``project``, ``user``,
    ``api_key``)."""

    projects: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)

    def by_kind(self) -> dict[str, dict[str, str]]:
        return {"project": self.projects, "user": self.users, "api_key": self.api_keys}


class DirectoryClient:
    """``async with DirectoryClient(key, base_url) as c: names = await c.directory()``."""

    def __init__(
        self,
        api_key: SecretStr,
        base_url: str = "https://api.openai.com/v1",
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._key = api_key
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "budgetguard"},
        )

    def __repr__(self) -> str:
        return "DirectoryClient(api_key=SecretStr('**********'))"

    async def __aenter__(self) -> DirectoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def directory(self) -> Directory:
        """Every project (archived ones too: old spend names them), user and project key."""
        found = Directory()
        for item in await self.list("/organization/projects", "organization.project", True):
            found.projects[item["id"]] = str(item.get("name") or "")
        for item in await self.list("/organization/users", "organization.user"):
            found.users[item["id"]] = str(item.get("name") or "")
        for project in list(found.projects):
            path = f"/organization/projects/{project}/api_keys"
            for item in await self.list(path, "organization.project.api_key"):
                found.api_keys[item["id"]] = str(item.get("name") or "")
        return found

    async def list(self, path: str, kind: str, archived: bool = False) -> list[dict[str, Any]]:
        """Every item of a list endpoint, each checked to be a ``kind`` with an ``id``."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": PAGE_SIZE}
            if cursor:
                params["after"] = cursor
            if archived:
                params["include_archived"] = "true"
            page = await self._get(path, params)
            data = page.get("data")
            if page.get("object") != "list" or not isinstance(data, list):
                raise ResponseFormatError(f"{path}: the response is not a list", endpoint=path)
            for item in data:
                if not isinstance(item, dict) or item.get("object") != kind or not item.get("id"):
                    raise ResponseFormatError(f"{path}: an item is not a {kind}", endpoint=path)
                items.append(item)
            if not page.get("has_more"):
                return items
            cursor = page.get("last_id") or (data[-1]["id"] if data else None)
            if not cursor or cursor in seen:
                raise PaginationError(f"{path}: the cursor does not advance", endpoint=path)
            seen.add(cursor)
        raise PaginationError(f"{path}: more than {MAX_PAGES} pages", endpoint=path)

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._key.get_secret_value()}"}
        for attempt in range(1, self.retry.max_attempts + 1):
            reason, retry_after = "", None
            try:
                response = await self._http.get(path, params=params, headers=headers)
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            else:
                status = response.status_code
                if status in (401, 403):
                    raise AuthError(
                        f"{path}: access refused ({status}); {AUTH_HELP}", status=status
                    )
                if status < 400:
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    if isinstance(body, dict):
                        return body
                    raise ResponseFormatError(f"{path}: the response is not JSON", endpoint=path)
                if status != 429 and status < 500:
                    raise BadRequestError(f"{path}: the API refused ({status})", status=status)
                reason = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt < self.retry.max_attempts:
                await self._sleep(self.retry.delay(attempt, retry_after))
        raise UnavailableError(f"{path}: the API is unavailable ({reason})", endpoint=path)
