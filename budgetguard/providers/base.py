"""The provider seam: what the rest of budgetguard may ask of a provider's admin API.

A provider offers two clients, both built from a key, a base URL and an optional transport
(``httpx.MockTransport`` in tests):

- ``reader``: the queries a budget needs -> pages (usage and costs, checked whole), what
  ``collect`` and the pipeline use;
- ``controls``: the provider's own levers (spend limits, permissions, rate limits, ...), what
  ``actions`` and ``controls plan|apply`` use. Every call answers a ``Reply`` (the parsed
  object, the HTTP status and the provider's request id, for the action log) or raises a
  ``ControlError`` that says whether trying again may help, never quoting the key.

Providers know nothing of budgets; nothing here imports settings, rules or the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import httpx
from pydantic import SecretStr

__all__ = ["ControlError", "ErrorKind", "Provider", "Reply"]

T = TypeVar("T")
ReaderT_co = TypeVar("ReaderT_co", covariant=True)
ControlsT_co = TypeVar("ControlsT_co", covariant=True)

#: what went wrong, for a caller deciding what to do next:
#: ``auth`` (401/403: this key may not use the lever), ``not_found`` (no such project, key or
#: alert), ``invalid`` (the provider refused the values), ``unavailable`` (429, 5xx, timeouts,
#: connections: retryable), ``format`` (an answer that is not the object the spec describes)
ErrorKind = Literal["auth", "not_found", "invalid", "unavailable", "format"]


@dataclass(frozen=True)
class Reply(Generic[T]):
    """One answered call: ``value`` (the parsed object; ``None`` where the provider says
    there is none, such as a spend limit that is not set), its HTTP ``status`` and the
    provider's ``request_id`` (OpenAI's ``x-request-id``; None when it sent none)."""

    value: T
    status: int
    request_id: str | None


class ControlError(Exception):
    """A control call that failed. ``retryable`` is True only for temporary failures (429,
    5xx, timeouts, connections); the message is one line for people and never holds the key.
    ``status`` and ``request_id`` are None when no answer came; ``code`` is the provider's
    own error code when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ErrorKind = kind
        self.status = status
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind == "unavailable"

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ControlError({self.message!r}, kind={self.kind!r}, status={self.status!r})"


class Provider(Protocol[ReaderT_co, ControlsT_co]):
    """A provider's two clients (see the module's docstring). Use each with ``async with``."""

    name: str

    def reader(
        self,
        key: SecretStr | str | None,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> ReaderT_co: ...

    def controls(
        self,
        key: SecretStr | str | None,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> ControlsT_co: ...
