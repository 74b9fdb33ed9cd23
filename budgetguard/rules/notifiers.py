"""Settings models of the built-in notifier types, checked when the rules load.

The rules loader takes its notifier types as a mapping (type name -> settings model), so the
notify layer can hand it the types its plugins register; these four are the defaults.
Every secret (Slack URLs and tokens, SMTP passwords, webhook secrets) is a ``SecretStr``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "BUILTIN_NOTIFIER_TYPES",
    "ConsoleSettings",
    "EmailSettings",
    "NotifierSettings",
    "SlackSettings",
    "WebhookSettings",
]

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class NotifierSettings(BaseModel):
    """Base of every notifier's settings: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


class ConsoleSettings(NotifierSettings):
    """Prints one line per alert on stdout."""

    type: Literal["console"] = "console"


class SlackSettings(NotifierSettings):
    """An incoming-webhook URL, or a bot token and a channel for chat.postMessage."""

    type: Literal["slack"] = "slack"
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str | None = Field(default=None, description="Slack API base override.")
    username: str | None = None

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _http_url(value.get_secret_value())
        return value

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _one_way(self) -> SlackSettings:
        if (self.webhook_url is None) == (self.token is None):
            raise ValueError("give either webhook_url, or token and channel")
        if self.token is not None and not self.channel:
            raise ValueError("a token needs a channel")
        return self


class EmailSettings(NotifierSettings):
    """SMTP delivery; STARTTLS by default, or implicit TLS with ``ssl: true``."""

    type: Literal["email"] = "email"
    smtp_host: str = Field(min_length=1)
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    ssl: bool = False
    from_: str = Field(default="budgetguard@localhost", alias="from")
    to: tuple[str, ...] = Field(min_length=1)
    timeout: float = Field(default=30.0, gt=0)
    ca_file: str | None = Field(default=None, description="CA bundle to trust (self-signed).")

    @field_validator("to", mode="before", json_schema_input_type=str | list[str])
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not _EMAIL.match(address):
                raise ValueError(f"'{address}' is not an email address")
        return value

    @model_validator(mode="after")
    def _tls(self) -> EmailSettings:
        if self.ssl and self.starttls and "starttls" in self.model_fields_set:
            raise ValueError("choose one of starttls and ssl")
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")
        return self

    @property
    def port(self) -> int:
        if self.smtp_port is not None:
            return self.smtp_port
        return 465 if self.ssl else 587


class WebhookSettings(NotifierSettings):
    """A signed JSON POST to ``url``."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(repr=False)  # URLs often carry tokens: never shown
    secret: SecretStr | None = None
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


BUILTIN_NOTIFIER_TYPES: dict[str, type[NotifierSettings]] = {
    "console": ConsoleSettings,
    "slack": SlackSettings,
    "email": EmailSettings,
    "webhook": WebhookSettings,
}
