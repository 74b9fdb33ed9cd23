"""Errors of the admin API client. Messages are for people and never carry the key."""

from __future__ import annotations

__all__ = [
    "AdminAPIError",
    "AuthError",
    "BadRequestError",
    "InvalidQueryError",
    "PaginationError",
    "ResponseFormatError",
    "UnavailableError",
]


class AdminAPIError(Exception):
    """Base of every error the client raises."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.endpoint = endpoint

    def __str__(self) -> str:
        return self.message


class InvalidQueryError(AdminAPIError, ValueError):
    """The query breaks the API's rules; raised before anything is sent."""


class AuthError(AdminAPIError):
    """401/403: the key is missing, wrong, or not an admin key with ``api.usage.read``."""


class BadRequestError(AdminAPIError):
    """400 and other permanent 4xx: the API's own message is kept."""


class UnavailableError(AdminAPIError):
    """429/5xx/timeouts/connection errors persisted past the retry budget."""


class PaginationError(AdminAPIError):
    """The API's cursors do not advance (a repeated cursor or ``has_more`` with none)."""


class ResponseFormatError(AdminAPIError):
    """A response that is not the JSON the spec describes."""
