"""The simulated organisation's directory: projects, users and each project's API keys,
served as ``openai-admin-directory-openapi.json`` describes them (list objects with
``first_id``/``last_id``/``has_more``, ``limit`` 1-100 defaulting to 20, ``after`` an item id).

The names are the ones people would know (``Support chatbot``, ``Erin Diaz``, ``chatbot-prod``)
for the ids the usage streams carry, so names show up end to end without a real key.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from budgetguard.simulator.org import PROJECTS, STREAMS, USERS

__all__ = ["USER_NAMES", "answer", "api_key_name"]

USER_NAMES = {
    "user-alice": "Alice Martin",
    "user-bob": "Bob Okafor",
    "user-carol": "Carol Zhang",
    "user-dave": "Dave Patel",
    "user-erin": "Erin Diaz",
}
_CREATED = 1_700_000_000
_KEYS = re.compile(r"^/organization/projects/([^/]+)/api_keys$")


def api_key_name(key_id: str) -> str:
    """``key_chatbot_prod`` -> ``chatbot-prod``: the name its owner gave it."""
    return key_id.removeprefix("key_").replace("_", "-")


def _projects() -> list[dict[str, Any]]:
    return [
        {
            "id": pid,
            "object": "organization.project",
            "name": name,
            "created_at": _CREATED + i,
            "archived_at": None,
            "status": "active",
        }
        for i, (pid, name) in enumerate(PROJECTS.items())
    ]


def _users() -> list[dict[str, Any]]:
    return [
        {
            "object": "organization.user",
            "id": uid,
            "name": USER_NAMES.get(uid, uid),
            "email": f"{uid.removeprefix('user-')}@example.com",
            "role": "owner" if i == 0 else "reader",
            "added_at": _CREATED + i,
        }
        for i, uid in enumerate(USERS)
    ]


def _owner(user: str) -> dict[str, Any]:
    """A key's owner as ``ProjectApiKeyOwnerUser`` has it."""
    return {
        "id": user,
        "email": f"{user.removeprefix('user-')}@example.com",
        "name": USER_NAMES.get(user, user),
        "created_at": _CREATED,
        "role": "member",
    }


def _api_keys(project: str) -> list[dict[str, Any]]:
    owners: dict[str, str | None] = {}
    for s in STREAMS:
        if s.project_id == project and s.api_key_id:
            owners.setdefault(s.api_key_id, s.user_id)
    return [
        {
            "object": "organization.project.api_key",
            "redacted_value": "sk-proj-****" + key[-4:],
            "name": api_key_name(key),
            "created_at": _CREATED + i,
            "last_used_at": None,
            "id": key,
            "owner_project_access": "active",
            "owner": {"type": "user", "user": _owner(user or USERS[0])},
        }
        for i, (key, user) in enumerate(sorted(owners.items()))
    ]


def _error(message: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
    return 400, {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    }


def answer(path: str, query: str) -> tuple[int, dict[str, Any]] | None:
    """(status, body) of a directory list request, or None when ``path`` is not one."""
    keys = _KEYS.match(path)
    if path == "/organization/projects":
        items = _projects()
    elif path == "/organization/users":
        items = _users()
    elif keys is not None:
        if keys.group(1) not in PROJECTS:
            return 404, {
                "error": {"message": "No such project", "type": "invalid_request_error",
                          "param": "project_id", "code": None}
            }  # fmt: skip
        items = _api_keys(keys.group(1))
    else:
        return None
    params = dict(parse_qsl(query, keep_blank_values=True))
    try:
        limit = int(params.get("limit", 20))
    except ValueError:
        return _error("limit must be an integer", "limit")
    if not 1 <= limit <= 100:
        return _error("limit must be between 1 and 100", "limit")
    after = params.get("after")
    ids = [item["id"] for item in items]
    if after is not None and after not in ids:
        return _error(f"no such object: {after}", "after")
    start = ids.index(after) + 1 if after is not None else 0
    page = items[start : start + limit]
    return 200, {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + limit < len(items),
    }
