"""One request of the controls client: bounded in time and size, its failure classified.

The answer keeps what an action log needs: the HTTP status and OpenAI's ``x-request-id``.
Failures become ``ControlError`` with a kind: 401/403 ``auth``, 404 ``not_found`` (unless the
caller expects 404 to mean "none set"), 429/408/409/425/5xx, timeouts and broken
connections ``unavailable`` (retryable), other 4xx ``invalid``, a body that is not a JSON
object ``format``. No exception text of the transport is quoted (it may hold the request's
headers); the API's own message is kept, scrubbed of the key.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from budgetguard.providers.base import ControlError, ErrorKind
from budgetguard.providers.openai.request import read_capped
from budgetguard.providers.openai.retry import parse_retry_after

__all__ = ["MAX_ANSWER", "Answer", "send"]

#: the objects are small; a list page of 100 rate limits is a few tens of KB
MAX_ANSWER = 4 * 1024 * 1024
_RETRY = frozenset({408, 409, 425, 429})


@dataclass(frozen=True)
class Answer:
    """A 2xx answer (or a 404 the caller accepts): its parsed JSON object, status, id."""

    path: str
    status: int
    body: dict[str, Any]
    request_id: str | None


async def send(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    body: Any,
    *,
    key: SecretStr,
    deadline: float,
    missing_ok: bool = False,
) -> Answer:
    """``method path`` with ``body`` as JSON, whole within ``deadline`` seconds."""
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
    where = f"{method} {path.partition('?')[0]}"
    try:
        async with asyncio.timeout(deadline):
            status, content, reply_headers = await _exchange(http, method, path, body, headers)
    except (httpx.TimeoutException, TimeoutError):
        raise ControlError(f"{where}: no answer within {deadline:g}s", kind="unavailable") from None
    except httpx.TransportError as exc:
        raise ControlError(
            f"{where}: the connection failed ({type(exc).__name__})", kind="unavailable"
        ) from None
    except ControlError:
        raise
    except Exception as exc:  # never str() or repr(): it may quote the request's headers
        raise ControlError(
            f"{where}: the request failed ({type(exc).__name__})", kind="unavailable"
        ) from None
    request_id = reply_headers.get("x-request-id")
    if status >= 300:
        raise_for(where, status, content, reply_headers, request_id, key, missing_ok)
        return Answer(path, status, {}, request_id)  # an accepted 404: none set
    try:
        parsed = json.loads(content)
    except ValueError:
        raise ControlError(
            f"{where}: the answer is not JSON", kind="format", status=status, request_id=request_id
        ) from None
    if not isinstance(parsed, dict):
        raise ControlError(
            f"{where}: the answer is not a JSON object",
            kind="format",
            status=status,
            request_id=request_id,
        )
    return Answer(path, status, parsed, request_id)


async def _exchange(
    http: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, bytes, httpx.Headers]:
    request = http.build_request(
        method, path, headers=headers, json=body if body is not None else None
    )
    response = await http.send(request, stream=True)
    try:
        if response.is_stream_consumed:  # built whole (a test's transport): already read
            content = response.content[: MAX_ANSWER + 1]
        else:
            encoding = response.headers.get("Content-Encoding", "")
            content = await read_capped(response.aiter_raw(), encoding, MAX_ANSWER)
    finally:
        await response.aclose()
    if len(content) > MAX_ANSWER:
        raise ControlError(f"{method} {path}: the answer is too large", kind="format")
    return response.status_code, content, response.headers


def raise_for(
    where: str,
    status: int,
    content: bytes,
    headers: httpx.Headers,
    request_id: str | None,
    key: SecretStr,
    missing_ok: bool,
) -> None:
    """Raise the ``ControlError`` of a non-2xx answer; return for an accepted 404 (none set:
    a 404 that names a parameter, such as an unknown project, is never "none set")."""
    message, code, param = _api_error(content)
    secret = key.get_secret_value()
    message = message.replace(secret, "**********") if secret else message
    if status == 404 and missing_ok and param is None:
        return
    kind: ErrorKind
    if status in (401, 403):
        kind = "auth"
        text = (
            f"{where}: OpenAI refused the key (HTTP {status}); writing controls needs an "
            f"organization admin key (sk-admin-...) of an owner: {message}"
        )
    elif status == 404:
        kind, text = "not_found", f"{where}: not found (404): {message}"
    elif status >= 500 or status in _RETRY:
        kind, text = "unavailable", f"{where}: OpenAI is unavailable (HTTP {status}): {message}"
    else:
        kind, text = "invalid", f"{where}: OpenAI refused it (HTTP {status}): {message}"
    raise ControlError(
        text.rstrip(": "),
        kind=kind,
        status=status,
        request_id=request_id,
        code=code,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


def _api_error(content: bytes) -> tuple[str, str | None, str | None]:
    """The API's (message, code, param), the message on one line."""
    try:
        error = json.loads(content)["error"]
        message, code, param = (
            str(error.get("message") or ""),
            error.get("code"),
            error.get("param"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        message, code, param = content[:200].decode("utf-8", "replace"), None, None
    message = " ".join(message.split())[:300]
    return (
        message,
        str(code) if code is not None else None,
        str(param) if param is not None else None,
    )
