"""The admin API's directory: projects, users and each project's API keys, for their names.

Lists follow the spec's cursor pagination (``limit``, ``after`` = the page's ``last_id``,
``has_more``); a cursor that repeats or does not advance is a ``PaginationError``, and every
list has a bound on its pages. Requests go through ``AdminClient.get_json``: the same retries,
per-request deadline and 401/403 message as the usage queries; the projects' key lists are
read side by side. Only ids and names are kept: e-mail addresses and redacted key values are
never read into the result.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from budgetguard.providers.openai.client import AdminClient
from budgetguard.providers.openai.errors import PaginationError, ResponseFormatError

__all__ = ["Directory", "DirectoryClient"]

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
    """``async with DirectoryClient(key, base_url) as c: names = await c.directory()``, or
    ``DirectoryClient(client=admin_client)`` to share a collection's client and limits."""

    def __init__(
        self,
        api_key: SecretStr | None = None,
        base_url: str = "https://api.openai.com/v1",
        *,
        client: AdminClient | None = None,
        concurrency: int = 8,
        **options: Any,
    ) -> None:
        self._owned = client is None
        self._client = client or AdminClient(api_key, base_url, **options)
        self._gate = asyncio.Semaphore(concurrency)

    def __repr__(self) -> str:
        return "DirectoryClient(api_key=SecretStr('**********'))"

    async def __aenter__(self) -> DirectoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owned:
            await self._client.aclose()

    async def directory(self) -> Directory:
        """Every project (archived ones too: old spend names them), user and project key."""
        found = Directory()
        for item in await self.list("/organization/projects", "organization.project", True):
            found.projects[item["id"]] = str(item.get("name") or "")
        for item in await self.list("/organization/users", "organization.user"):
            found.users[item["id"]] = str(item.get("name") or "")

        async def keys(project: str) -> list[dict[str, Any]]:
            async with self._gate:  # the projects' key lists side by side
                path = f"/organization/projects/{project}/api_keys"
                return await self.list(path, "organization.project.api_key")

        # every list ends before the first failure is raised: none is left running unheard
        lists = await asyncio.gather(*(keys(p) for p in found.projects), return_exceptions=True)
        for items in lists:
            if isinstance(items, BaseException):
                raise items
            for item in items:
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
            page = await self._client.get_json(path, params)
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
