"""The base of every notifier's settings model (public plugin API)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["NotifierSettings", "http_url"]


class NotifierSettings(BaseModel):
    """Settings of one configured notifier: frozen, unknown keys refused, checked when the
    rules load. Declare secrets as ``SecretStr``: they then never show in a repr or an error.
    Each model has a ``type`` field: ``Literal["<type name>"]`` with that default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def http_url(value: str) -> str:
    """A validator body for URL settings: http(s) only; the message quotes no value."""
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value
